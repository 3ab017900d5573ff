"""The built-in model's training script runs and produces a folder the service loads as is."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import random
import shutil
from pathlib import Path

import pytest

from seqdream.config import Settings
from seqdream.engines.base import GenerationPlan
from seqdream.engines.registry import load_engine

pytestmark = pytest.mark.slow  # trains for seconds per test

SCRIPT = Path(__file__).resolve().parents[2] / "training" / "train_builtin.py"


def train(cwd: Path, *args: str) -> str:
    """Run the script's `main` in this process (no interpreter and torch import per run), in `cwd`, so
    that what it writes by default (build/builtin-state.pt) lands there and never over a developer's
    real optimizer moments in the repository's build/. Returns what it printed."""
    printed = io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(printed):
        training_script().main(["--batch", "4", *args])
    return printed.getvalue()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained one step from scratch (a 2-step VAE), and beside it the optimizer moments that
    run saved (`build/builtin-state.pt`, for its 400-token vocabulary): what the resume tests start from."""
    folder = tmp_path_factory.mktemp("trained")
    train(folder, "--out", str(folder / "base"), "--vae-steps", "2", "--steps", "1")
    return folder


def started_from(base: Path, tmp_path: Path) -> Path:
    """A copy of the base run's folder and moments in `tmp_path` (a test changes what it resumes)."""
    shutil.copytree(base / "base", tmp_path / "base")
    (tmp_path / "build").mkdir()
    shutil.copy(base / "build" / "builtin-state.pt", tmp_path / "build" / "builtin-state.pt")
    return tmp_path / "base"


def test_short_training_in_two_stages_gives_a_loadable_pipeline(tmp_path: Path) -> None:
    vae_only = train(tmp_path, "--out", str(tmp_path / "vae"), "--vae-steps", "4", "--steps", "0")
    assert "trained 0 steps" in vae_only and "scenes read back exactly:" in vae_only  # the VAE gate is reported
    out = tmp_path / "builtin"
    output = train(tmp_path, "--out", str(out), "--vae-from", str(tmp_path / "vae"), "--steps", "6")
    assert "trained 6 steps" in output and (out / "seqdream.json").is_file()
    assert (tmp_path / "build" / "builtin-state.pt").is_file()  # the default state, in the run's folder
    vae_files = [
        Path(folder, "vae", "diffusion_pytorch_model.safetensors").read_bytes() for folder in (tmp_path / "vae", out)
    ]
    assert vae_files[0] == vae_files[1]  # stage 2 reuses stage 1's VAE untouched
    engine = load_engine(Settings(model=str(out)))
    assert engine.sampling.native_resolution == 64 and engine.sampling.guidance_scale == 1.5
    assert engine.pipeline.scheduler.config.use_dynamic_shifting is False  # the training shift, fixed
    # The service words group frames exactly as training did.
    assert engine.frame_prompt == "{prompt} (image {index} of {count}, {percent}%)"
    assert json.loads((out / "training.json").read_text())["runs"][-1]["frame_prompt"] == engine.frame_prompt
    # Every save declares MagCache with this checkpoint's own ratios, and the service turns it on.
    declared = json.loads((out / "seqdream.json").read_text())
    assert declared["cache"] == "magcache" and len(declared["mag_ratios"]) == 20 and declared["mag_ratios"][0] == 1.0
    assert engine.cached
    plan = GenerationPlan(prompts=["a small red circle in the center on a white background"], seeds=[1],
                          width=1024, height=1024)  # fmt: skip
    assert engine.generate(plan).images[0].size == (1024, 1024)

    # Training accumulates: resume from the folder (and, once saved, its optimizer moments elsewhere).
    state = tmp_path / "state" / "moments.pt"
    more = str(tmp_path / "more")
    resumed = train(tmp_path, "--resume", str(out), "--out", more, "--state", str(state), "--steps", "3")
    assert "fresh moments" in resumed and "trained 3 steps (9 in all)" in resumed and state.is_file()
    again = train(
        tmp_path, "--resume", more, "--out", more, "--state", str(state), "--steps", "2", "--autocast", "bf16"
    )
    assert "resumed optimizer moments" in again and "trained 2 steps (11 in all)" in again
    record = json.loads((tmp_path / "more" / "training.json").read_text())
    assert record["transformer_steps"] == 11 and [run["steps"] for run in record["runs"]] == [6, 3, 2]
    assert [run["autocast"] for run in record["runs"]] == ["none", "none", "bf16"]  # each run says how it ran
    assert load_engine(Settings(model=str(tmp_path / "more"))).generate(plan).images[0].size == (1024, 1024)

    # --declare-cache re-measures a folder's ratios in place and keeps what else it declares.
    folder = tmp_path / "more" / "seqdream.json"
    folder.write_text(json.dumps({"frame_prompt": "{prompt} (image {index} of {count})", "mag_ratios": [9.0]}))
    assert "declared MagCache" in train(tmp_path, "--declare-cache", str(tmp_path / "more"))
    redeclared = json.loads(folder.read_text())
    assert redeclared["frame_prompt"] == "{prompt} (image {index} of {count})" and redeclared["cache"] == "magcache"
    assert len(redeclared["mag_ratios"]) == 20 and 9.0 not in redeclared["mag_ratios"]


