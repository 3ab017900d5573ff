"""The production engine at full size: FLUX.2 [klein] 4B's architecture with random weights.

Builds the pipeline from the configs in bench/configs (no download), saves it, loads it through
the same `Flux2KleinEngine` the service uses and times, per speed-up setting: one image at 1024²
and 2048², 4- and 14-image groups at 1024² with 0, 3 and 10 references, each with its peak GPU
memory and its ratio to the plain diffusers call of the same pipeline (all prompts in one batch,
the references passed as they are); and single-image tasks at 1024² and 2048² drawn one by one
against drawn as one batch (batching across tasks). Random weights draw noise, but they cost what
real ones do.

  python bench/gpu.py                       # on a GPU: full size, settings plain,compile,fp8,compile+fp8
  python bench/gpu.py --scale toy           # anywhere: the tiny pipeline at 64²/128² (CI runs this)
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from seqdream.config import Settings
from seqdream.engines.base import GenerationPlan
from seqdream.engines.flux2_klein import Flux2KleinEngine
from seqdream.engines.registry import load_engine
from seqdream_devkit.tiny_pipeline import DEFAULT_CORPUS, build_tiny_flux2_klein, train_tokenizer

CONFIG = Path(__file__).parent / "configs" / "flux2-klein-4b.json"
SETTINGS: dict[str, dict[str, object]] = {
    "plain": {},
    "compile": {"compile": True},
    "fp8": {"quantize": "fp8"},
    "compile+fp8": {"compile": True, "quantize": "fp8"},
    "int8": {"quantize": "int8"},
}


@dataclass(frozen=True)
class Scale:
    small: int  # the "1024²" side
    large: int  # the "2048²" side
    device: str
    build: Callable[[Path, str], Path]


@dataclass(frozen=True)
class Case:
    label: str
    count: int
    large: bool
    references: int


def cases(groups: list[int], refs: list[int]) -> list[Case]:
    return [
        Case("1 image 1K", 1, False, 0),
        Case("1 image 2K", 1, True, 0),
        *(Case(f"{n} images 1K, {r} refs", n, False, r) for n in groups for r in refs),
    ]


def build_full_size(folder: Path, device: str) -> Path:
    """klein 4B's architecture, random bf16 weights made on the GPU, saved in diffusers format."""
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = json.loads(CONFIG.read_text())
    tokenizer = train_tokenizer(DEFAULT_CORPUS, 1000)  # ids stay far below the real vocabulary's size
    started = time.perf_counter()
    with torch.device(device):
        transformer = Flux2Transformer2DModel(**config["transformer"]).to(torch.bfloat16)
        special = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
        text = Qwen3Config(**config["text_encoder"], **special)
        text_encoder = Qwen3ForCausalLM(text).to(torch.bfloat16)
        vae_config = config["vae"]
        blocks = len(vae_config["block_out_channels"])
        kinds = {"down_block_types": ("DownEncoderBlock2D",) * blocks, "up_block_types": ("UpDecoderBlock2D",) * blocks}
        vae = AutoencoderKLFlux2(**vae_config, **kinds).to(torch.bfloat16)
    pipeline = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**config["scheduler"]),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        is_distilled=True,
    )
    pipeline.save_pretrained(folder)
    parameters = sum(p.numel() for p in transformer.parameters()) / 1e9
    print(f"built klein 4B (transformer {parameters:.2f} B parameters) in {time.perf_counter() - started:.0f}s")
    del pipeline, transformer, text_encoder, vae
    gc.collect()
    torch.cuda.empty_cache()
    return folder


SCALES = {
    "full": Scale(1024, 2048, "cuda", build_full_size),
    "toy": Scale(64, 128, "cpu", lambda folder, _device: build_tiny_flux2_klein(folder)),
}


def references(count: int, side: int) -> list[Image.Image]:
    rng = np.random.default_rng(count)
    return [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(count)]


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def timed(device: str, repeats: int, run: Callable[[], object], warmups: int = 1) -> tuple[float | None, float | None]:
    """Median seconds over `repeats` runs after `warmups` untimed ones, and the peak memory; None on OOM."""
    try:
        for _ in range(warmups):
            run()
        reset_peak(device)
        seconds = []
        for _ in range(repeats):
            synchronize(device)
            started = time.perf_counter()
            run()
            synchronize(device)
            seconds.append(time.perf_counter() - started)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return None, None
    return statistics.median(seconds), peak_gib(device)


def plain_call(engine: Flux2KleinEngine, plan: GenerationPlan) -> Callable[[], object]:
    """What a diffusers user writes: one call with every prompt and every reference of the plan."""
    sampling = engine.sampling
    return lambda: engine.pipeline(
        prompt=plan.prompts,
        image=plan.references or None,
        height=plan.height,
        width=plan.width,
        num_inference_steps=sampling.num_inference_steps,
        guidance_scale=sampling.guidance_scale,
        max_sequence_length=sampling.max_sequence_length,
    )


def tasks_batched(
    engine: Flux2KleinEngine, name: str, scale: Scale, count: int, repeats: int, warmups: int = 1
) -> None:
    """Single-image tasks of one size, drawn one after another and as one batch of independent images
    (what a worker does with tasks that arrive together, SEQDREAM_BATCH_TASKS): seconds for all."""
    for side, size in ((scale.small, "1K"), (scale.large, "2K")):
        plans = [GenerationPlan([f"task {k + 1}"], [k], side, side) for k in range(count)]
        together = GenerationPlan([plan.prompts[0] for plan in plans], list(range(count)), side, side, independent=True)
        alone, _ = timed(scale.device, repeats, lambda plans=plans: [engine.generate(plan) for plan in plans], warmups)
        batched, peak = timed(scale.device, repeats, lambda plan=together: engine.generate(plan), warmups)
        for label, seconds in (("one by one", alone), ("batched", batched)):
            per_image = seconds / count if seconds else None
            memory = fmt(peak, "{:.1f}") if scale.device == "cuda" and label == "batched" else "-"
            print(f"| {name} | {count} single-image tasks {size}, {label} | {fmt(seconds, '{:.2f}')} "
                  f"| {fmt(per_image, '{:.3f}')} | {memory} | | |", flush=True)  # fmt: skip
        if alone and batched:
            print(f"| {name} | {count} tasks {size}: images/s batched ÷ one by one | x{alone / batched:.2f} | | | | |")


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def fmt(value: float | None, pattern: str) -> str:
    return "OOM" if value is None else pattern.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--settings", default="plain,compile,fp8,compile+fp8", help=f"from: {','.join(SETTINGS)}")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warmups", type=int, default=1, help="untimed runs before each timing (0: the toy test)")
    parser.add_argument("--max-batch", type=int, default=4)
    parser.add_argument("--model", type=Path, help="an existing model folder instead of building one")
    parser.add_argument("--groups", default="4,14", help="group sizes to time, besides one image")
    parser.add_argument("--refs", default="0,3,10", help="reference counts to time each group with")
    args = parser.parse_args()
    scale = SCALES[args.scale]
    names = [name.strip() for name in args.settings.split(",")]
    unknown = [name for name in names if name not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; known: {list(SETTINGS)}")

    folder = args.model or scale.build(Path(tempfile.mkdtemp(prefix="seqdream-gpu-bench-")) / "model", scale.device)
    device_name = torch.cuda.get_device_name() if scale.device == "cuda" else "CPU (toy scale)"
    print(f"device: {device_name}; model: {folder}; max batch {args.max_batch}; medians of {args.repeats}")
    print("| setting | case | seconds | per image | peak GiB | plain diffusers s | ratio |")
    print("|---|---|---|---|---|---|---|")
    plain_seconds: dict[str, float | None] = {}
    for name in names:
        sizes = f"{scale.small}*{scale.small},{scale.large}*{scale.large}"
        started = time.perf_counter()
        engine = load_engine(
            Settings(
                model=str(folder),
                device=scale.device,
                native_resolution=scale.large,
                max_batch=args.max_batch,
                compile_warmup=sizes,
                **SETTINGS[name],  # type: ignore[arg-type]
            )
        )
        assert isinstance(engine, Flux2KleinEngine)
        load_s = time.perf_counter() - started
        one_image: float | None = None
        for case in cases(numbers(args.groups), numbers(args.refs)):
            side = scale.large if case.large else scale.small
            plan = GenerationPlan(
                prompts=[f"image {k + 1} of a group" for k in range(case.count)],
                seeds=list(range(case.count)),
                width=side,
                height=side,
                references=references(case.references, side),
            )
            seconds, peak = timed(
                scale.device, args.repeats, lambda run=engine.generate, plan=plan: run(plan), args.warmups
            )
            if name == "plain":  # the same pipeline, called the plain way
                plain_seconds[case.label] = timed(scale.device, args.repeats, plain_call(engine, plan), args.warmups)[0]
            plain = plain_seconds.get(case.label)
            ratio = f"x{seconds / plain:.2f}" if seconds and plain else "-"
            one_image = seconds if case.label == "1 image 1K" else one_image
            per_image = seconds / case.count if seconds else None
            print(
                f"| {name} | {case.label} | {fmt(seconds, '{:.2f}')} | {fmt(per_image, '{:.3f}')} "
                f"| {fmt(peak, '{:.1f}') if scale.device == 'cuda' else '-'} | {fmt(plain, '{:.2f}')} | {ratio} |",
                flush=True,
            )
            if case.count > 1 and case.references == 0 and seconds and one_image:
                goal = " (goal <= x4)" if case.count == 14 else ""
                print(f"| {name} | {case.count}-image group ÷ 1 image | x{seconds / one_image:.1f}{goal} | | | | |")
        tasks_batched(engine, name, scale, args.max_batch, args.repeats, args.warmups)
        print(f"| {name} | load (+ compile warm-up) | {load_s:.1f} | | | | |", flush=True)
        del engine
        gc.collect()
        torch._dynamo.reset()
        if scale.device == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
