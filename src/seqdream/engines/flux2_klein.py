"""FLUX.2 [klein] through diffusers' `Flux2KleinPipeline`: text-to-image and multi-reference edits."""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from seqdream.cpu.load import fit_threads, follow_load
from seqdream.cpu.parallel import parallel_map
from seqdream.cpu.threads import size_torch_pools
from seqdream.dependencies import one_line
from seqdream.engines.acceleration import (
    COMPILE_BUCKET,
    Acceleration,
    compile_transformer,
    enable_cache,
    measure_mag_ratios,
    quantize_transformer,
    resolve_cache,
)
from seqdream.engines.base import (
    EngineError,
    GenerationPlan,
    GenerationResult,
    ImagesCallback,
    ProgressCallback,
    Steps,
    fit_exactly,
    render_size,
)
from seqdream.engines.frame_prompt import FRAME_PROMPT, check_frame_prompt
from seqdream.engines.group import batch_spans, render_group
from seqdream.engines.model_folder import MODEL_DEFAULTS_FILE, check_folder, model_defaults
from seqdream.engines.preview import TinyDecoder, to_image, vae_input
from seqdream.engines.reference_cache import ReferenceLatents

log = logging.getLogger(__name__)

MAX_REFERENCES = 10
MIN_REFERENCE_SIDE = 64  # the pipeline refuses smaller conditioning images


@dataclass(frozen=True)
class Sampling:
    native_resolution: int
    num_inference_steps: int
    guidance_scale: float
    max_sequence_length: int
    # Share of the steps, from the first, that use classifier-free guidance. Layout and colour
    # are settled early; the last steps only refine, and without guidance they cost half.
    guidance_until: float = 1.0


# Step-distilled klein checkpoints sample in 4 steps without guidance; the -base ones need CFG.
# FLUX.2 renders up to ~4 MP natively: 2048*2048 is drawn at 2048*2048, only larger sizes are resized.
DISTILLED = Sampling(native_resolution=2048, num_inference_steps=4, guidance_scale=1.0, max_sequence_length=512)
BASE = Sampling(native_resolution=2048, num_inference_steps=50, guidance_scale=4.0, max_sequence_length=512)
REFERENCE_SIDE = 1024  # references are conditioned at up to ~1 MP each ...
REFERENCE_TOTAL_PIXELS = 4 * 1024 * 1024  # ... and ~4 MP together: 10 references cost ~16k tokens, not ~40k
CALIBRATION_PROMPT = "a photo of a lighthouse on a cliff at dusk"  # MagCache's ratios hardly depend on it


@dataclass(frozen=True)
class Flux2KleinOptions:
    """None means: the model's default (see `resolve_sampling`)."""

    model: str
    device: str = "auto"
    dtype: str = "auto"
    native_resolution: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    max_sequence_length: int | None = None
    guidance_until: float | None = None
    max_batch: int = 4
    # Previews of a running batch (see engines/preview.py): renders up to `preview_max_side` are
    # decoded by the model's VAE; larger ones by `preview_decoder`, a tiny decoder, if one is set,
    # else they get none. At most one per `preview_every_s`.
    preview_max_side: int = 128
    preview_every_s: float = 0.5  # 0: no previews
    preview_decoder: str | None = None  # an AutoencoderTiny for the model's latents: a folder or hub id
    follow_cpu_load: bool = False  # on CPU: fewer torch threads while other processes keep cores busy
    acceleration: Acceleration = Acceleration()


def resolve_sampling(options: Flux2KleinOptions, is_distilled: bool, declared: dict[str, Any]) -> Sampling:
    """Explicit options win, then the model folder's seqdream.json (`declared`), then the model
    kind's defaults."""
    values = asdict(DISTILLED if is_distilled else BASE)
    values.update({key: value for key, value in declared.items() if key in values})
    for key in values:
        if getattr(options, key) is not None:
            values[key] = getattr(options, key)
    return Sampling(**values)


def shipped_mag_ratios(declared: dict[str, Any], source: str) -> list[float] | None:
    """MagCache ratios a model folder ships in its seqdream.json (checkpoint-specific)."""
    ratios = declared.get("mag_ratios")
    if ratios is not None and not (isinstance(ratios, list) and all(isinstance(r, int | float) for r in ratios)):
        raise EngineError(f"{source}: mag_ratios must be a list of numbers")
    return ratios


def declared_frame_prompt(declared: dict[str, Any], source: str) -> str:
    """How the model asks for frame k of a group: its seqdream.json's `frame_prompt`, else the default."""
    template = declared.get("frame_prompt", FRAME_PROMPT)
    try:
        return check_frame_prompt(str(template))
    except ValueError as exc:
        raise EngineError(f"{source}: {exc}") from exc


