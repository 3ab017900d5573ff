"""bench/gpu.py: its full-size configs are klein 4B's architecture, and it runs at toy scale on CPU."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # starts servers or processes

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "gpu.py"


def test_full_size_configs_are_klein_4b() -> None:
    """Built on the meta device (no memory): FLUX.2 [klein] 4B is a 3.9 B transformer on Qwen3-4B."""
    from diffusers import Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = json.loads((ROOT / "bench" / "configs" / "flux2-klein-4b.json").read_text())
    with torch.device("meta"):
        transformer = Flux2Transformer2DModel(**config["transformer"])
        text_encoder = Qwen3ForCausalLM(Qwen3Config(**config["text_encoder"]))
    assert len(transformer.transformer_blocks) == 5 and len(transformer.single_transformer_blocks) == 20
    assert round(sum(p.numel() for p in transformer.parameters()) / 1e9, 2) == 3.88
    assert round(sum(p.numel() for p in text_encoder.parameters()) / 1e9, 2) == 4.02
    # The pipeline stacks Qwen3's hidden states 9, 18 and 27 as the transformer's text input.
    assert config["transformer"]["joint_attention_dim"] == 3 * config["text_encoder"]["hidden_size"]


def test_toy_scale_prints_a_row_per_setting_and_case(tiny_model: Path) -> None:
    command = [sys.executable, str(BENCH), "--scale", "toy", "--model", str(tiny_model), "--settings", "plain,int8"]
    command += ["--groups", "4", "--refs", "0,3", "--repeats", "1", "--warmups", "0"]  # CPU: nothing to warm
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines() if line.startswith("| ")]
    timed = {(cells[0].strip(), cells[1].strip()): cells for cells in rows
             if re.fullmatch(r" [\d.]+ ", cells[3]) and "single-image tasks" not in cells[1]}  # fmt: skip
    tasks = {(cells[0].strip(), cells[1].strip()) for cells in rows if "single-image tasks" in cells[1]}
    assert len(tasks) == 8  # two settings x two sizes x (one by one, batched)
    cases = ["1 image 1K", "1 image 2K", "4 images 1K, 0 refs", "4 images 1K, 3 refs"]
    assert set(timed) == {(setting, case) for setting in ("plain", "int8") for case in cases}
    counts = {case: int(case.split()[0]) for case in cases}
    for (_setting, case), cells in timed.items():
        per_image, plain, ratio = float(cells[3]), float(cells[5]), float(cells[6].strip().removeprefix("x"))
        seconds = per_image * counts[case]  # to 0.001 s per image; plain and the ratio are to 0.01
        assert seconds > 0 and plain > 0
        rounding = 0.005 * (ratio + plain) + 0.0005 * counts[case] + 0.001
        assert abs(ratio * plain - seconds) <= rounding, (case, cells)
    assert any("4-image group ÷ 1 image" in line for line in result.stdout.splitlines())
    batching = [line for line in result.stdout.splitlines() if "images/s batched ÷ one by one" in line]
    assert len(batching) == 4  # two settings, two sizes
    assert all(float(line.split("|")[3].strip().removeprefix("x")) > 0 for line in batching)
    assert sum("load (+ compile warm-up)" in line for line in result.stdout.splitlines()) == 2
    assert "device: CPU (toy scale)" in result.stdout
