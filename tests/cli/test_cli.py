"""The command line: one-shot generation with a progress bar, and key management, run in this process
with typer's runner (the commands that serve or start workers are tested as processes elsewhere)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from seqdream_devkit.images import png_bytes
from support.servers import TEST_ENV, cli_in_process


def run_cli(tmp_path: Path, model: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`seqdream ARGS` in this process, on a data folder of its own and the given model."""
    env = {**TEST_ENV, "SEQDREAM_DATA_DIR": str(tmp_path / "data"), "SEQDREAM_MODEL": str(model)}
    return cli_in_process(env, *args)


def test_generate_writes_the_group(tiny_model: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref.png"
    ref.write_bytes(png_bytes((128, 128), "green"))
    result = run_cli(
        tmp_path,
        tiny_model,
        "generate",
        "a series of 3 images of a frog",
        "-i",
        str(ref),
        "--size",
        "1024*1536",
        "--max-images",
        "5",
        "--seed",
        "9",
        "-o",
        str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    paths = [Path(line) for line in result.stdout.split()]
    assert [p.name for p in paths] == ["seqdream-9-1.png", "seqdream-9-2.png", "seqdream-9-3.png"]
    assert all(Image.open(p).size == (1024, 1536) for p in paths)
    # Not a terminal: plain lines, one per quarter of the steps, instead of a bar.
    lines = [line for line in result.stderr.splitlines() if line.startswith("step ")]
    assert [line.split("(")[1] for line in lines] == ["25%)", "50%)", "75%)", "100%)"], result.stderr
    assert "\r" not in result.stderr and "seed 9" in result.stderr


def test_generate_rejects_bad_arguments(tiny_model: Path, tmp_path: Path) -> None:
    result = run_cli(tmp_path, tiny_model, "generate", "x", "--size", "100*100")
    assert result.returncode != 0 and "1024-4096" in result.stderr
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    result = run_cli(tmp_path, tiny_model, "generate", "x", "-i", str(bad))
    assert result.returncode != 0 and "could not be decoded" in result.stderr


def test_keys_lifecycle(tiny_model: Path, tmp_path: Path) -> None:
    secret = run_cli(tmp_path, tiny_model, "keys", "create", "--name", "ci").stdout.strip()
    assert secret.startswith("sqd_") and len(secret) > 40
    listing = run_cli(tmp_path, tiny_model, "keys", "list").stdout
    assert "ci" in listing and "active" in listing and secret not in listing
    key_id = listing.split()[0]
    assert run_cli(tmp_path, tiny_model, "keys", "revoke", key_id).returncode == 0
    assert "revoked" in run_cli(tmp_path, tiny_model, "keys", "list").stdout
    assert run_cli(tmp_path, tiny_model, "keys", "revoke", key_id).returncode == 1


@pytest.mark.slow  # the settings act at a process's start
@pytest.mark.parametrize("torch_first", [True, False], ids=["torch-loaded-first", "torch-loaded-by-the-engine"])
def test_thread_pools_follow_seqdream_threads(tiny_model: Path, tmp_path: Path, torch_first: bool) -> None:
    """SEQDREAM_THREADS sizes torch's pools, whether torch is in before the settings are read or is
    first loaded by the engine (as in `seqdream serve`, whose API never needs it), and OpenMP's idle
    threads spin only briefly before sleeping."""
    code = (
        ("import torch;" if torch_first else "")
        + "import os, sys; from seqdream.cli.common import model_settings; settings = model_settings();"
        "loaded = 'torch' in sys.modules;"
        "from seqdream.engines.registry import load_engine; load_engine(settings); import torch;"
        "print(loaded, torch.get_num_threads(), torch.get_num_interop_threads(), os.environ['GOMP_SPINCOUNT'],"
        "os.environ['OMP_NUM_THREADS'])"
    )
    env = {**os.environ, "SEQDREAM_THREADS": "1", "SEQDREAM_DATA_DIR": str(tmp_path), "SEQDREAM_MODEL": str(tiny_model)}
    env.pop("GOMP_SPINCOUNT", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(torch_first), "1", "1", "30000", "1"]


def test_the_nsfw_detector_runs_one_thread_without_spinning() -> None:
    from seqdream.safety.nsfw import NudeNetDetector

    detector = NudeNetDetector()
    assert detector.is_nsfw(Image.new("RGB", (64, 64), "white")) is False
    options = detector._model().onnx_session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_worker_device_is_validated_with_a_clear_message(tiny_model: Path, tmp_path: Path) -> None:
    result = run_cli(tmp_path, tiny_model, "worker", "--device", "cuda:x")
    assert result.returncode == 2 and "invalid setting: device" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["65536", "-1", "99999"])
def test_a_metrics_port_out_of_range_is_a_usage_error(tiny_model: Path, tmp_path: Path, port: str) -> None:
    result = run_cli(tmp_path, tiny_model, "worker", "--metrics-port", port)
    assert result.returncode == 2 and "--metrics-port" in result.stderr and "Traceback" not in result.stderr


def test_a_metrics_address_that_cannot_be_bound_stops_the_worker_saying_why(tiny_model: Path, tmp_path: Path) -> None:
    """Before any worker starts: a host that does not resolve, and a port another process holds."""
    result = run_cli(tmp_path, tiny_model, "worker", "--metrics-host", "999.1.1.1", "--metrics-port", "9")
    assert result.returncode == 1 and "cannot serve metrics on 999.1.1.1:9" in result.stderr, result.stderr
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        result = run_cli(tmp_path, tiny_model, "worker", "--metrics-port", port)
    assert result.returncode == 1 and f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr, result.stderr


def test_generate_reads_a_reference_only_up_to_the_limit(tiny_model: Path, tmp_path: Path) -> None:
    """/dev/zero never ends: it was read whole (memory without end); now one byte past the limit."""
    result = run_cli(tmp_path, tiny_model, "generate", "a red circle", "--image", "/dev/zero")
    assert result.returncode == 2 and "the limit is 31457280 bytes" in result.stderr, result.stderr


def test_generate_checks_its_output_folder_before_the_model_runs(tiny_model: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli(tmp_path, tiny_model, "generate", "a red circle", "--out", str(blocker / "images"))
    assert result.returncode == 2 and "cannot make the folder" in result.stderr and "loading" not in result.stderr


def test_generate_stops_with_one_line_when_the_model_cannot_be_loaded(tiny_model: Path, tmp_path: Path) -> None:
    """A damaged or absent model was a 100-400 line traceback; now the engine's one line, exit status 1."""
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_model, damaged)
    weights = next((damaged / "transformer").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])
    for model, said in ((damaged, "Error while deserializing header"), (tmp_path / "absent", "no such folder")):
        result = run_cli(tmp_path, model, "generate", "a red circle", "-o", str(tmp_path / "out"))
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith(f"could not load model '{model}': ") and said in lines[-1], result.stderr
        assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr  # "loading ..." and why