def test_resuming_with_a_grown_vocabulary_keeps_old_ids_and_loads(base: Path, tmp_path: Path) -> None:
    """New whole-word tokens are added after the old ones; old prompts tokenize exactly as before,
    the text encoder's embedding grows to match, and the service loads the result."""
    from transformers import AutoTokenizer

    started_from(base, tmp_path)
    output = train(tmp_path, "--resume", str(tmp_path / "base"), "--out", str(tmp_path / "grown"),
                   "--grow-vocab", "700", "--state", str(tmp_path / "state.pt"), "--steps", "1")  # fmt: skip
    assert "vocabulary grown by" in output
    old, new = (AutoTokenizer.from_pretrained(tmp_path / name / "tokenizer") for name in ("base", "grown"))
    assert len(new) > len(old)
    assert {token: index for token, index in new.get_vocab().items() if token in old.get_vocab()} == old.get_vocab()
    prompt = "a small red circle in the center on a white background"
    assert new(prompt)["input_ids"] == old(prompt)["input_ids"]
    # Both read capitals as lower case: the capital is not a word the model has to learn apart.
    for tokenizer in (old, new):
        assert tokenizer("Delete The Square.")["input_ids"] == tokenizer("delete the square.")["input_ids"]
    config = json.loads((tmp_path / "grown" / "text_encoder" / "config.json").read_text())
    assert config["vocab_size"] == len(new)
    plan = GenerationPlan(prompts=["delete the square."], seeds=[1], width=1024, height=1024)
    assert load_engine(Settings(model=str(tmp_path / "grown"))).generate(plan).images[0].size == (1024, 1024)


def test_uncased_keeps_every_id_and_survives_a_save(tmp_path: Path) -> None:
    """A cased checkpoint's tokenizer (legs before 17) becomes uncased without moving an id:
    lower-case prompts tokenize exactly as before, capitals tokenize as their lower case."""
    from transformers import AutoTokenizer

    from seqdream_devkit.tiny_pipeline import train_tokenizer, uncased

    corpus = ["make the background yellow", "Make the background yellow.", "delete the red square"] * 20
    cased = train_tokenizer(corpus, vocab_size=300)
    assert cased("Make")["input_ids"] != cased("make")["input_ids"]  # the premise: cased tells them apart
    uncased(cased).save_pretrained(tmp_path)
    lowered = AutoTokenizer.from_pretrained(tmp_path)
    assert lowered.get_vocab() == cased.get_vocab()
    assert lowered("make the background yellow.")["input_ids"] == cased("make the background yellow.")["input_ids"]
    assert lowered("Make The Background YELLOW.")["input_ids"] == cased("make the background yellow.")["input_ids"]
    chat = [{"role": "user", "content": "Delete the red square"}]
    assert lowered.apply_chat_template(chat, tokenize=False) == cased.apply_chat_template(chat, tokenize=False)
    assert uncased(lowered).backend_tokenizer.to_str() == lowered.backend_tokenizer.to_str()  # idempotent


def test_moments_of_another_model_are_set_aside_not_crashed_on(base: Path, tmp_path: Path) -> None:
    first = started_from(base, tmp_path)
    state = tmp_path / "build" / "builtin-state.pt"  # written by the base run, for its 400-token vocabulary
    output = train(tmp_path, "--resume", str(first), "--out", str(tmp_path / "b"), "--grow-vocab", "700",
                   "--steps", "1")  # fmt: skip
    assert "vocabulary grown by" in output  # a grown vocabulary starts fresh moments and saves its own
    output = train(tmp_path, "--resume", str(first), "--out", str(tmp_path / "c"), "--steps", "1")
    assert "belongs to another model: fresh moments" in output and "trained 1 steps" in output
    assert state.is_file()


@functools.cache
def training_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("train_builtin", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_draws_object_binding_edits_on_busy_scenes_and_the_far_frames_of_long_groups() -> None:
    script = training_script()
    rng = random.Random(5)
    for kind in script.BINDING_EDITS:
        scenes = [script.binding_edit(rng, kind).scene for _ in range(400)]
        one_object = sum(len(scene.things) == 1 for scene in scenes) / len(scenes)
        assert one_object < 0.25, (kind, one_object)  # a third hold one object before the redraw, 1/6 after
    replace = [script.binding_edit(rng, "replace").scene for _ in range(400)]
    assert sum(len(scene.things) == 1 for scene in replace) / len(replace) > 0.25  # other kinds: as the devkit draws
    frames = [example.prompt for _ in range(200) for example in script.sample_batch(rng, "sequence", 2)]
    late = [prompt for prompt in frames if frame_of(prompt)[0] >= 10]
    assert len(late) / len(frames) > 0.15, len(late)  # about 0.28; drawn uniformly, 1 in 10 would be
    growing = [frame_of(prompt) for prompt in frames if " growing" in prompt]
    early = [(index, count) for index, count in growing if count >= 10 and index <= count // 3 + 1]
    assert len(early) / len(growing) > 0.18, len(early)  # about 0.3; without the early share, about 0.06


def frame_of(prompt: str) -> tuple[int, int]:
    """(k, N) from a frame prompt's "(image k of N, p%)"."""
    index, _, count = prompt.rsplit("(image ", 1)[1].split(",")[0].split(" ")
    return int(index), int(count)
