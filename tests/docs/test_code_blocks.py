"""Every fenced code block in the README and docs/ runs, as a reader would run it, against a real
server with the built-in model, and what it produces is checked.

Blocks of one document run in order as in one terminal: a block starts in the folder the last one
ended in (the README's quick start moves into a scratch folder, and the checkout must stay clean),
files a block writes are there for the next, and `.venv`, `scripts/`, `pyproject.toml` and
`constraints.txt` are linked into the checkout. The test sets what a reader's terminal has
(`$SEQDREAM_URL`, `$WAVESPEED_API_KEY`, `$RECEIVER_PORT`), fills the lines where a reader sets them and
the key placeholder, and swaps a GPU model for the built-in one. No other line may name the port: a
block that does would call a port where nothing listens. An HTML comment on the line before a block
says more about it:

    <!-- doc-test: expect "TEXT" ... -->       its output must contain each TEXT
    <!-- doc-test: group GLOB MOTION -->        the images GLOB names are one consistent group that progresses
    <!-- doc-test: file NAME -->                the block is a file the reader saves as NAME
    <!-- doc-test: serve -->                    it starts the service: it must come up ready, then stop on Ctrl-C
    <!-- doc-test: clean-venv -->               it runs in a new virtual environment made by its section's
                                                `Install: `pip install ...`` line (what a user's own has)
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
from concurrent.futures import Future, ThreadPoolExecutor
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
    section: str  # the text from the section's heading down to the block

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
        heading = max((j for j in range(index) if lines[j].startswith("#")), default=0)
        section = "\n".join(lines[heading:index])
        blocks.append(Block(path, index + 1, fence.group(1), code, directives, section))
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


SERVICE_URL = "http://127.0.0.1:8000"
RECEIVER_PORT = "9000"
# The only lines that may name the port: where a reader sets the variable that every block reads.
SETTINGS = (f"export SEQDREAM_URL={SERVICE_URL}", f'os.environ.get("SEQDREAM_URL", "{SERVICE_URL}")',
            f"export RECEIVER_PORT={RECEIVER_PORT}", f'os.environ.get("RECEIVER_PORT", "{RECEIVER_PORT}")')  # fmt: skip


def _clean_environment(folder: Path, install: str, name: str) -> str:
    """A new virtual environment with what `install` installs; its python."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", *shlex.split(install), "-q", "--disable-pip-version-check"]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{name}: {install}\n{done.stderr}"
    return str(folder / "bin" / "python")


@dataclass
class Reader:
    """What a reader following a document has: a running service, a key, a checkout, a shell."""

    server: LocalServer
    checkout: Path  # the reader's clone: .venv, scripts/ ... linked in
    scratch: Path  # where the test keeps its own files (block scripts, the shell's last folder)
    receiver_port: int

    def __post_init__(self) -> None:
        self.cwd = self.checkout
        self.environments: dict[str, Future[str]] = {}  # install line -> its clean environment's python
        self.builders = ThreadPoolExecutor(max_workers=3, thread_name_prefix="venv")

    def fill(self, code: str) -> str:
        """The settings a reader fills in, and the GPU model swapped for the built-in one."""
        for placeholder, value in (
            (f"SEQDREAM_URL={SERVICE_URL}", f"SEQDREAM_URL={self.server.base_url}"),
            (f"RECEIVER_PORT={RECEIVER_PORT}", f"RECEIVER_PORT={self.receiver_port}"),
            ('"sqd_..."', f'"{self.server.api_key}"'),
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
            "SEQDREAM_URL": self.server.base_url,
            "RECEIVER_PORT": str(self.receiver_port),
            **extra,
        }

    def python(self, block: Block) -> str:
        """The interpreter a block runs with: the checkout's, or a new environment with what its section installs."""
        install = self.install_line(block)
        if install is None:
            return str(ROOT / ".venv" / "bin" / "python")
        return self.prepare([block])[install].result()

    @staticmethod
    def install_line(block: Block) -> str | None:
        if block.words("clean-venv") is None:
            return None
        found = re.search(r"^Install: `(pip install [^`]+)`", block.section, re.MULTILINE)
        assert found, f"{block.name}: its section starts with no `Install: `pip install ...`` line"
        return found.group(1)

    def prepare(self, blocks: list[Block]) -> dict[str, Future[str]]:
        """Start making the clean environments these blocks need, each once, beside the blocks before
        them (each is a venv and a pip install: seconds of waiting on the package index)."""
        for block in blocks:
            install = self.install_line(block)
            if install is not None and install not in self.environments:
                folder = self.scratch / f"venv-{len(self.environments)}"
                self.environments[install] = self.builders.submit(_clean_environment, folder, install, block.name)
        return self.environments

    def command(self, block: Block) -> list[str]:
        code = self.fill(block.code)
        if block.language == "bash":  # and then note the folder it ended in, as the terminal would keep it
            where = shlex.quote(str(self.scratch / "cwd"))
            return ["bash", "-euo", "pipefail", "-c", f"{code}\npwd > {where}\n"]
        script = self.scratch / f"block-{block.line}.py"
        script.write_text(code)
        return [self.python(block), str(script)]

    def run(self, block: Block) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(block), cwd=self.cwd, env=self.env(), capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        if block.language == "bash" and (self.scratch / "cwd").exists():
            self.cwd = Path((self.scratch / "cwd").read_text().strip())
        return done


def names_the_port(code: str) -> list[str]:
    """The code lines (not comments) that name the service's or the receiver's port outside SETTINGS."""
    found = []
    for line in code.splitlines():
        text = re.sub(r"(^|\s)#.*$", "", line)  # a comment may show a reply
        for setting in SETTINGS:
            text = text.replace(setting, "")
        if "127.0.0.1:8000" in text or re.search(r"\b9000\b", text):
            found.append(line.strip())
    return found


def test_blocks_read_the_address_from_one_setting() -> None:
    naming = {block.name: names_the_port(block.code) for block in all_blocks() if block.language in ("bash", "python")}
    assert {name: lines for name, lines in naming.items() if lines} == {}
    assert names_the_port("curl -s http://127.0.0.1:8000/api/v3/examples") != []  # what it catches
    assert names_the_port('HTTPServer(("127.0.0.1", 9000), Receiver)') != []


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
    data = reader.scratch / f"serve-{block.line}"
    env = reader.env(SEQDREAM_PORT=str(port), SEQDREAM_DATA_DIR=str(data))
    env.pop("SEQDREAM_DATABASE_URL", None)
    log = reader.scratch / f"serve-{block.line}.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, cwd=reader.checkout, env=env, stdout=sink, stderr=subprocess.STDOUT,
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
    checkout, scratch = tmp_path / "checkout", tmp_path / "test"
    checkout.mkdir()
    scratch.mkdir()
    for name in LINKED:
        (checkout / name).symlink_to(ROOT / name)
    reader = Reader(service, checkout, scratch, free_port())
    blocks = code_blocks(document)
    reader.prepare([block for block in blocks if block.words("skip") is None])
    for block in blocks:
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
            (reader.cwd / file[0]).write_text(reader.fill(block.code))
            continue
        if block.words("serve") is not None:  # a service runs in its own terminal, in the checkout
            _serve(reader, block, reader.command(block))
            continue
        before = set(reader.cwd.iterdir())
        done = reader.run(block)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{block.name} failed ({done.returncode}):\n{output}"
        _check_output(reader, block, done.stdout)
        _check_new_images(block, reader.cwd, before)
    if document.name == "README.md":  # what the quick start and the clients write stays out of the checkout
        assert sorted(path.name for path in checkout.iterdir() if path.is_file() and not path.is_symlink()) == []


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
