"""Hardening, round 3: the newer surfaces (usage, keys, verify, limits) at their edges, through a real
server and the real command line. Every refusal is a 4xx in the envelope (exit status 2 on the
command line) whose message names the parameter and carries no Python internals; the server's log
has no traceback once they have all run."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

VERIFY = "/api/v3/provenance/verify"
# What a message must never show: a Python repr, a traceback, a source path.
INTERNALS = re.compile(r"object at 0x|Traceback|\.py\"|site-packages|<_io\.|Error\(")


@pytest.fixture(scope="module")
def edge_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = LocalServer(tmp_path_factory.mktemp("edges"), tiny_model, "--workers", "0").start()
    yield server
    server.stop()
    log = server.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]


def clean(text: str) -> str:
    assert not INTERNALS.search(text), text
    return text


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"to": "9999-12-31"}, 200),
        ({"to": "0001-01-01"}, 200),
        ({"from": "0001-01-01", "to": "0001-01-01"}, 200),
        ({"from": "2026-12-01' OR '1'='1"}, 400),
        ({"from": "2026-12-01T23:00:00-05:00"}, 400),
        ({"to": "2026-02-30"}, 400),
        ({"to": "٢٠٢٦-١٢-٠١"}, 400),
        ({"to": ""}, 400),
        ({"from": "0001-01-01", "to": "9999-12-31"}, 400),
    ],
)
def test_usage_dates_at_their_limits_answer_200_or_a_400_naming_the_parameter(
    edge_server: LocalServer, params: dict[str, str], status: int
) -> None:
    with edge_server.client() as client:
        answer = client.get("/api/v3/usage", params=params)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == status
    if status == 400:
        assert re.match(r"^(from|to): ", clean(body["message"])), body["message"]
    else:
        assert body["data"]["days"] == [] and body["data"]["from"] <= body["data"]["to"]


def test_usage_on_the_command_line_takes_the_same_days(edge_server: LocalServer) -> None:
    for to in ("9999-12-31", "0001-01-01"):
        result = edge_server.cli("usage", "--to", to)
        assert result.returncode == 0 and "usage " in result.stdout, result.stderr
    for bad in ("2026-12-01' OR '1'='1", "2026-12-01T23:00:00-05:00"):
        result = edge_server.cli("usage", "--from", bad, check=False)
        assert result.returncode == 2 and "YYYY-MM-DD" in clean(result.stderr), result.stderr


@pytest.mark.parametrize("option", ["--credits", "--rate", "--max-active"])
@pytest.mark.parametrize("value", ["99999999999999999999", "2147483648", "-1", "٣", "1.5", ""])
def test_key_limits_out_of_range_or_form_exit_2_with_the_form(
    edge_server: LocalServer, option: str, value: str
) -> None:
    result = edge_server.cli("keys", "create", "--name", "edge", option, value, check=False)
    assert result.returncode == 2, (option, value, result.stdout, result.stderr)
    assert clean(result.stderr) and "Traceback" not in result.stderr


def test_top_ups_keep_the_balance_an_integer_between_zero_and_the_maximum(edge_server: LocalServer) -> None:
    created = edge_server.cli("keys", "create", "--name", "wallet", "--credits", "4")
    prefix = created.stdout.strip()[:10]

    def update(*args: str):  # type: ignore[no-untyped-def]
        return edge_server.cli("keys", "update", prefix, *args, check=False)

    below = update("--add-credits", "-100")
    assert below.returncode == 1 and "would leave -96" in clean(below.stderr)
    assert "credits 4," in update("--add-credits", "0").stdout  # nothing changed
    assert update("--add-credits", "99999999999999999999").returncode == 2
    top = update("--add-credits", str(2**31 - 1 - 4))
    assert top.returncode == 0 and f"credits {2**31 - 1}," in top.stdout
    past = update("--add-credits", "1")
    assert past.returncode == 1 and "past the most a key holds" in clean(past.stderr)
    taken = update("--add-credits", "-2147483640")
    assert taken.returncode == 0 and "credits 7," in taken.stdout
    with edge_server.client(created.stdout.strip()) as client:
        balance = client.get("/api/v3/balance").json()["data"]["balance"]
    assert balance == 7 and isinstance(balance, int)


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def test_verify_refuses_a_huge_image_from_its_header(edge_server: LocalServer, tmp_path: Path) -> None:
    zeros = _png(12000, 12000)  # about 140 KB that decode to 144 million pixels
    assert len(zeros) < 1_000_000
    assert edge_server.process is not None
    before = _rss_mb(edge_server.process.pid)
    with edge_server.client() as client:
        started = time.perf_counter()
        answer = client.post(VERIFY, files={"file": ("zeros.png", zeros, "image/png")})
        elapsed = time.perf_counter() - started
    assert answer.status_code == 400, answer.text
    assert clean(answer.json()["message"]).startswith("image: is 12000x12000 pixels; the limit is")
    assert _rss_mb(edge_server.process.pid) - before < 200
    print(f"verify of a 12000x12000 PNG refused in {elapsed:.3f} s")
    path = tmp_path / "zeros.png"
    path.write_bytes(zeros)
    result = edge_server.cli("verify", str(path), check=False)
    assert result.returncode == 2 and "12000x12000" in clean(result.stderr)


def test_verify_of_random_bytes_names_no_internals(edge_server: LocalServer, tmp_path: Path) -> None:
    noise = bytes(range(256)) * 40
    with edge_server.client() as client:
        answer = client.post(VERIFY, files={"file": ("noise.png", noise, "image/png")})
        as_json = client.post(VERIFY, json={"image": "aGVsbG8gd29ybGQ="})
    assert answer.status_code == 400 and as_json.status_code == 400
    assert "could not be decoded as an image" in clean(answer.json()["message"])
    clean(as_json.json()["message"])
    path = tmp_path / "noise.bin"
    path.write_bytes(noise)
    result = edge_server.cli("verify", str(path), check=False)
    assert result.returncode == 2 and "could not be decoded" in clean(result.stderr)


def test_a_manifest_someone_else_signed_is_not_this_services_mark(edge_server: LocalServer, tmp_path: Path) -> None:
    from seqdream.provenance.content_credentials import ContentCredentials
    from seqdream.provenance.credentials import local

    forger = ContentCredentials(local(tmp_path / "forger", "forger"))  # their own CA, not ours
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 30, 30)).save(buffer, "JPEG")
    forged = forger.sign(buffer.getvalue(), "jpeg", model="seedream", task_id="fake", index=0, ingredients=[])
    with edge_server.client() as client:
        report = client.post(VERIFY, files={"file": ("f.jpeg", forged, "image/jpeg")}).json()["data"]
    assert report["c2pa"]["present"] and report["c2pa"]["valid"] and not report["c2pa"]["trusted"]
    assert report["c2pa"]["claim_generator"].startswith("seqdream/")  # it claims to be ours...
    assert report["signed_by"] == "another party" and report["marked"] is False  # ...and is not
    path = tmp_path / "forged.jpeg"
    path.write_bytes(forged)
    result = edge_server.cli("verify", str(path), check=False)
    assert result.returncode == 1, result.stdout
    assert "signed by another party" in result.stdout and "no marks of this service" in result.stdout