def pick_device(requested: str) -> str:
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_has_native_bfloat16() -> bool:
    """AVX512-BF16 or AMX: bfloat16 matrix products run in hardware (the built-in model's 14-image
    group takes ~0.63x the float32 time); without them bfloat16 is emulated and slower."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch build without the probes
        return False


def pick_dtype(requested: str, device: str) -> torch.dtype:
    if requested != "auto":
        return getattr(torch, requested)
    if device.startswith("cuda") or device == "mps":
        return torch.bfloat16
    return torch.bfloat16 if device == "cpu" and cpu_has_native_bfloat16() else torch.float32


def _with_cause(exc: BaseException) -> str:
    """A loader's message and, where it adds something, the first line of what started it: diffusers'
    "unable to load weights" says which file, the first error in its chain what is wrong with it."""
    text, first, seen = str(exc).strip(), exc, {id(exc)}
    while (earlier := first.__cause__ or first.__context__) is not None and id(earlier) not in seen:
        seen.add(id(earlier))
        first = earlier
    reason = one_line(first) if first is not exc else ""
    return f"{text} ({reason})" if reason and reason not in text else text


class Flux2KleinEngine:
    name = "flux2-klein"

    def __init__(self, options: Flux2KleinOptions) -> None:
        from seqdream.logs import quiet_model_loading

        quiet_model_loading()
        size_torch_pools(if_not_yet=True)  # the pools `configure_threads` chose, now that torch is in
        from diffusers import Flux2KleinPipeline

        self.options = options
        self.task_batch = options.max_batch  # independent images (separate tasks) drawn in one call
        self.device = pick_device(options.device)
        self.dtype = pick_dtype(options.dtype, self.device)
        started = time.perf_counter()
        check_folder(options.model)
        try:
            pipeline = Flux2KleinPipeline.from_pretrained(options.model, dtype=self.dtype)
        except Exception as exc:  # noqa: BLE001 - a folder that does not load, whatever the loader raises
            raise EngineError(f"could not load model {options.model!r}: {_with_cause(exc)}") from exc
        self.pipeline = pipeline.to(self.device)
        self.pipeline.set_progress_bar_config(disable=True)
        # Compiled CPU kernels are built for one thread count: a compiled engine keeps its own.
        self.follows_load = self.device == "cpu" and options.follow_cpu_load and not options.acceleration.compile
        if self.follows_load:
            follow_load(torch.get_num_threads())
        # The model folder's seqdream.json, read once: sampling, frame wording, step cache.
        declared, source = model_defaults(options.model), str(Path(options.model) / MODEL_DEFAULTS_FILE)
        self.sampling = resolve_sampling(options, bool(self.pipeline.config.is_distilled), declared)
        self.frame_prompt = declared_frame_prompt(declared, source)
        self.preview_decoder = (
            TinyDecoder(options.preview_decoder, self.pipeline.vae.config.latent_channels, self.device, self.dtype)
            if options.preview_decoder and options.preview_every_s > 0
            else None
        )
        # Height and width must be multiples of the VAE factor times the 2x2 latent patch.
        self.multiple = self.pipeline.vae_scale_factor * 2
        self._lock = threading.Lock()  # one pipeline call at a time per process
        accel = resolve_cache(options.acceleration, declared, source)
        transformer = self.pipeline.transformer
        quantize_transformer(transformer, accel.quantize, self.device)
        self.cached = accel.cache != "none" and not self.pipeline.config.is_distilled
        if accel.cache != "none" and not self.cached:
            log.warning("SEQDREAM_CACHE ignored: a step-distilled model samples in too few steps to skip any")
        if self.cached:
            ratios = shipped_mag_ratios(declared, source) or self.calibrate_cache()
            assert accel.cache_threshold is not None  # resolve_cache sets it
            enable_cache(transformer, accel.cache_threshold, self.sampling.num_inference_steps, ratios)
        if accel.compile:
            compile_transformer(transformer)
            self.multiple = math.lcm(self.multiple, COMPILE_BUCKET)
            self.warm_up(accel.warmup_sizes)
        where = f"{self.device}, {torch.get_num_threads()} threads" if self.device == "cpu" else self.device
        log.info(
            "model %s loaded in %.1fs on %s (%s); %s; speed-ups: %s",
            options.model,
            time.perf_counter() - started,
            where,
            str(self.dtype).removeprefix("torch."),
            self.sampling,
            accel.describe(),
        )

    def warm_up(self, sizes: tuple[tuple[int, int], ...]) -> None:
        """Run the compiled paths once per size before any task: one image from the prompt alone,
        then a batch of two with a reference (a group's later batches), one step each."""
        for width, height in sizes:
            render_w, render_h = render_size(width, height, self.sampling.native_resolution, self.multiple)
            started = time.perf_counter()
            reference = Image.new("RGB", (render_w, render_h), (128, 128, 128))
            with self._lock, torch.inference_mode():
                for prompts, image in ((["warm-up"], None), (["warm-up"] * 2, [self._prepare_reference(reference)])):
                    self._reset_cache()
                    self.pipeline(
                        image=image,
                        prompt=prompts,
                        height=render_h,
                        width=render_w,
                        num_inference_steps=1,
                        guidance_scale=self.sampling.guidance_scale,
                        max_sequence_length=self.sampling.max_sequence_length,
                        output_type="latent",
                    )
            log.info("warmed up at %dx%d in %.1fs", render_w, render_h, time.perf_counter() - started)

    def calibrate_cache(self) -> list[float]:
        """MagCache's ratios for this checkpoint, from one unguided call at up to 1024*1024."""
        side = render_size(1024, 1024, self.sampling.native_resolution, self.multiple)[0]
        started = time.perf_counter()
        steps, length = self.sampling.num_inference_steps, self.sampling.max_sequence_length
        ratios = measure_mag_ratios(self.pipeline, side, steps, length, CALIBRATION_PROMPT)
        log.info(
            'calibrated MagCache in %.1fs; put this in %s to skip it: {"mag_ratios": %s}',
            time.perf_counter() - started,
            MODEL_DEFAULTS_FILE,
            ratios,
        )
        return ratios

    def _reset_cache(self) -> None:
        """A call stopped mid-way (a deleted task) leaves the block cache's state behind."""
        if self.cached:
            self.pipeline.transformer._reset_stateful_cache()

    def _prepare_reference(self, image: Image.Image, share: int = 1) -> Image.Image:
        """Scale a reference to at most ~1 MP (or the render limit, if lower) and its `share` of the
        total reference area, and to at least the minimum side."""
        width, height = image.size
        limit = min(min(self.sampling.native_resolution, REFERENCE_SIDE) ** 2, REFERENCE_TOTAL_PIXELS // share)
        scale = min(1.0, (limit / (width * height)) ** 0.5)
        scale = max(scale, MIN_REFERENCE_SIDE / min(width, height))
        if scale != 1.0:
            image = image.resize(
                (max(MIN_REFERENCE_SIDE, int(width * scale)), max(MIN_REFERENCE_SIDE, int(height * scale))),
                Image.Resampling.LANCZOS,
            )
        return image

    def generate(
        self, plan: GenerationPlan, progress: ProgressCallback | None = None, on_images: ImagesCallback | None = None
    ) -> GenerationResult:
        """Render the plan's images batch by batch. `on_images` (storing, checking) runs on its own
        thread as each batch finishes, outside the engine's lock: the next batch, or another task,
        renders meanwhile. What it raises stops the run and reaches the caller unchanged."""
        run = _GroupCall(self, plan, progress, on_images)
        started = time.perf_counter()
        try:
            with self._lock, torch.inference_mode(), ReferenceLatents(self.pipeline).installed():
                render_group(
                    plan, run.render, max_batch=self.options.max_batch, max_references=MAX_REFERENCES,
                    on_batch=run.on_batch,
                )  # fmt: skip
            inference_ms = round((time.perf_counter() - started) * 1000)
            images = run.delivered()
        except _ListenerFailed as failed:
            raise failed.cause from failed.cause.__cause__  # as the caller raised it, never "the model call failed"
        except torch.cuda.OutOfMemoryError as exc:
            raise EngineError(
                f"the GPU ran out of memory rendering {plan.count} image(s) at {run.width}x{run.height}; "
                "lower SEQDREAM_MAX_BATCH or SEQDREAM_NATIVE_RESOLUTION"
            ) from exc
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"the model call failed: {exc}") from exc
        finally:
            run.close()
        return GenerationResult(images=images, inference_ms=inference_ms)


class _GroupCall:
    """One `generate`: the pipeline calls of its batches, their step count, and the images handed to
    the caller's `on_images` on a thread of their own, in order."""

    def __init__(
        self,
        engine: Flux2KleinEngine,
        plan: GenerationPlan,
        progress: ProgressCallback | None,
        on_images: ImagesCallback | None,
    ) -> None:
        self.engine, self.plan, self.progress, self.on_images = engine, plan, progress, on_images
        sampling = engine.sampling
        self.width, self.height = render_size(plan.width, plan.height, sampling.native_resolution, engine.multiple)
        batches = batch_spans(plan.count, engine.options.max_batch, independent=plan.independent)
        self.total_steps = len(batches) * sampling.num_inference_steps
        self.done_steps = 0
        self.batch_start, self.rendered = 0, 0  # the plan index of the running batch's first image
        self.guided_steps = math.ceil(sampling.guidance_until * sampling.num_inference_steps)
        # Every batch sizes references alike (the anchor joins them after the first), so their
        # encodings are reused across batches.
        self.share = min(len(plan.references) + (plan.count > 1 and not plan.independent), MAX_REFERENCES) or 1
        self.finished: dict[int, list[Image.Image]] = {}  # batches already fitted to the asked size
        self.handed: list[Future[None]] = []  # `on_images` calls, in batch order
        self.listener = ThreadPoolExecutor(max_workers=1, thread_name_prefix="on-images") if on_images else None
        self.preview_every_s = engine.options.preview_every_s
        self.vae_previews = max(self.width, self.height) <= engine.options.preview_max_side
        self.previews = self.preview_every_s > 0 and (self.vae_previews or engine.preview_decoder is not None)
        self.next_preview = time.monotonic() + self.preview_every_s  # a call shorter than that makes none

    def on_step(self, pipe: Any, step: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        self.done_steps += 1
        if step + 1 >= self.guided_steps:
            pipe._guidance_scale = 1.0  # diffusers' dynamic-CFG hook: later steps skip the unguided pass
        self._raise_listener_failure()
        if self.progress:
            preview = None
            if self.previews and time.monotonic() >= self.next_preview and "latents" in kwargs:
                self.next_preview = time.monotonic() + self.preview_every_s
                preview = self._preview(kwargs["latents"])
            per_batch = self.engine.sampling.num_inference_steps
            self.progress(Steps(self.done_steps, self.total_steps, per_batch, preview, self.batch_start))
        return kwargs

    def _preview(self, latents: torch.Tensor) -> Image.Image:
        """The batch's first image as its latents stand, by the VAE where small, else the tiny decoder."""
        pipe = self.engine.pipeline
        latent = vae_input(pipe, latents, self.width, self.height)
        if self.vae_previews or self.engine.preview_decoder is None:
            return to_image(pipe.vae.decode(latent, return_dict=False)[0])
        return self.engine.preview_decoder.decode(latent)

    def render(self, prompts: list[str], seeds: list[int], refs: list[Image.Image]) -> list[Image.Image]:
        if self.engine.follows_load:
            fit_threads()  # per batch: as many threads as other processes leave cores free
        vae = self.engine.pipeline.vae
        self.batch_start, self.rendered = self.rendered, self.rendered + len(prompts)
        try:
            return self._call(prompts, seeds, refs)
        except torch.cuda.OutOfMemoryError:
            if vae.use_tiling:
                raise
            # The full-size decode is the usual last straw: decode in tiles from now on, and retry.
            log.warning("out of GPU memory at %dx%d; the VAE decodes in tiles from now on", self.width, self.height)
            vae.enable_tiling()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return self._call(prompts, seeds, refs)

    def _call(self, prompts: list[str], seeds: list[int], refs: list[Image.Image]) -> list[Image.Image]:
        engine, sampling = self.engine, self.engine.sampling
        generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
        engine._reset_cache()
        result = engine.pipeline(
            image=[engine._prepare_reference(ref, self.share) for ref in refs] or None,
            prompt=prompts,
            height=self.height,
            width=self.width,
            num_inference_steps=sampling.num_inference_steps,
            guidance_scale=sampling.guidance_scale,
            generator=generators,
            max_sequence_length=sampling.max_sequence_length,
            callback_on_step_end=self.on_step,
        )
        return list(result.images)

    def on_batch(self, start: int, images: list[Image.Image]) -> None:
        plan = self.plan
        self.finished[start] = parallel_map(lambda image: fit_exactly(image, plan.width, plan.height), images)
        self._raise_listener_failure()
        if self.listener is not None and self.on_images is not None:
            self.handed.append(self.listener.submit(self.on_images, start, self.finished[start]))

    def _raise_listener_failure(self) -> None:
        """What an earlier batch's `on_images` raised (the task was deleted, storage failed) stops the run."""
        for future in self.handed:
            if future.done() and (exc := future.exception()) is not None:
                raise _ListenerFailed(exc) from exc

    def delivered(self) -> list[Image.Image]:
        """Every image, once `on_images` has taken each batch."""
        for future in self.handed:
            if (exc := future.exception()) is not None:
                raise _ListenerFailed(exc) from exc
        return [image for start in sorted(self.finished) for image in self.finished[start]]

    def close(self) -> None:
        if self.listener is not None:
            self.listener.shutdown(wait=True, cancel_futures=True)


class _ListenerFailed(Exception):
    """Carries what `on_images` raised past the engine's own error handling, unchanged."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause
