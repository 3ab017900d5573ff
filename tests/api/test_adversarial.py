"""The service as an attacker, a fuzzer and a careless client see it.

Schemathesis fuzzes every route from /openapi.json; hand-written cases hit each route with bad types,
ranges, odd prompts, hostile images, malformed bodies and path tricks; SSRF attempts through the API
are confirmed by a listener that must receive nothing. Every answer is a 4xx in the envelope.
"""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from seqdream_devkit.images import png_bytes
from support.made import Made, made
from support.servers import LocalServer

EDIT = "/api/v3/bytedance/seedream-v4/edit"
EDIT_SEQ = "/api/v3/bytedance/seedream-v4/edit-sequential"
T2I = "/api/v3/bytedance/seedream-v4"


# ---- fuzzing from the OpenAPI document ---------------------------------------------------------
@pytest.fixture(scope="module")
def api_only(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """No workers: fuzzed submissions are validated and queued, not rendered (and the synchronous
    Ark/OpenAI routes give up waiting after a second)."""
    server = LocalServer(
        tmp_path_factory.mktemp("fuzz"), tiny_model, "--workers", "0", SEQDREAM_SYNC_TIMEOUT_S="1"
    ).start()
    yield server
    server.stop()


def fuzz(operation, headers: dict[str, str], seen: dict[str, set[int]]) -> None:  # type: ignore[no-untyped-def]
    from hypothesis import HealthCheck, given, settings  # schemathesis brings hypothesis

    @given(case=operation.as_strategy())
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)  # fmt: skip
    def check(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call(headers=headers, timeout=30)
        seen.setdefault(operation.label, set()).add(response.status_code)
        path = case.formatted_path
        dialect = path.startswith(("/api/v3/images/", "/v1/"))  # Ark and OpenAI: their own error shape
        # Those are synchronous: with no worker, an accepted request ends in 504 "did not finish".
        timed_out = dialect and response.status_code == 504 and "did not finish" in response.text
        assert response.status_code < 500 or timed_out, (case.method, path, response.text[:500])
        if response.status_code >= 400 and "json" in str(response.headers.get("content-type")):
            body = response.json()
            if dialect:
                assert body["error"]["message"], body
            else:
                assert body["code"] == response.status_code and body["data"] is None and body["message"], body

    check()


@pytest.mark.slow
def test_fuzzed_requests_never_get_a_5xx(api_only: LocalServer) -> None:
    """Every operation of /openapi.json, with bounded, reproducible examples, authenticated."""
    schemathesis = pytest.importorskip("schemathesis")  # imported here: the fast layer never needs it
    schema = schemathesis.openapi.from_url(f"{api_only.base_url}/openapi.json")
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        fuzz(result.ok(), {"Authorization": f"Bearer {api_only.api_key}"}, seen)
    assert len(seen) >= 12, seen  # every route was exercised


# ---- hand-written hostile inputs, every route --------------------------------------------------
def _b64(image: Image.Image, fmt: str, **options: object) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return base64.b64encode(buffer.getvalue()).decode()


_FRAMES = [Image.new("RGB", (80, 80), colour) for colour in ("red", "blue", "green")]
ANIMATED_GIF = _b64(_FRAMES[0], "GIF", save_all=True, append_images=_FRAMES[1:], loop=0)
SVG = base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect/></svg>').decode()
TRUNCATED_PNG = base64.b64encode(png_bytes()[:60]).decode()


# A few bytes each that decode to 256 and 144 million pixels.
WEBP_BOMB = Made(lambda: _b64(Image.new("L", (16000, 16000)), "WEBP", lossless=True))
GIF_BOMB = Made(lambda: _b64(Image.new("P", (12000, 12000)), "GIF"))
HUGE_HEADER_PNG = base64.b64encode(
    png_bytes()[:16] + (50000).to_bytes(4, "big") + (50000).to_bytes(4, "big") + png_bytes()[24:]
).decode()
NESTED = '{"prompt": "p", "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
UPLOAD_ID = "0" * 32

# (id, method, path, request options, expected status, words the message must contain)
CASES = [
    ("nul in prompt", "post", EDIT_SEQ, {"json": {"prompt": "a\x00b"}}, 400, ["prompt", "control"]),
    ("escape codes in prompt", "post", T2I, {"json": {"prompt": "\x1b[2J\x07"}}, 400, ["prompt", "control"]),
    ("zero-width prompt", "post", T2I, {"json": {"prompt": "\u200b\u2060\ufeff"}}, 400, ["prompt", "empty"]),
    ("giant prompt", "post", T2I, {"json": {"prompt": "🐉" * 10_001}}, 400, ["prompt", "10000"]),
    ("full-width digits in size", "post", T2I, {"json": {"prompt": "p", "size": "２０４８*２０４８"}}, 400, ["size"]),
    ("size overflow", "post", T2I, {"json": {"prompt": "p", "size": "99999*99999"}}, 400, ["size", "4096"]),
    ("size float", "post", T2I, {"json": {"prompt": "p", "size": "1024.5*1024"}}, 400, ["size", "W*H"]),
    ("seed float", "post", T2I, {"json": {"prompt": "p", "seed": 1.5}}, 400, ["seed", "integer"]),
    ("seed huge", "post", T2I, {"json": {"prompt": "p", "seed": 10**40}}, 400, ["seed"]),
    ("seed NaN", "post", T2I, {"content": '{"prompt": "p", "seed": NaN}'}, 400, ["seed"]),
    ("max_images negative", "post", EDIT_SEQ, {"json": {"prompt": "p", "max_images": -3}}, 400, ["max_images"]),
    ("t2i with images", "post", T2I, {"json": {"prompt": "p", "images": [ANIMATED_GIF]}}, 400, ["images"]),
    ("edit without images", "post", EDIT, {"json": {"prompt": "p", "images": []}}, 400, ["images"]),
    ("svg reference", "post", EDIT, {"json": {"prompt": "p", "images": [SVG]}}, 400, ["images[0]", "decoded"]),
    ("truncated png", "post", EDIT, {"json": {"prompt": "p", "images": [TRUNCATED_PNG]}}, 400, ["images[0]"]),
    ("webp bomb", "post", EDIT, {"json": {"prompt": "p", "images": [WEBP_BOMB]}}, 400, ["images[0]", "pixels"]),
    ("gif bomb", "post", EDIT, {"json": {"prompt": "p", "images": [GIF_BOMB]}}, 400, ["images[0]", "pixels"]),
    ("lying png header", "post", EDIT, {"json": {"prompt": "p", "images": [HUGE_HEADER_PNG]}}, 400, ["images[0]"]),
    ("data uri of svg", "post", EDIT, {"json": {"prompt": "p", "images": [f"data:image/svg+xml;base64,{SVG}"]}},
     400, ["images[0]"]),
    ("javascript url", "post", EDIT, {"json": {"prompt": "p", "images": ["javascript:alert(1)"]}}, 400, ["images[0]"]),
    ("file url", "post", EDIT, {"json": {"prompt": "p", "images": ["file:///etc/passwd"]}}, 400, ["images[0]"]),
    ("gopher url", "post", EDIT, {"json": {"prompt": "p", "images": ["gopher://127.0.0.1:25/"]}}, 400, ["images[0]"]),
    ("url too long", "post", EDIT, {"json": {"prompt": "p", "images": ["http://e.com/" + "a" * 5000]}},
     400, ["images[0]", "longer"]),
    ("deeply nested json", "post", T2I, {"content": NESTED}, 400, []),
    ("json with bad utf-8", "post", T2I, {"content": b'{"prompt": "\xff\xfe"}'}, 400, []),
    ("json null body", "post", T2I, {"content": "null"}, 400, ["body"]),
    ("json number body", "post", T2I, {"content": "12"}, 400, ["body"]),
    ("text/plain body", "post", T2I, {"content": '{"prompt": "p"}', "headers": {"content-type": "text/plain"}},
     400, ["application/json"]),
    ("form body", "post", T2I, {"data": {"prompt": "p"}}, 400, ["application/json"]),
    ("xml body", "post", T2I, {"content": "<prompt>p</prompt>", "headers": {"content-type": "application/xml"}},
     400, ["body"]),
    ("list page zero", "get", "/api/v3/predictions?page=0", {}, 400, ["page"]),
    ("list page_size huge", "get", "/api/v3/predictions?page_size=100000", {}, 400, ["page_size"]),
    ("list page not a number", "get", "/api/v3/predictions?page=abc", {}, 400, ["page"]),
    ("prediction id too long", "get", "/api/v3/predictions/" + "f" * 200, {}, 404, ["not found"]),
    ("prediction id nul", "get", "/api/v3/predictions/%00/result", {}, 404, ["not found"]),
    ("prediction id sql", "get", "/api/v3/predictions/' OR '1'='1", {}, 404, ["not found"]),
    ("output traversal encoded", "get", "/api/v3/media/outputs/%2e%2e/seqdream.db", {}, 404, ["not found"]),
    ("output traversal slash", "get", "/api/v3/media/outputs/..%2F..%2Fseqdream.db/x", {}, 404, []),
    ("file traversal", "get", "/api/v3/media/files/../../seqdream.db", {}, 404, []),
    ("file wrong name", "get", f"/api/v3/media/files/{UPLOAD_ID}/..%2F..%2Fseqdream.db", {}, 404, []),
    ("playground traversal", "get", "/playground/%2e%2e/%2e%2e/%2e%2e/etc/passwd", {}, 404, []),
    ("example traversal", "get", "/api/v3/examples/files/..%2Fseqdream.json", {}, 404, []),
    ("upload ticket negative size", "post", "/api/v3/media/uploads", {"json": {"filename": "a.png", "size": -1}},
     400, ["size", "bytes"]),
    ("upload ticket too big", "post", "/api/v3/media/uploads",
     {"json": {"filename": "a.png", "size": 10**12, "content_type": "image/png"}}, 413, []),
    ("upload ticket not an image", "post", "/api/v3/media/uploads",
     {"json": {"filename": "a.sh", "size": 10, "content_type": "text/x-shellscript"}}, 415, ["content_type"]),
    ("upload put without token", "put", f"/api/v3/media/uploads/{UPLOAD_ID}", {"content": b"x"}, 400, ["token"]),
    ("upload put unknown id", "put", f"/api/v3/media/uploads/{UPLOAD_ID}?token=abc", {"content": png_bytes()},
     403, ["invalid"]),
    ("binary upload svg", "post", "/api/v3/media/upload/binary",
     {"files": {"file": ("a.svg", base64.b64decode(SVG), "image/svg+xml")}}, 415, ["file"]),
    ("binary upload empty", "post", "/api/v3/media/upload/binary", {"files": {"file": ("a.png", b"", "image/png")}},
     415, ["file"]),
    ("binary upload no file field", "post", "/api/v3/media/upload/binary",
     {"files": {"other": ("a.png", png_bytes(), "image/png")}}, 400, ["file"]),
    ("binary upload text where the file goes", "post", "/api/v3/media/upload/binary",
     {"data": {"file": "not a file"}, "files": {"x": ("a.txt", b"x", "text/plain")}}, 400,
     ["a file, not a text field"]),
    ("binary upload of two files", "post", "/api/v3/media/upload/binary",
     {"files": [("file", ("a.png", png_bytes(), "image/png")), ("file", ("b.png", png_bytes(), "image/png"))]},
     400, ["files is 1"]),
    ("binary upload as json", "post", "/api/v3/media/upload/binary", {"json": {"file": "a.png"}}, 400,
     ["multipart/form-data", "'file'"]),
    ("binary upload broken multipart", "post", "/api/v3/media/upload/binary",
     {"content": b"raw", "headers": {"content-type": "multipart/form-data; boundary=zzz"}}, 400, []),
    ("binary upload bomb", "post", "/api/v3/media/upload/binary",
     {"files": {"file": ("b.webp", Made(lambda: base64.b64decode(made(WEBP_BOMB))), "image/webp")}}, 415, []),
    ("huge bearer token", "get", "/api/v3/predictions", {"headers": {"Authorization": "Bearer " + "k" * 100_000}},
     401, []),
    ("basic auth scheme", "get", "/api/v3/predictions", {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}},
     401, ["Bearer"]),
]  # fmt: skip