def _unusable_databases(tmp_path: Path) -> list[tuple[dict[str, str], str]]:
    """Settings whose database or folders cannot be used, with what the one line must say."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    not_a_database = tmp_path / "not-a-database.db"
    not_a_database.write_text("not a database")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    refused = f"postgresql+psycopg://seqdream:hunter2@127.0.0.1:{closed}/seqdream"
    return [
        ({"SEQDREAM_DATA_DIR": str(a_file / "data")}, f"cannot make the data folder SEQDREAM_DATA_DIR={a_file}/data"),
        ({"SEQDREAM_DATABASE_URL": f"sqlite:///{not_a_database}"}, "file is not a database"),
        (
            {"SEQDREAM_DATABASE_URL": refused},
            f"cannot open the database postgresql+psycopg://seqdream:***@127.0.0.1:{closed}/seqdream",
        ),
    ]


@pytest.mark.parametrize("command", [("keys", "list"), ("usage",), ("db", "current"), ("db", "upgrade"), ("serve",)])
def test_a_database_that_cannot_be_opened_is_one_line_and_exit_1(
    tiny_model: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """A data folder that cannot be made, a file that is not a database, a server that refuses: every
    command says which and why in one line (the password hidden), not a traceback."""
    for env, said in _unusable_databases(tmp_path):
        result = cli_in_process({**TEST_ENV, "SEQDREAM_MODEL": str(tiny_model), **env}, *command)
        assert result.returncode == 1 and said in result.stderr, (env, result.stderr)
        assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_a_storage_folder_that_cannot_be_made_stops_the_start(tiny_model: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    env = {"SEQDREAM_STORAGE_DIR": str(a_file / "blobs"), "SEQDREAM_DATA_DIR": str(tmp_path / "data")}
    result = cli_in_process({**TEST_ENV, "SEQDREAM_MODEL": str(tiny_model), **env}, "serve")
    assert result.returncode == 1 and "cannot use the storage folder" in result.stderr, result.stderr


def test_serve_on_an_address_it_cannot_bind_says_which_and_what_to_do(tiny_model: Path, tmp_path: Path) -> None:
    """Before any worker starts: a port another process holds, a host that does not resolve, an address
    that is not this machine's. Exit status 3, as uvicorn's own failure to start."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        busy = run_cli(tmp_path, tiny_model, "serve", "--host", "127.0.0.1", "--port", port, "--workers", "0")
    assert busy.returncode == 3, busy.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use; another program" in busy.stderr
    assert "--port" in busy.stderr and "Traceback" not in busy.stderr
    for host, words in (("nowhere.invalid", "check the host"), ("192.0.2.1", "not one of this machine's")):
        result = run_cli(tmp_path, tiny_model, "serve", "--host", host, "--port", "8799", "--workers", "0")
        assert result.returncode == 3 and f"cannot listen on {host}:8799" in result.stderr, result.stderr
        assert words in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args,words",
    [
        (["--size", "100000*1024"], 'size: width 100000 is outside 1024-4096 (allowed: a string "W*H"'),
        (["--size", "2048x2048"], "size: '2048x2048' is not of the form \"W*H\" (allowed:"),
        (["--max-images", "20"], "max_images: Input should be less than or equal to 14 (allowed: an integer from 1"),
    ],
)
def test_generate_refuses_a_bad_option_in_the_words_the_api_uses(
    tiny_model: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    result = run_cli(tmp_path, tiny_model, "generate", "a red circle", *args)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert "Value error" not in result.stderr and "loading" not in result.stderr
