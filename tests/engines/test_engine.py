"""The production FLUX.2 [klein] engine, loaded from a real diffusers folder."""

from __future__ import annotations

import json
import shutil
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seqdream.config import Settings
from seqdream.engines import flux2_klein, preview
from seqdream.engines.base import EngineError, GenerationPlan, Steps, fit_exactly, render_size
from seqdream.engines.flux2_klein import Flux2KleinEngine, cpu_has_native_bfloat16
from seqdream.engines.group import render_group
from seqdream.engines.reference_cache import ReferenceLatents
from seqdream.engines.registry import load_engine
from seqdream.safety.nsfw import NudeNetDetector
from seqdream_devkit.tiny_pipeline import build_tiny_preview_decoder


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Flux2KleinEngine:
    return load_engine(Settings(model=str(tiny_model), native_resolution=64, max_sequence_length=64, max_batch=2))


def test_loads_through_from_pretrained(engine: Flux2KleinEngine) -> None:
    assert type(engine.pipeline).__name__ == "Flux2KleinPipeline"
    assert engine.device == "cpu" and engine.multiple == 4  # tiny VAE: 2x down, 2x2 patches


def test_renders_at_native_size_and_delivers_exact_size(engine: Flux2KleinEngine, monkeypatch) -> None:
    calls: list[tuple[int, int, int]] = []
    original = engine.pipeline.__class__.__call__

    def recording(pipe, *args, **kwargs):
        calls.append((kwargs["width"], kwargs["height"], len(kwargs["prompt"])))
        return original(pipe, *args, **kwargs)

    monkeypatch.setattr(engine.pipeline.__class__, "__call__", recording)
    plan = GenerationPlan(prompts=["a tall tower"] * 5, seeds=[1, 2, 3, 4, 5], width=1024, height=3072)
    result = engine.generate(plan)
    assert [image.size for image in result.images] == [(1024, 3072)] * 5
    # ~64*64 pixels at 1:3, multiples of 4; one anchor image, then batches of at most 2.
    assert calls == [(36, 112, 1), (36, 112, 2), (36, 112, 2)]
    assert result.inference_ms > 0


def test_sizes_within_the_limit_render_natively(tiny_model: Path, monkeypatch) -> None:
    engine = load_engine(Settings(model=str(tiny_model), native_resolution=128, max_sequence_length=64))
    calls: list[tuple[int, int]] = []
    original = engine.pipeline.__class__.__call__

    def recording(pipe, *args, **kwargs):
        calls.append((kwargs["width"], kwargs["height"]))
        return original(pipe, *args, **kwargs)

    monkeypatch.setattr(engine.pipeline.__class__, "__call__", recording)
    small = engine.generate(GenerationPlan(prompts=["p"], seeds=[1], width=96, height=64))
    large = engine.generate(GenerationPlan(prompts=["p"], seeds=[1], width=384, height=256))
    assert calls == [(96, 64), (156, 104)]  # as asked; then scaled down to ~128*128 pixels
    assert small.images[0].size == (96, 64) and large.images[0].size == (384, 256)


def test_references_are_encoded_once_per_task(engine: Flux2KleinEngine, monkeypatch) -> None:
    encodes: list[tuple[int, ...]] = []
    original = engine.pipeline.__class__._encode_vae_image

    def counting(pipe, image, generator):
        encodes.append(tuple(image.shape))
        return original(pipe, image=image, generator=generator)

    monkeypatch.setattr(engine.pipeline.__class__, "_encode_vae_image", counting)
    refs = [Image.new("RGB", (300, 200), "navy"), Image.new("RGB", (120, 160), "gold")]
    plan = GenerationPlan(prompts=list("abcde"), seeds=[1, 2, 3, 4, 5], width=1024, height=1024, references=refs)
    cached = [np.asarray(image) for image in engine.generate(plan).images]
    # Batches of 1, 2, 2 images see 2, 3, 3 references: 8 encodes without the cache, 3 with it.
    assert len(encodes) == 3

    @contextmanager
    def uncached(self):  # type: ignore[no-untyped-def]
        yield self

    monkeypatch.setattr(ReferenceLatents, "installed", uncached)
    encodes.clear()
    plain = [np.asarray(image) for image in engine.generate(plan).images]
    assert len(encodes) == 8
    assert all(np.array_equal(a, b) for a, b in zip(cached, plain, strict=True))  # same pixels either way