def test_there_are_at_least_forty_hostile_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("method", "path", "options", "status", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_hostile_input_gets_a_clear_4xx(
    app_client: httpx.Client, method: str, path: str, options: dict, status: int, words: list[str]
) -> None:
    headers = httpx.Headers({"Authorization": app_client.headers["Authorization"]})
    if "content" in options:
        headers["Content-Type"] = "application/json"
    headers.update(options.get("headers", {}))  # case-insensitive: a case's own Content-Type wins
    request = {key: made(value) for key, value in options.items() if key != "headers"}
    response = app_client.request(method, path, headers=headers, **request)
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["code"] == status and body["data"] is None
    assert "Traceback" not in body["message"]
    for word in words:
        assert word.lower() in body["message"].lower(), body["message"]


@pytest.mark.slow
def test_an_animated_gif_reference_is_used_by_its_first_frame(api: httpx.Client) -> None:
    data = api.post(
        EDIT, json={"prompt": "make it blue", "images": [ANIMATED_GIF], "size": "1024*1024", "enable_sync_mode": True}
    ).json()["data"]
    assert data["status"] == "completed", data["error"]


@pytest.mark.slow
def test_a_huge_but_flat_json_body_is_accepted_or_refused_cleanly(api: httpx.Client) -> None:
    fields = {f"field_{index}": "x" * 100 for index in range(20_000)}  # ~2.5 MB of unknown fields
    response = api.post(T2I, json={"prompt": "a cat", **fields})
    assert response.status_code == 200 and response.json()["data"]["status"] == "created"


# ---- SSRF through the API: nothing may reach the listener ---------------------------------------
class Listener:
    """A TCP listener on 127.0.0.1 that counts every connection it is offered."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class _Allowed(BaseHTTPRequestHandler):
    """On 127.0.0.2, which the SSRF server allows: redirects, slow drips and oversized bodies."""

    listener_port = 0

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.listener_port}/cat.png")
            self.end_headers()
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(30):
                self.wfile.write(b"\x89")
                self.wfile.flush()
                time.sleep(0.5)
        elif self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(png_bytes()[:32] + b"\0" * (2 * 1024 * 1024))
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def ssrf_setup(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    listener = Listener()
    _Allowed.listener_port = listener.port
    allowed = ThreadingHTTPServer(("127.0.0.2", 0), _Allowed)
    threading.Thread(target=allowed.serve_forever, daemon=True).start()
    server = LocalServer(
        tmp_path_factory.mktemp("ssrf"), tiny_model,
        SEQDREAM_FETCH_ALLOW_NETWORKS="127.0.0.2/32", SEQDREAM_FETCH_READ_TIMEOUT_S="2",
        SEQDREAM_MAX_IMAGE_BYTES=str(1024 * 1024),
    ).start()  # fmt: skip
    yield server, listener, f"http://127.0.0.2:{allowed.server_address[1]}"
    server.stop()
    allowed.shutdown()
    listener.close()


@pytest.mark.slow
def test_ssrf_attempts_never_reach_the_target(ssrf_setup: tuple) -> None:
    server, listener, allowed = ssrf_setup
    port = listener.port
    targets = [
        f"http://127.0.0.1:{port}/a.png", f"http://127.1:{port}/a.png", f"http://2130706433:{port}/a.png",
        f"http://0x7f000001:{port}/a.png", f"http://0177.0.0.1:{port}/a.png", f"http://0x7f.0.0.1:{port}/a.png",
        f"http://[::1]:{port}/a.png", f"http://[::ffff:127.0.0.1]:{port}/a.png",
        f"http://[0:0:0:0:0:ffff:7f00:1]:{port}/a.png", f"http://localhost:{port}/a.png",
        f"http://LOCALHOST.:{port}/a.png", f"http://0.0.0.0:{port}/a.png", f"http://0:{port}/a.png",
        f"http://user:pw@127.0.0.1:{port}/a.png", f"http://127.0.0.1.nip.io:{port}/a.png",
        f"http://localtest.me:{port}/a.png", f"{allowed}/redirect",
    ]  # fmt: skip
    outcomes = {}
    with server.client() as api:
        for target in targets:
            response = api.post(EDIT, json={"prompt": "p", "images": [target], "size": "1024*1024"})
            if response.status_code == 400:
                outcomes[target] = "refused at submit"
                continue
            assert response.status_code == 200, response.text
            outcomes[target] = server.wait_for(response.json()["data"]["id"], timeout=60)
    time.sleep(0.5)
    assert listener.connections == 0, outcomes
    for target, outcome in outcomes.items():
        assert outcome == "refused at submit" or outcome["status"] == "failed", (target, outcome)
    assert outcomes[f"{allowed}/redirect"]["error"].count("loopback") == 1


@pytest.mark.slow
def test_slow_drip_and_oversized_bodies_fail_the_job_cleanly(ssrf_setup: tuple) -> None:
    server, _listener, allowed = ssrf_setup
    with server.client() as api:
        drip = api.post(EDIT, json={"prompt": "p", "images": [f"{allowed}/drip"]}).json()["data"]["id"]
        huge = api.post(EDIT, json={"prompt": "p", "images": [f"{allowed}/huge"]}).json()["data"]["id"]
    dripped, oversized = server.wait_for(drip, timeout=90), server.wait_for(huge, timeout=90)
    assert dripped["status"] == "failed" and "images[0]" in dripped["error"], dripped
    assert oversized["status"] == "failed" and "images[0]" in oversized["error"], oversized


# ---- keys ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_one_key_cannot_see_another_keys_tasks(server: LocalServer, api: httpx.Client) -> None:
    other_key = server.cli("keys", "create", "--name", "isolation").stdout.strip()
    with server.client(key=other_key) as other:
        theirs = other.post(T2I, json={"prompt": "their secret"}).json()["data"]["id"]
        assert other.get(f"/api/v3/predictions/{theirs}").status_code == 200
    mine = api.post(T2I, json={"prompt": "my own"}).json()["data"]["id"]
    for path in (f"/api/v3/predictions/{theirs}", f"/api/v3/predictions/{theirs}/result"):
        response = api.get(path)
        assert response.status_code == 404 and response.json()["data"] is None
    listed = [item["id"] for item in api.get("/api/v3/predictions?page_size=100").json()["data"]["items"]]
    assert mine in listed and theirs not in listed
    server.cli("keys", "revoke", other_key[:10])  # by its prefix, as `keys list` shows it
    with server.client(key=other_key) as revoked:
        assert revoked.get(f"/api/v3/predictions/{theirs}").status_code == 401
        assert revoked.post(T2I, json={"prompt": "again"}).status_code == 401


@pytest.mark.slow
def test_the_openapi_document_declares_bearer_auth_and_the_real_errors(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "An API key from `seqdream keys create`",
    }  # fmt: skip
    submit = spec["paths"]["/api/v3/bytedance/seedream-v4/edit-sequential"]["post"]
    assert submit["security"] == [{"HTTPBearer": []}]
    assert {"400", "401", "413", "415", "503"} <= set(submit["responses"]) and "422" not in submit["responses"]
    envelope = submit["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert envelope == "#/components/schemas/ErrorEnvelope"
    assert "404" in spec["paths"]["/api/v3/predictions/{job_id}/result"]["get"]["responses"]
    assert not any("422" in op["responses"] for ops in spec["paths"].values() for op in ops.values())
    for path in ("/api/v3/images/generations", "/v1/images/generations", "/v1/images/edits"):
        responses = spec["paths"][path]["post"]["responses"]
        assert {"400", "401", "504"} <= set(responses)
        assert responses["400"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/DialectError"
