"""The optional speed-ups, each through the production engine on the tiny pipeline (CPU).

Compiling runs inductor (a C++ toolchain on CPU), so this module is in the slow layer."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from seqdream.config import Settings
from seqdream.engines.acceleration import COMPILE_BUCKET, compiled_graphs
from seqdream.engines.base import EngineError, GenerationPlan
from seqdream.engines.flux2_klein import Flux2KleinEngine
from seqdream.engines.registry import load_engine
from seqdream_devkit.tiny_pipeline import build_tiny_flux2_klein
from support.engines import count_block_calls

pytestmark = pytest.mark.slow  # starts servers or processes

# float32: the accelerated paths are compared pixel for pixel with eager ones at one precision
# (compiled bfloat16 kernels round differently, up to 6 levels of 255).
TINY = {"max_sequence_length": 64, "max_batch": 2, "dtype": "float32"}


def pixels(images) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


def test_compiled_engine_warms_up_then_serves_every_size_without_recompiling(tiny_model: Path) -> None:
    plain = load_engine(Settings(model=str(tiny_model), native_resolution=256, **TINY))
    before = compiled_graphs()
    engine = load_engine(
        Settings(model=str(tiny_model), native_resolution=256, compile=True, compile_warmup="256*256", **TINY)
    )
    assert isinstance(engine, Flux2KleinEngine)
    blocks = [*engine.pipeline.transformer.transformer_blocks, *engine.pipeline.transformer.single_transformer_blocks]
    assert all(block._compiled_call_impl is not None for block in blocks)
    warmed = compiled_graphs()
    assert warmed > before  # the warm-up compiled at load time, before any task

    seen: list[tuple[int, int]] = []
    original = engine.pipeline.__class__.__call__

    def recording(pipe, *args, **kwargs):
        if pipe is engine.pipeline:
            seen.append((kwargs["width"], kwargs["height"]))
        return original(pipe, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.pipeline.__class__, "__call__", recording)
        # Sizes other than the warm-up's, a group (batch 1, then 2 with the anchor) and a reference.
        group = engine.generate(GenerationPlan(prompts=["a red square"] * 3, seeds=[1, 2, 3], width=512, height=256))
        wide = engine.generate(GenerationPlan(prompts=["a blue circle"], seeds=[4], width=200, height=90))
    assert [image.size for image in group.images] == [(512, 256)] * 3 and wide.images[0].size == (200, 90)
    assert all(w % COMPILE_BUCKET == 0 and h % COMPILE_BUCKET == 0 for w, h in seen)  # sizes snap to buckets
    assert compiled_graphs() == warmed  # dynamic shapes: no size or batch recompiled

    # The compiled blocks compute what the plain ones do (same seed, same render size).
    square = GenerationPlan(prompts=["a green cross"], seeds=[7], width=256, height=256)
    difference = np.abs(pixels(engine.generate(square).images) - pixels(plain.generate(square).images))
    assert difference.max() <= 3, difference.max()


def test_int8_quantised_transformer_still_draws_the_same_picture(tiny_model: Path) -> None:
    plain = load_engine(Settings(model=str(tiny_model), native_resolution=64, **TINY))
    engine = load_engine(Settings(model=str(tiny_model), native_resolution=64, quantize="int8", **TINY))
    linear = engine.pipeline.transformer.transformer_blocks[0].attn.to_q
    assert "Int8" in type(linear.weight).__name__  # torchao's tensor subclass replaced the weight
    assert "Int8" not in type(plain.pipeline.transformer.transformer_blocks[0].attn.to_q.weight).__name__
    plan = GenerationPlan(prompts=["a red square", "a blue circle"], seeds=[1, 2], width=64, height=64)
    quantised, reference = pixels(engine.generate(plan).images), pixels(plain.generate(plan).images)
    assert quantised.shape == reference.shape == (2, 64, 64, 3)
    assert np.abs(quantised - reference).mean() < 4  # weight rounding, not a different image
    assert not np.array_equal(quantised[0], quantised[1])


def test_fp8_needs_a_recent_gpu_and_says_so(tiny_model: Path) -> None:
    with pytest.raises(EngineError, match=r"fp8 needs a CUDA GPU of compute capability >= 8.9 \(found cpu\)"):
        load_engine(Settings(model=str(tiny_model), device="cpu", quantize="fp8", **TINY))


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_flux2_klein(tmp_path_factory.mktemp("models") / "tiny-base", distilled=False)


def test_magcache_calibrates_at_load_and_skips_steps_on_base_models(base_model: Path, caplog) -> None:
    settings = {"model": str(base_model), "native_resolution": 64, "num_inference_steps": 20, **TINY}
    plain = load_engine(Settings(**settings))
    with caplog.at_level(logging.INFO, logger="seqdream"):
        cached = load_engine(Settings(**settings, cache="magcache", cache_threshold=0.9))
    assert not plain.cached and cached.cached
    logged = [r.getMessage() for r in caplog.records if "calibrated MagCache" in r.getMessage()]
    ratios = json.loads(logged[0].split("to skip it: ")[1])["mag_ratios"]
    assert len(ratios) == 20 and ratios[0] == 1.0 and all(r > 0 for r in ratios)

    plain_calls, cached_calls = count_block_calls(plain), count_block_calls(cached)
    plan = GenerationPlan(prompts=["a red square"], seeds=[3], width=64, height=64)
    reference = pixels(plain.generate(plan).images)
    assert plain_calls[0] == 2 * 20  # guidance: a conditional and an unconditional pass per step
    for _ in range(2):  # the cache starts afresh on every call
        cached_calls[0] = 0
        image = pixels(cached.generate(plan).images)
        assert image.shape == reference.shape
        assert 2 * 4 <= cached_calls[0] < plain_calls[0], cached_calls[0]  # the first 20 % always run
    assert np.abs(image - reference).mean() < 20


def test_magcache_uses_the_ratios_a_model_folder_ships(tmp_path: Path, base_model: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(base_model, model)
    (model / "seqdream.json").write_text(json.dumps({"mag_ratios": [1.0] * 20}))  # nothing ever changes
    engine = load_engine(
        Settings(model=str(model), native_resolution=64, num_inference_steps=20, cache="magcache", **TINY)
    )
    calls = count_block_calls(engine)
    engine.generate(GenerationPlan(prompts=["a red square"], seeds=[3], width=64, height=64))
    # Steps 1-4 always run; then at most 3 skipped in a row: 4 + 4 of the remaining 16, twice (guidance).
    assert calls[0] == 2 * (4 + 4), calls[0]
    (model / "seqdream.json").write_text(json.dumps({"mag_ratios": "fast"}))
    with pytest.raises(EngineError, match="mag_ratios must be a list of numbers"):
        load_engine(Settings(model=str(model), cache="magcache", **TINY))


def test_magcache_is_not_used_on_distilled_models(tiny_model: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        engine = load_engine(Settings(model=str(tiny_model), native_resolution=64, cache="magcache", **TINY))
    assert not engine.cached and "step-distilled" in caplog.text
    assert engine.generate(GenerationPlan(prompts=["p"], seeds=[1], width=64, height=64)).images[0].size == (64, 64)


@pytest.mark.parametrize("sizes", ["1024x1024", "1024*", "32*32", "1024*5000"])
def test_warmup_sizes_are_checked(sizes: str) -> None:
    with pytest.raises(ValidationError, match="WIDTH\\*HEIGHT"):
        Settings(compile_warmup=sizes)


def test_warmup_sizes_parse() -> None:
    assert Settings(compile_warmup="1024*1024, 2048*1536").warmup_sizes == ((1024, 1024), (2048, 1536))


def test_a_model_folder_turns_magcache_on_and_settings_override_it(tmp_path: Path, base_model: Path, caplog) -> None:
    model = tmp_path / "model"
    shutil.copytree(base_model, model)
    declared = {"cache": "magcache", "cache_threshold": 0.2, "mag_ratios": [1.0] * 20}
    (model / "seqdream.json").write_text(json.dumps(declared))
    common = {"model": str(model), "native_resolution": 64, "num_inference_steps": 20, **TINY}
    plan = GenerationPlan(prompts=["a red square"], seeds=[3], width=64, height=64)

    with caplog.at_level(logging.INFO, logger="seqdream"):
        engines = {
            "auto": load_engine(Settings(**common)),  # SEQDREAM_CACHE unset: the folder's choice
            "threshold": load_engine(Settings(**common, cache_threshold=0.5)),
            "none": load_engine(Settings(**common, cache="none")),
        }
    loaded = [r.getMessage() for r in caplog.records if "speed-ups:" in r.getMessage()]
    assert [line.split("speed-ups: ")[1] for line in loaded] == ["cache=magcache@0.2", "cache=magcache@0.5", "none"]
    assert [engine.cached for engine in engines.values()] == [True, True, False]
    calls = {name: count_block_calls(engine) for name, engine in engines.items()}
    images = {name: pixels(engine.generate(plan).images) for name, engine in engines.items()}
    assert calls["auto"][0] == 2 * (4 + 4) and calls["none"][0] == 2 * 20
    assert np.abs(images["auto"] - images["none"]).mean() < 20  # the same picture, roughly

    # A folder that declares nothing keeps the cache off; settings can still turn it on.
    assert not load_engine(Settings(**{**common, "model": str(base_model)})).cached


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"cache": "teacache"}, "cache must be none or magcache, not 'teacache'"),
        ({"cache": "magcache", "cache_threshold": 2}, r"cache_threshold must be a number in \(0, 1\], not 2"),
        ({"cache": "magcache", "cache_threshold": "high"}, "cache_threshold must be a number"),
    ],
)
def test_a_model_folders_bad_cache_declaration_is_named(tmp_path: Path, base_model: Path, declared, message) -> None:
    model = tmp_path / "model"
    shutil.copytree(base_model, model)
    (model / "seqdream.json").write_text(json.dumps(declared))
    with pytest.raises(EngineError, match=message) as raised:
        load_engine(Settings(model=str(model), **TINY))
    assert str(raised.value).startswith(str(model / "seqdream.json"))  # names the file to fix
