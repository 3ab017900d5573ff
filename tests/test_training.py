"""The built-in model's training script runs and produces a folder the service loads as is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seqdream.config import Settings
from seqdream.engines.base import GenerationPlan
from seqdream.engines.registry import load_engine

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "train_builtin.py"


def test_short_training_run_gives_a_loadable_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "builtin"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--vae-minutes", "0.05", "--minutes", "0.1", "--batch", "4"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "saved to" in result.stdout and (out / "seqdream.json").is_file()
    assert "scenes read back exactly:" in result.stdout  # the VAE gate is reported
    engine = load_engine(Settings(model=str(out)))
    assert engine.sampling.native_resolution == 64 and engine.sampling.guidance_scale == 3.0
    plan = GenerationPlan(prompts=["a small red circle in the center on a white background"], seeds=[1],
                          width=1024, height=1024)  # fmt: skip
    assert engine.generate(plan).images[0].size == (1024, 1024)