def test_references_share_a_total_area(tiny_model: Path) -> None:
    engine = load_engine(Settings(model=str(tiny_model), native_resolution=2048, max_sequence_length=64))
    photo = Image.new("RGB", (3000, 2000), "teal")
    alone = engine._prepare_reference(photo)
    crowded = engine._prepare_reference(photo, share=10)
    assert 0.95 * 1024**2 <= alone.width * alone.height <= 1024**2  # ~1 MP for one reference
    assert crowded.width * crowded.height <= 4 * 1024**2 // 10  # a tenth of ~4 MP among ten
    assert abs(crowded.width / crowded.height - 1.5) < 0.01
    assert engine._prepare_reference(Image.new("RGB", (40, 30)), share=10).size == (85, 64)  # the minimum side


def test_out_of_memory_retries_with_a_tiled_vae_decode(tiny_model: Path, monkeypatch) -> None:
    engine = load_engine(Settings(model=str(tiny_model), native_resolution=64, max_sequence_length=64))
    vae = engine.pipeline.vae
    original = vae.__class__.decode
    failures: list[bool] = []

    def decode_needing_tiles(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self.use_tiling:  # as on a GPU whose memory the full-size decode overflows
            failures.append(True)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(vae.__class__, "decode", decode_needing_tiles)
    result = engine.generate(GenerationPlan(prompts=["p", "q"], seeds=[1, 2], width=1024, height=1024))
    assert [image.size for image in result.images] == [(1024, 1024)] * 2
    assert failures == [True] and vae.use_tiling  # one failure, then tiles for good

    def always_out_of_memory(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(vae.__class__, "decode", always_out_of_memory)
    with pytest.raises(EngineError, match="ran out of memory.*SEQDREAM_MAX_BATCH"):
        engine.generate(GenerationPlan(prompts=["p"], seeds=[1], width=1024, height=1024))


@pytest.mark.parametrize("native", [True, False])
def test_auto_dtype_on_cpu_is_bfloat16_only_where_the_cpu_multiplies_it_natively(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr(flux2_klein, "cpu_has_native_bfloat16", lambda: native)
    engine = load_engine(Settings(model=str(tiny_model), native_resolution=64, device="cpu"))
    expected = torch.bfloat16 if native else torch.float32
    assert engine.pipeline.transformer.dtype == expected and engine.pipeline.vae.dtype == expected
    image = engine.generate(GenerationPlan(prompts=["a red cube"], seeds=[1], width=96, height=96)).images[0]
    assert image.size == (96, 96) and np.asarray(image).std() > 0  # drawn, not blank
    explicit = load_engine(Settings(model=str(tiny_model), device="cpu", dtype="float32"))
    assert explicit.pipeline.transformer.dtype == torch.float32  # SEQDREAM_DTYPE wins over the probe


def test_the_bfloat16_probe_agrees_with_the_cpu_flags() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    flags = set(cpuinfo.read_text().split())
    assert cpu_has_native_bfloat16() == bool({"avx512_bf16", "amx_tile"} & flags)


def test_same_seed_same_pixels(engine: Flux2KleinEngine) -> None:
    ref = Image.new("RGB", (300, 200), "navy")
    plan = GenerationPlan(prompts=["edit it", "edit it again"], seeds=[7, 8], width=1024, height=1024, references=[ref])
    first = [np.asarray(image) for image in engine.generate(plan).images]
    second = [np.asarray(image) for image in engine.generate(plan).images]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0], first[1])


def test_progress_is_reported(engine: Flux2KleinEngine) -> None:
    seen: list[Steps] = []
    plan = GenerationPlan(prompts=["p"] * 3, seeds=[1, 2, 3], width=1024, height=1024)
    engine.generate(plan, seen.append)
    assert [steps.done for steps in seen] == list(range(1, 2 * 4 + 1))  # 2 batches x 4 steps
    assert {(steps.total, steps.per_batch) for steps in seen} == {(8, 4)} and seen[-1].fraction == 1.0


def test_small_renders_come_with_previews_of_the_image_being_drawn(engine: Flux2KleinEngine, monkeypatch) -> None:
    monkeypatch.setattr(engine, "options", replace(engine.options, preview_every_s=0.01))  # its calls are short
    seen: list[Steps] = []
    plan = GenerationPlan(prompts=["a red cube"], seeds=[1], width=1024, height=1024)
    engine.generate(plan, seen.append)
    previews = [steps.preview for steps in seen if steps.preview is not None]
    side = render_size(1024, 1024, engine.sampling.native_resolution, engine.multiple)[0]
    assert previews and all(preview.size == (side, side) for preview in previews)
    assert np.asarray(previews[0]).std() > 0  # a picture, not a blank
    monkeypatch.setattr(engine, "options", replace(engine.options, preview_every_s=0.01, preview_max_side=side - 1))
    seen.clear()
    engine.generate(plan, seen.append)
    assert seen and all(steps.preview is None for steps in seen)


def test_larger_renders_get_previews_from_a_configured_tiny_decoder(
    tiny_model: Path, tmp_path: Path, monkeypatch
) -> None:
    """Renders the VAE would decode too slowly get previews only from a tiny decoder: at its scale,
    and pooled down to at most PREVIEW_SIDE on the longer side."""
    decoder = build_tiny_preview_decoder(tmp_path / "taef", latent_channels=4)
    settings = Settings(model=str(tiny_model), nsfw_check=False, native_resolution=64, preview_every_s=0.01,
                        preview_decoder=str(decoder))  # fmt: skip
    engine = load_engine(settings)
    plan = GenerationPlan(prompts=["a red cube"], seeds=[1], width=1024, height=1024)
    side = render_size(1024, 1024, engine.sampling.native_resolution, engine.multiple)[0]
    monkeypatch.setattr(engine, "options", replace(engine.options, preview_max_side=side - 1))  # "large"
    seen: list[Steps] = []
    engine.generate(plan, seen.append)
    previews = [steps.preview for steps in seen if steps.preview is not None]
    assert previews and all(preview.size == (side, side) for preview in previews)
    assert np.asarray(previews[-1]).std() > 0
    monkeypatch.setattr(preview, "PREVIEW_SIDE", side // 2)
    seen.clear()
    engine.generate(plan, seen.append)
    assert {steps.preview.size for steps in seen if steps.preview is not None} == {(side // 2, side // 2)}


def test_a_preview_decoder_for_other_latents_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    decoder = build_tiny_preview_decoder(tmp_path / "taef", latent_channels=16)
    with pytest.raises(EngineError, match="decodes 16-channel latents; this model's have 4"):
        load_engine(Settings(model=str(tiny_model), nsfw_check=False, preview_decoder=str(decoder)))
    with pytest.raises(EngineError, match="could not load the preview decoder"):
        load_engine(Settings(model=str(tiny_model), nsfw_check=False, preview_decoder=str(tmp_path / "none")))


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="could not load model"):
        load_engine(Settings(model=str(tmp_path / "absent")))
    with pytest.raises(EngineError, match="unknown engine"):
        load_engine(Settings(engine="nope"))


def _damage(folder: Path, how: str) -> None:
    transformer = folder / "transformer"
    if how == "truncated weights":  # a copy or download cut short
        weights = next(transformer.glob("*.safetensors"))
        weights.write_bytes(weights.read_bytes()[:1000])
    elif how == "empty weights":
        next((folder / "vae").glob("*.safetensors")).write_bytes(b"")
    elif how == "a config of the wrong type":
        config = json.loads((transformer / "config.json").read_text())
        (transformer / "config.json").write_text(json.dumps(config | {"num_layers": "three"}))
    elif how == "a part missing":
        shutil.rmtree(transformer)


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("truncated weights", r"transformer/diffusion_pytorch_model.safetensors.*\(Error while deserializing header"),
        ("empty weights", r"vae/diffusion_pytorch_model.safetensors.*\(Error while deserializing header"),
        ("a config of the wrong type", r"'str' object cannot be interpreted as an integer"),
        ("a part missing", r"its model_index.json names transformer, which the folder lacks"),
    ],
)
def test_a_damaged_model_folder_is_one_clear_error(tiny_model: Path, tmp_path: Path, how: str, said: str) -> None:
    """Whatever the loader raises for a damaged folder is the engine's own error, naming the folder and why."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    _damage(folder, how)
    with pytest.raises(EngineError, match=f"could not load model '{folder}': .*{said}"):
        load_engine(Settings(model=str(folder), nsfw_check=False))


def test_group_anchors_later_images_on_the_first() -> None:
    seen: list[tuple[list[str], int, bool]] = []
    anchor = Image.new("RGB", (8, 8), "red")

    def render(prompts, seeds, refs):
        seen.append((prompts, len(refs), any(ref is anchor for ref in refs)))
        return [anchor if not seen[:-1] else Image.new("RGB", (8, 8)) for _ in prompts]

    refs = [Image.new("RGB", (8, 8)) for _ in range(10)]
    plan = GenerationPlan(prompts=list("abcde"), seeds=list(range(5)), width=8, height=8, references=refs)
    images = render_group(plan, render, max_batch=3, max_references=10)
    assert len(images) == 5 and images[0] is anchor
    assert seen == [(["a"], 10, False), (["b", "c", "d"], 10, True), (["e"], 10, True)]


def test_geometry_helpers() -> None:
    assert render_size(2048, 2048, 1024, 16) == (1024, 1024)  # above the limit: scaled down to its area
    assert render_size(4096, 1024, 1024, 16) == (2048, 512)
    assert render_size(2048, 2048, 2048, 16) == (2048, 2048)  # within it: rendered natively
    assert render_size(1024, 1536, 2048, 16) == (1024, 1536)  # never scaled up
    assert render_size(4096, 4096, 2048, 16) == (2048, 2048)
    image = fit_exactly(Image.new("RGB", (40, 112)), 1024, 3072)
    assert image.size == (1024, 3072)


def test_nsfw_detector_runs_offline_on_real_images() -> None:
    detector = NudeNetDetector()
    landscape = Image.new("RGB", (640, 480), "skyblue")
    assert detector.findings(landscape) == [] and detector.is_nsfw(landscape) is False


def test_sampling_defaults_come_from_the_model(tiny_model: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from seqdream.engines.flux2_klein import BASE, DISTILLED, Flux2KleinOptions, resolve_sampling
    from seqdream.engines.model_folder import model_defaults

    assert load_engine(Settings(model=str(tiny_model))).sampling == DISTILLED  # tiny model is_distilled
    hub_id = "hub/base-model"
    assert resolve_sampling(Flux2KleinOptions(model=hub_id), False, model_defaults(hub_id)) == BASE
    shipped = tmp_path / "shipped"
    shutil.copytree(tiny_model, shipped)
    (shipped / "seqdream.json").write_text(json.dumps({"native_resolution": 64, "num_inference_steps": 3}))
    engine = load_engine(Settings(model=str(shipped)))
    assert (engine.sampling.native_resolution, engine.sampling.num_inference_steps) == (64, 3)
    assert engine.sampling.guidance_scale == DISTILLED.guidance_scale
    overridden = load_engine(Settings(model=str(shipped), num_inference_steps=2))
    assert overridden.sampling.num_inference_steps == 2  # explicit settings win
    (shipped / "seqdream.json").write_text("{not json")
    with pytest.raises(EngineError, match="not valid JSON"):
        load_engine(Settings(model=str(shipped)))


def test_guidance_stops_after_its_share_of_steps(tmp_path_factory: pytest.TempPathFactory) -> None:
    from pydantic import ValidationError

    from seqdream_devkit.tiny_pipeline import build_tiny_flux2_klein

    base = build_tiny_flux2_klein(tmp_path_factory.mktemp("models") / "tiny-base", distilled=False)
    plan = GenerationPlan(prompts=["a red square"], seeds=[3], width=64, height=64)
    forwards: dict[float, int] = {}
    pictures: dict[float, np.ndarray] = {}
    for until in (1.0, 0.5, 0.25):
        engine = load_engine(
            Settings(model=str(base), native_resolution=64, max_sequence_length=64, num_inference_steps=4,
                     guidance_scale=3.0, guidance_until=until)
        )  # fmt: skip
        assert isinstance(engine, Flux2KleinEngine) and engine.sampling.guidance_until == until
        forwards[until] = 0

        def count(*_: object, until: float = until) -> None:
            forwards[until] += 1

        hook = engine.pipeline.transformer.register_forward_hook(count)
        pictures[until] = np.asarray(engine.generate(plan).images[0])
        hook.remove()
        # the next call guides again from its first step
        assert np.array_equal(np.asarray(engine.generate(plan).images[0]), pictures[until])
    assert forwards == {1.0: 8, 0.5: 6, 0.25: 5}  # 4 guided passes, then one pass per unguided step
    assert not np.array_equal(pictures[1.0], pictures[0.25])
    with pytest.raises(ValidationError):
        Settings(guidance_until=0)
    with pytest.raises(ValidationError):
        Settings(guidance_until=1.5)


def test_the_model_declares_how_group_frames_are_worded(tiny_model: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from seqdream.engines.frame_prompt import FRAME_PROMPT

    assert load_engine(Settings(model=str(tiny_model))).frame_prompt == FRAME_PROMPT  # no seqdream.json
    declared = tmp_path / "declared"
    shutil.copytree(tiny_model, declared)
    template = "{prompt} (image {index} of {count}, {percent}%)"
    (declared / "seqdream.json").write_text(json.dumps({"frame_prompt": template}))
    assert load_engine(Settings(model=str(declared))).frame_prompt == template
    (declared / "seqdream.json").write_text(json.dumps({"frame_prompt": "{prompt} {frame}"}))
    with pytest.raises(EngineError, match=r"seqdream.json: frame_prompt .*unknown field\(s\) \['frame'\]"):
        load_engine(Settings(model=str(declared)))


def test_a_failure_of_the_callers_own_callback_is_not_reported_as_the_models(engine: Flux2KleinEngine) -> None:
    """Storing and signing run in `on_images`: their errors reach the caller as raised, never wrapped
    in 'the model call failed' (a signing error used to read as a broken model)."""
    plan = GenerationPlan(prompts=["a red cube"], seeds=[1], width=64, height=64)

    def signing_fails(_start: int, _images: list[Image.Image]) -> None:
        raise ValueError("the signing certificate has expired")

    with pytest.raises(ValueError, match="certificate has expired") as raised:
        engine.generate(plan, on_images=signing_fails)
    assert not isinstance(raised.value, EngineError)


def test_storing_a_batch_does_not_hold_the_engine(engine: Flux2KleinEngine) -> None:
    """`on_images` (storing, signing, checking) runs outside the engine's lock: while one task stores
    its images, another task's images render on the same engine."""
    storing, release = threading.Event(), threading.Event()

    def slow_store(_start: int, _images: list[Image.Image]) -> None:
        storing.set()
        assert release.wait(60)

    first = threading.Thread(
        target=engine.generate, args=(GenerationPlan(prompts=["a red cube"], seeds=[1], width=64, height=64),),
        kwargs={"on_images": slow_store}, daemon=True,
    )  # fmt: skip
    first.start()
    try:
        assert storing.wait(60)
        other: list[int] = []
        second = threading.Thread(
            target=lambda: other.append(len(engine.generate(GenerationPlan(["a blue cube"], [2], 64, 64)).images)),
            daemon=True,
        )
        second.start()
        second.join(60)
        assert other == [1], "the second task waited for the first one's storing"
    finally:
        release.set()
        first.join(60)


def test_a_failed_batch_store_stops_the_rest_of_the_group(engine: Flux2KleinEngine) -> None:
    """What `on_images` raises for one batch (the task was deleted, storage failed) stops the group at
    the next step, not after every batch has rendered; and it reaches the caller unchanged."""
    plan = GenerationPlan(prompts=[f"a red cube, frame {k}" for k in range(12)], seeds=list(range(12)), width=64,
                          height=64)  # fmt: skip
    batches: list[int] = []

    def storage_down(start: int, _images: list[Image.Image]) -> None:
        batches.append(start)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        engine.generate(plan, on_images=storage_down)
    assert batches == [0]  # 12 images are 3+ batches at max_batch 4: only the first was handed over
