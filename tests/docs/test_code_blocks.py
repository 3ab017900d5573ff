"""Every fenced code block in the README and docs/ runs, as a reader would run it, against a real
server with the built-in model, and what it produces is checked.

Blocks of one document run in order in one scratch folder (files a block downloads are there for the
next), with `.venv`, `scripts/`, `pyproject.toml` and `constraints.txt` linked in as in a checkout.
The test fills the placeholders a reader fills (base URL, key, ports) and swaps a GPU model for the
built-in one. An HTML comment on the line before a block says more about it:

    <!-- doc-test: expect "TEXT" ... -->       its output must contain each TEXT
    <!-- doc-test: group GLOB MOTION -->        the images GLOB names are one consistent group that progresses
    <!-- doc-test: file NAME -->                the block is a file the reader saves as NAME
    <!-- doc-test: serve -->                    it starts the service: it must come up ready, then stop on Ctrl-C
    <!-- doc-test: paths -->                    a layout whose every named path exists
    <!-- doc-test: skip: REASON -->             not run here, for the reason given

Checked for every block that runs: exit status 0, every response envelope it prints has code 200,
every image it writes and every media URL it prints decodes as an image.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from seqdream_devkit.images import decode
from seqdream_devkit.server_process import free_port
from support.servers import LocalServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "quality"))
from run import score_group  # noqa: E402

pytestmark = pytest.mark.slow  # starts servers or processes

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKED = (".venv", "scripts", "pyproject.toml", "constraints.txt")  # what a checkout has beside the reader
IMAGE_FILES = {".png", ".jpeg", ".jpg", ".webp"}
MAX_SKIPPED = 3  # a block that cannot run here is the exception, and each says why


@dataclass
class Block:
    document: Path
    line: int
    language: str
    code: str
    directives: list[str]  # the doc-test comments on the lines just before it

    @property
    def name(self) -> str:
        return f"{self.document.name}:{self.line}"

    def words(self, keyword: str) -> list[str] | None:
        """The arguments of the directive that starts with `keyword`, None without one."""
        for directive in self.directives:
            if re.split(r"[ :]", directive, maxsplit=1)[0] == keyword:
                return shlex.split(directive[len(keyword) :].lstrip(": "))
        return None


def code_blocks(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[index])
        if fence is None:
            index += 1
            continue
        end = next(j for j in range(index + 1, len(lines)) if lines[j].startswith("```"))
        directives, above = [], index - 1
        while above >= 0 and (found := re.match(r"^<!-- doc-test: (.*) -->$", lines[above])):
            directives.insert(0, found.group(1))
            above -= 1
        code = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(path, index + 1, fence.group(1), code, directives))
        index = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in DOCUMENTS for block in code_blocks(path)]


def test_every_block_names_its_language_and_runs_or_says_why_not() -> None:
    blocks = all_blocks()
    assert len(blocks) >= 15
    unnamed = [block.name for block in blocks if block.language not in ("bash", "python", "json", "text")]
    assert unnamed == [], "every block says bash, python, json or text"
    untested_text = [block.name for block in blocks if block.language == "text" and block.words("paths") is None]
    assert untested_text == []
    skipped = [block for block in blocks if block.words("skip") is not None]
    assert all(len(" ".join(block.words("skip") or [])) > 10 for block in skipped), "a skip gives its reason"
    assert len(skipped) <= MAX_SKIPPED, [block.name for block in skipped]


@dataclass
class Reader:
    """What a reader following a document has: a running service, a key, a folder, a shell."""

    server: LocalServer
    folder: Path
    receiver_port: int

    def fill(self, code: str) -> str:
        """The placeholders a reader fills in, and the GPU model swapped for the built-in one."""
        for placeholder, value in (
            ("http://127.0.0.1:8000", self.server.base_url),
            ('"sqd_..."', f'"{self.server.api_key}"'),
            ("127.0.0.1:9000", f"127.0.0.1:{self.receiver_port}"),
            ('("127.0.0.1", 9000)', f'("127.0.0.1", {self.receiver_port})'),
            ("black-forest-labs/FLUX.2-klein-4B", "builtin"),
            ("SEQDREAM_DEVICE=cuda", "SEQDREAM_DEVICE=cpu"),
            ("SEQDREAM_DTYPE=bfloat16", "SEQDREAM_DTYPE=float32"),
        ):
            code = code.replace(placeholder, value)
        return code

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            **self.server.env,  # the service's database: `seqdream keys create` adds a key to it
            "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "WAVESPEED_API_KEY": str(self.server.api_key),
            **extra,
        }

    def command(self, block: Block) -> list[str]:
        code = self.fill(block.code)
        if block.language == "bash":
            return ["bash", "-euo", "pipefail", "-c", code]
        script = self.folder / f"block-{block.line}.py"
        script.write_text(code)
        return [str(ROOT / ".venv" / "bin" / "python"), script.name]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    # Loopback webhook receivers allowed, as docs/api.md's local receiver recipe says to start it.
    server = LocalServer(tmp_path_factory.mktemp("docs"), None, SEQDREAM_FETCH_ALLOW_NETWORKS="127.0.0.1/32").start()
    yield server
    server.stop()


def _check_output(reader: Reader, block: Block, output: str) -> None:
    for text in block.words("expect") or []:
        assert text in output, f"{block.name}: {text!r} not in output:\n{output}"
    assert "Traceback" not in output, f"{block.name}:\n{output}"
    decoder = json.JSONDecoder()
    for line in output.splitlines():
        position = 0
        while line.startswith("{", position):  # curl prints envelopes without a newline between them
            envelope, position = decoder.raw_decode(line, position)
            assert envelope.get("code", 200) == 200, f"{block.name}: {line}"
    media = re.findall(re.escape(reader.server.base_url) + r"/api/v3/media/[^\s'\"\]]+", output)
    for url in media:
        assert decode(httpx.get(url, timeout=30).content).size[0] >= 64, url


def _check_new_images(block: Block, folder: Path, before: set[Path]) -> None:
    for path in sorted(set(folder.iterdir()) - before):
        if path.suffix in IMAGE_FILES:
            assert decode(path.read_bytes()).size[0] >= 64, f"{block.name}: {path.name}"
    group = block.words("group")
    if group:
        pattern, motion = group
        frames = [decode(path.read_bytes()) for path in sorted(folder.glob(pattern))]
        assert len(frames) >= 2, f"{block.name}: {pattern}"
        assert score_group(motion, frames) == (1.0, 1.0), f"{block.name}: {pattern} is not a {motion} group"


def _serve(reader: Reader, block: Block, command: list[str]) -> None:
    """A block that starts the service: it comes up ready on the port given, and stops on Ctrl-C."""
    port = free_port()
    data = reader.folder / f"serve-{block.line}"
    env = reader.env(SEQDREAM_PORT=str(port), SEQDREAM_DATA_DIR=str(data))
    env.pop("SEQDREAM_DATABASE_URL", None)
    log = reader.folder / f"serve-{block.line}.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, cwd=reader.folder, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, f"{block.name} exited:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"{block.name} never became ready:\n{log.read_text()}"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            os.killpg(process.pid, signal.SIGINT)
            assert process.wait(timeout=60) == 0, log.read_text()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    text = log.read_text()
    assert "listening on http://" in text and "seqdream: stopped" in text, text
    assert "Loading weights" not in text and "Running upgrade" not in text, text


@pytest.mark.parametrize("document", DOCUMENTS, ids=[path.name for path in DOCUMENTS])
def test_the_documents_code_runs_as_written(document: Path, service: LocalServer, tmp_path: Path) -> None:
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    reader = Reader(service, tmp_path, free_port())
    for block in code_blocks(document):
        if block.words("skip") is not None:
            continue
        if block.language == "json":
            sample = json.loads(block.code)
            if "data" in sample:  # a response sample: the same fields as a real task's
                with service.client() as api:
                    body = {"prompt": "a small red circle in the center on a blue background", "size": "1024*1024"}
                    real = api.post("/api/v3/bytedance/seedream-v4", json={**body, "enable_sync_mode": True}).json()
                assert set(sample["data"]) == set(real["data"]), block.name
            continue
        if block.language == "text":
            _check_layout(block)
            continue
        file = block.words("file")
        if file:
            (tmp_path / file[0]).write_text(reader.fill(block.code))
            continue
        command = reader.command(block)
        if block.words("serve") is not None:
            _serve(reader, block, command)
            continue
        before = set(tmp_path.iterdir())
        done = subprocess.run(command, cwd=tmp_path, env=reader.env(), capture_output=True, text=True, timeout=600)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{block.name} failed ({done.returncode}):\n{output}"
        _check_output(reader, block, done.stdout)
        _check_new_images(block, tmp_path, before)


def _check_layout(block: Block) -> None:
    """`paths`: a tree whose top lines are repository paths and indented ones are under the last
    top-level folder."""
    missing, parent = [], ROOT
    for line in block.code.splitlines():
        token = line.split()[0] if line.strip() else ""
        if not token.endswith(("/", ".py")):
            continue
        if line.startswith("  "):
            path = parent / token
        else:
            path = ROOT / token
            if token.endswith("/"):
                parent = path
        if not path.exists():
            missing.append(token)
    assert missing == [], f"{block.name}: {missing}"
