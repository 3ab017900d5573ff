"""Hardening, round 2: what a hostile client tried, through the real server on loopback.

Numbers parsed strictly, upload types that can always be served, one address policy that sees
through every IPv6 form embedding an IPv4 address, host names read the way browsers read them,
limits on the request head, messages that name their field, browser-side headers, and pixel
limits checked before a task is queued. Every accepted task still ends.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from seqdream_devkit.images import png_bytes
from support.servers import LocalServer

EDIT = "/api/v3/bytedance/seedream-v4/edit"
T2I = "/api/v3/bytedance/seedream-v4"


def _png(size: tuple[int, int] = (64, 64)) -> bytes:
    return png_bytes(size, "red")


# ---- 1. numbers: ASCII digits only ----------------------------------------------------------------
@pytest.mark.parametrize("n", ["²", "٣", "１", "1.0", "-1", "1e1", "", "0x2", "2 2"])
@pytest.mark.slow
def test_multipart_n_accepts_ascii_digits_only(api: httpx.Client, n: str) -> None:
    response = api.post(
        "/v1/images/edits", files={"image": ("a.png", _png(), "image/png")}, data={"prompt": "x", "n": n}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"].startswith("n: ")


# ---- 2. upload types --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    ["image/png\r\nSet-Cookie: x=1", "image/p☃ng", "image/svg+xml", "text/html", "image/", "image/png\x00", "x" * 300],
)
@pytest.mark.slow
def test_upload_tickets_take_only_decodable_image_types(api: httpx.Client, content_type: str) -> None:
    response = api.post("/api/v3/media/uploads", json={"filename": "a.png", "size": 10, "content_type": content_type})
    assert response.status_code == 415, response.text
    assert response.json()["message"].startswith("content_type: ")


@pytest.mark.slow
def test_downloads_carry_the_type_of_the_stored_bytes(api: httpx.Client) -> None:
    data = _png()
    ticket = api.post(
        "/api/v3/media/uploads", json={"filename": "a.jpg", "size": len(data), "content_type": "IMAGE/JPEG; q=1"}
    ).json()["data"]
    assert ticket["upload"]["headers"]["Content-Type"] == "image/jpeg"  # normalised, never echoed
    assert httpx.put(ticket["upload"]["url"], content=data).status_code == 200
    download = httpx.get(ticket["download_url"])
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-type"] == "image/png"  # sniffed from the bytes, not declared
    assert download.headers["x-content-type-options"] == "nosniff"


# ---- 3 and 4. one address policy, host names as browsers read them ------------------------------------
EMBEDDED = [
    "[64:ff9b::127.0.0.1]",  # NAT64 well-known prefix
    "[64:ff9b::a9fe:a9fe]",  # NAT64 to 169.254.169.254
    "[64:ff9b:1::a00:1]",  # NAT64 local-use prefix
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[2002:a9fe:a9fe::1]",  # 6to4 of the metadata address
    "[::127.0.0.1]",  # IPv4-compatible
    "[::ffff:10.0.0.1]",  # IPv4-mapped
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
    "[fe80::5efe:7f00:1]",  # ISATAP, link-local
]
NOTATIONS = [
    "127.0.0.1.",
    "127。0。0。1",
    "127．0．0．1",
    "①②⑦.0.0.1",
    "０x7f.1",
    "2130706433",
    "0177.0.0.1",
    "LOCALHOST.",
    "api.localhost",
    "10.0.0.1.",
    "169.254.169.254。",
]
INVALID_HOSTS = ["exa mple.com", "a..b", "1.2.3.999", "foo.123", "xn--.com", "a" * 64 + ".com", "[::1"]


@pytest.mark.parametrize("host", EMBEDDED + NOTATIONS)
@pytest.mark.slow
def test_private_addresses_in_any_form_are_refused_at_submit(api: httpx.Client, host: str) -> None:
    url = f"http://{host}/a.png"
    response = api.post(EDIT, json={"prompt": "x", "images": ["https://example.com/ok.png", url]})
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("images[1]: ")
    hook = api.post(T2I, json={"prompt": "x", "webhook_url": url})
    assert hook.status_code == 400 and hook.json()["message"].startswith("webhook: "), hook.text


@pytest.mark.parametrize("host", INVALID_HOSTS)
@pytest.mark.slow
def test_host_names_that_cannot_be_valid_are_refused_at_submit(api: httpx.Client, host: str) -> None:
    response = api.post(EDIT, json={"prompt": "x", "images": [f"http://{host}/a.png"]})
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("images[0]: ")


@pytest.mark.slow
def test_a_refused_private_address_names_the_setting_that_allows_it(api: httpx.Client) -> None:
    message = api.post(T2I, json={"prompt": "x", "webhook_url": "http://127.0.0.1:9/hook"}).json()["message"]
    assert "SEQDREAM_FETCH_ALLOW_NETWORKS" in message


@pytest.mark.slow
def test_a_reference_that_fails_to_resolve_fails_its_task_as_input(api: httpx.Client, server: LocalServer) -> None:
    job = api.post(EDIT, json={"prompt": "x", "images": ["http://no-such-host.invalid/a.png"]}).json()["data"]
    data = server.wait_for(job["id"])
    assert data["status"] == "failed"
    assert data["error"].startswith("images[0]") and "internal" not in data["error"]


# ---- 5. limits on the request head ------------------------------------------------------------------
def _raw(server: LocalServer, payload: bytes) -> tuple[int, bytes]:
    """Send `payload` (in the background, as a client still sending would) and read the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sender = threading.Thread(target=lambda: _send_all(sock, payload), daemon=True)
        sender.start()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _send_all(sock: socket.socket, payload: bytes) -> None:
    try:
        sock.sendall(payload)
    except OSError:  # the server answered and closed while we were still sending
        pass


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (16 * 1024 * 1024) + b"\r\n\r\n", 431),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(100_000)) + b"\r\n", 431),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Fine: " + b"b" * 1000 + b"\r\nConnection: close\r\n\r\n", 200),
        (b"GET /health?" + b"q" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 900) for i in range(90))
            + b"\r\n",
            431,
        ),
    ],
)
@pytest.mark.slow
def test_request_heads_are_bounded(server: LocalServer, head: bytes, status: int) -> None:
    started = time.monotonic()
    code, body = _raw(server, head)
    assert code == status
    assert time.monotonic() - started < 10
    if status != 200:
        answer = httpx.Response(status, content=body).json()
        assert answer["code"] == status and answer["data"] is None
        assert ("header" if status == 431 else "URL") in answer["message"]
    assert httpx.get(server.base_url + "/health/live").status_code == 200  # and the server still serves


