"""Reference URLs: timeouts, size caps, format checks and the private-address policy."""

from __future__ import annotations

import collections
import functools
import gzip
import ipaddress
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from seqdream.images.decode import ImageInputError
from seqdream.images.fetch import FetchPolicy, fetch_image_bytes
from seqdream.net.addresses import HostError, normalise_host
from seqdream_devkit.images import png_bytes

PNG = png_bytes((70, 70), "teal")


@functools.cache
def bomb() -> bytes:
    """590 bytes that inflate twice to 256 MiB of zeros: a decoder that honours "gzip, gzip" holds
    them all before a size check could see its first chunk."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip
    zeros = bytes(1 << 20)
    return gzip.compress(b"".join(inner.compress(zeros) for _ in range(256)) + inner.flush(), 9)


ASKED: dict[str, str] = {}  # the last request's Accept-Encoding, by path
ASKED_TIMES: collections.Counter[str] = collections.Counter()  # requests, by path


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        ASKED[self.path] = self.headers.get("Accept-Encoding", "")
        ASKED_TIMES[self.path] += 1
        if self.path == "/image.png":
            self._send(200, PNG)
        elif self.path == "/to-image":
            self._redirect("/image.png")
        elif self.path == "/to-other-loopback":
            self._redirect(f"http://127.0.0.2:{self.server.server_port}/image.png")
        elif self.path == "/to-localhost":
            self._redirect(f"http://localhost:{self.server.server_port}/image.png")
        elif self.path == "/loop":
            self._redirect("/loop")
        elif self.path == "/busy-twice":  # busy for now: the third try gets the image
            self._send(503 if ASKED_TIMES[self.path] <= 2 else 200, b"busy" if ASKED_TIMES[self.path] <= 2 else PNG)
        elif self.path == "/always-busy":
            self._send(503, b"busy")
        elif self.path == "/big":
            self._send(200, b"\0" * 5000)
        elif self.path == "/slow":
            time.sleep(2)
            self._send(200, PNG)
        elif self.path in ("/bomb", "/gzip"):
            body = bomb() if self.path == "/bomb" else gzip.compress(PNG)
            self._send(200, body, {"Content-Encoding": "gzip, gzip" if self.path == "/bomb" else "gzip"})
        elif self.path == "/drip":  # a byte every 50 ms: each read is quick, the whole never ends
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(100000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        else:
            self._send(404, b"missing")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


LOOPBACK_ONE = FetchPolicy(
    allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),), read_timeout_s=1, retry_waits_s=(0.05, 0.2)
)


def test_loopback_is_refused_by_default(origin: str) -> None:
    with pytest.raises(ImageInputError, match="loopback"):
        fetch_image_bytes(f"{origin}/image.png", FetchPolicy())


def test_names_are_checked_after_dns(origin: str) -> None:
    port = origin.rsplit(":", 1)[1]
    with pytest.raises(ImageInputError, match="loopback"):
        fetch_image_bytes(f"http://localhost:{port}/image.png", FetchPolicy())


@pytest.mark.parametrize(
    "address,kind",
    [
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "non-public"),
    ],
)
def test_private_ranges_are_refused(address: str, kind: str) -> None:
    with pytest.raises(ImageInputError, match=kind):
        FetchPolicy().check_address(ipaddress.ip_address(address))
    FetchPolicy().check_address(ipaddress.ip_address("93.184.216.34"))  # a public address passes


def test_operator_can_allow_a_network(origin: str) -> None:
    assert fetch_image_bytes(f"{origin}/image.png", LOOPBACK_ONE) == PNG
    assert fetch_image_bytes(f"{origin}/to-image", LOOPBACK_ONE) == PNG


def test_every_redirect_hop_is_checked(origin: str) -> None:
    with pytest.raises(ImageInputError, match="loopback address \\(127.0.0.2\\)"):
        fetch_image_bytes(f"{origin}/to-other-loopback", LOOPBACK_ONE)


def test_redirect_loops_and_errors(origin: str) -> None:
    with pytest.raises(ImageInputError, match="redirected more than"):
        fetch_image_bytes(f"{origin}/loop", LOOPBACK_ONE)
    with pytest.raises(ImageInputError, match="HTTP 404"):
        fetch_image_bytes(f"{origin}/nothing", LOOPBACK_ONE)


def test_size_cap_and_read_timeout(origin: str) -> None:
    small = FetchPolicy(allowed_networks=LOOPBACK_ONE.allowed_networks, max_bytes=1000)
    with pytest.raises(ImageInputError, match="limit"):
        fetch_image_bytes(f"{origin}/big", small)
    with pytest.raises(ImageInputError, match="timed out"):
        fetch_image_bytes(f"{origin}/slow", LOOPBACK_ONE)


def test_a_compressed_answer_is_refused_not_inflated(origin: str) -> None:
    bomb()  # made before memory is traced
    tracemalloc.start()
    try:
        for path in ("/bomb", "/gzip"):  # even an honest gzip: images are compressed already
            with pytest.raises(ImageInputError, match=r"was sent compressed \(Content-Encoding: gzip"):
                fetch_image_bytes(f"{origin}{path}", LOOPBACK_ONE)
        peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert peak_mib < 16, f"{peak_mib:.0f} MiB were held at once"
    assert ASKED["/bomb"] == "identity"  # and the image's own bytes were asked for
    assert fetch_image_bytes(f"{origin}/image.png", LOOPBACK_ONE) == PNG and ASKED["/image.png"] == "identity"


def test_a_server_that_drips_is_given_up_at_the_total_timeout(origin: str) -> None:
    policy = FetchPolicy(allowed_networks=LOOPBACK_ONE.allowed_networks, read_timeout_s=1, total_timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(ImageInputError, match=r"took longer than 1.5 s in all"):
        fetch_image_bytes(f"{origin}/drip", policy)
    assert time.monotonic() - started < 1.5 + 1 + 1  # the total, one read timeout past it at most, slack


def test_a_request_that_fails_for_now_is_tried_twice_more(origin: str) -> None:
    ASKED_TIMES.clear()
    assert fetch_image_bytes(f"{origin}/busy-twice", LOOPBACK_ONE) == PNG and ASKED_TIMES["/busy-twice"] == 3
    started = time.monotonic()
    with pytest.raises(ImageInputError, match=r"answered HTTP 503 \(3 tries\)"):
        fetch_image_bytes(f"{origin}/always-busy", LOOPBACK_ONE)
    assert ASKED_TIMES["/always-busy"] == 3 and time.monotonic() - started >= 0.25  # waited 0.05 s, then 0.2 s
    with pytest.raises(ImageInputError, match=r"HTTP 404$"):  # an answer that will not change: once
        fetch_image_bytes(f"{origin}/not-there", LOOPBACK_ONE)
    assert ASKED_TIMES["/not-there"] == 1
    with socket.socket() as probe:  # a port nothing listens on: refused, three times
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(ImageInputError, match=r"could not be fetched .*\(3 tries\)"):
        fetch_image_bytes(f"http://127.0.0.1:{closed}/a.png", LOOPBACK_ONE)


def test_retries_stay_inside_the_total_timeout(origin: str) -> None:
    policy = FetchPolicy(allowed_networks=LOOPBACK_ONE.allowed_networks, total_timeout_s=1.0)  # waits 0.5, 2 s
    with pytest.raises(ImageInputError, match=r"answered HTTP 503 \(2 tries\)"):  # no time left for the 2 s wait
        fetch_image_bytes(f"{origin}/always-busy", policy)


def test_unresolvable_host() -> None:
    with pytest.raises(ImageInputError, match="could not be resolved"):
        fetch_image_bytes("http://no-such-host.invalid/a.png", FetchPolicy())


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::7f00:1", "64:ff9b:1::a00:1", "2002:7f00:1::", "::7f00:1", "2001:0:4136:e378:8000:63bf:80ff:fffe",
     "fe80::5efe:7f00:1", "2002:a9fe:a9fe::"],
)  # fmt: skip
def test_ipv6_forms_embedding_a_private_ipv4_are_refused(address: str) -> None:
    with pytest.raises(ImageInputError, match="not allowed"):
        FetchPolicy().check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_and_forms_embedding_public_ones_pass(address: str) -> None:
    FetchPolicy().check_address(ipaddress.ip_address(address))


def test_an_allowed_network_admits_its_embedded_forms_too() -> None:
    policy = FetchPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    policy.check_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    policy.check_address(ipaddress.ip_address("64:ff9b::7f00:1"))


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1.", "127.0.0.1"), ("127。0。0。1", "127.0.0.1"), ("①②⑦.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
     ("ＥＸＡＭＰＬＥ.com.", "example.com"), ("bücher.de", "xn--bcher-kva.de"), ("::1", "[::1]")],
)  # fmt: skip
def test_host_names_are_normalised_as_browsers_do(host: str, expected: str) -> None:
    assert normalise_host(host)[0] == expected


@pytest.mark.parametrize("host", ["a..b", "1.2.3.999", "foo.123", "xn--.com", "exa mple.com", "", "a" * 64 + ".com"])
def test_host_names_that_cannot_be_valid_are_errors(host: str) -> None:
    with pytest.raises(HostError):
        normalise_host(host)


def test_an_embedded_loopback_is_refused_before_connecting() -> None:
    """Connect-time: the guarded transport never dials a form that embeds a private address."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        for url in (f"http://[::ffff:127.0.0.1]:{port}/a.png", f"http://[64:ff9b::7f00:1]:{port}/a.png"):
            with pytest.raises(ImageInputError, match="not allowed"):
                fetch_image_bytes(url, FetchPolicy())
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()