# ---- 6. messages name the field -----------------------------------------------------------------------
@pytest.mark.slow
def test_an_empty_json_body_is_named(api: httpx.Client) -> None:
    response = api.post(T2I, content=b"", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["message"].startswith("body: is empty")


@pytest.mark.slow
def test_an_over_long_multipart_prompt_names_the_field_and_the_rule(api: httpx.Client) -> None:
    response = api.post(
        "/v1/images/edits", files={"image": ("a.png", _png(), "image/png")}, data={"prompt": "x" * 2_000_000}
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("prompt: ") and "10000" in message


# ---- 7. browser-side defences --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/health", "/api/v3/predictions/nope/result", "/playground/", "/docs", "/openapi.json"]
)
@pytest.mark.slow
def test_every_answer_carries_the_security_headers(server: LocalServer, path: str) -> None:
    response = httpx.get(server.base_url + path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    if response.headers["content-type"].startswith("text/html"):
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    else:
        assert policy.startswith("default-src 'none'")


# ---- 8. pixel limits before a task exists -----------------------------------------------------------------
def _big_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8000, 8000)).save(buffer, "PNG")  # 64 megapixels in ~60 kB
    return buffer.getvalue()


@pytest.mark.slow
def test_an_upload_over_the_pixel_limit_is_refused_when_it_completes(api: httpx.Client) -> None:
    big = _big_png()
    binary = api.post("/api/v3/media/upload/binary", files={"file": ("big.png", big, "image/png")})
    assert binary.status_code == 400 and "8000x8000" in binary.json()["message"], binary.text
    ticket = api.post("/api/v3/media/uploads", json={"filename": "big.png", "size": len(big)}).json()["data"]
    put = httpx.put(ticket["upload"]["url"], content=big)
    assert put.status_code == 400 and put.json()["message"].startswith("file: ")


@pytest.mark.slow
def test_an_upload_stored_before_a_lower_limit_is_refused_at_submit(tiny_model: Path, tmp_path: Path) -> None:
    first = LocalServer(tmp_path, tiny_model, "--workers", "0").start()
    try:
        with first.client() as client:
            data = _png((300, 300))
            url = client.post("/api/v3/media/upload/binary", files={"file": ("a.png", data, "image/png")}).json()
            url = url["data"]["download_url"]
    finally:
        first.stop()
    second = LocalServer(tmp_path, tiny_model, "--workers", "0", SEQDREAM_MAX_IMAGE_PIXELS=str(200 * 200)).start()
    try:
        with second.client() as client:
            response = client.post(
                EDIT, json={"prompt": "x", "images": [url.replace(str(first.port), str(second.port))]}
            )
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith("images[0] is 300x300 pixels")
    finally:
        second.stop()


# ---- nothing lost ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_every_task_accepted_during_the_hostile_cases_ends(api: httpx.Client, server: LocalServer) -> None:
    accepted = [api.post(T2I, json={"prompt": "a red circle", "size": "1024*1024"}).json()["data"]["id"]]
    with server.client() as client:
        listing = client.get("/api/v3/predictions", params={"page_size": 100})
    ids = (
        accepted + [task["id"] for task in listing.json()["data"]["items"]] if listing.status_code == 200 else accepted
    )
    for job_id in ids:
        assert server.wait_for(job_id, timeout=120)["status"] in ("completed", "failed")
