"""Every bad input is a 4xx in the envelope with a message naming the field and what is allowed."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from seqdream_devkit.images import png_bytes
from support.made import Made, made

EDIT_SEQ = "/api/v3/bytedance/seedream-v4/edit-sequential"
GOOD_IMAGE = base64.b64encode(png_bytes()).decode()


def _bomb() -> str:
    # A 20000x20000 PNG compresses to a few hundred KB: a decompression bomb.
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _tiff() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="TIFF")
    return base64.b64encode(buffer.getvalue()).decode()


# (case id, JSON body or raw bytes, expected status, words the message must contain)
CASES = [
    ("missing prompt", {"size": "2048*2048"}, 400, ["prompt", "required"]),
    ("empty prompt", {"prompt": ""}, 400, ["prompt", "empty"]),
    ("blank prompt", {"prompt": "   \n\t"}, 400, ["prompt", "empty"]),
    ("prompt number", {"prompt": 42}, 400, ["prompt", "string"]),
    ("prompt null", {"prompt": None}, 400, ["prompt", "string"]),
    ("prompt list", {"prompt": ["a", "b"]}, 400, ["prompt", "string"]),
    ("prompt too long", {"prompt": "x" * 10_001}, 400, ["prompt", "10000"]),
    ("size too small", {"prompt": "p", "size": "512*512"}, 400, ["size", "1024", "4096"]),
    ("size too large", {"prompt": "p", "size": "4097*2048"}, 400, ["size", "4097", "4096"]),
    ("height too large", {"prompt": "p", "size": "2048*5000"}, 400, ["size", "height"]),
    ("size with x", {"prompt": "p", "size": "2048x2048"}, 400, ["size", "W*H"]),
    ("size single number", {"prompt": "p", "size": "2048"}, 400, ["size", "W*H"]),
    ("size negative", {"prompt": "p", "size": "-2048*2048"}, 400, ["size", "W*H"]),
    ("size as number", {"prompt": "p", "size": 2048}, 400, ["size", "string"]),
    ("size of six digits", {"prompt": "p", "size": "100000*2048"}, 400, ["size", "width 100000 is outside 1024-4096"]),
    ("size of 18 digits", {"prompt": "p", "size": "2048*" + "9" * 18}, 400, ["size", "height 999999999999999999 is"]),
    ("size of 100000 digits", {"prompt": "p", "size": "9" * 100_000 + "*2048"}, 400, ["size", "'99999", "…' is not"]),
    ("size empty", {"prompt": "p", "size": ""}, 400, ["size"]),
    ("max_images zero", {"prompt": "p", "max_images": 0}, 400, ["max_images", "1 to 14"]),
    ("max_images 15", {"prompt": "p", "max_images": 15}, 400, ["max_images", "1 to 14"]),
    ("max_images string", {"prompt": "p", "max_images": "4"}, 400, ["max_images", "integer"]),
    ("max_images float", {"prompt": "p", "max_images": 2.5}, 400, ["max_images", "integer"]),
    ("max_images bool", {"prompt": "p", "max_images": True}, 400, ["max_images", "integer"]),
    ("seed too small", {"prompt": "p", "seed": -2}, 400, ["seed", "-1", "2147483647"]),
    ("seed too big", {"prompt": "p", "seed": 2147483648}, 400, ["seed", "2147483647"]),
    ("seed string", {"prompt": "p", "seed": "7"}, 400, ["seed", "integer"]),
    (
        "base64 flag string",
        {"prompt": "p", "enable_base64_output": "yes"},
        400,
        ["enable_base64_output", "true or false"],
    ),
    ("sync flag number", {"prompt": "p", "enable_sync_mode": 1}, 400, ["enable_sync_mode", "true or false"]),
    ("images not a list", {"prompt": "p", "images": GOOD_IMAGE}, 400, ["images", "array"]),
    ("images eleven", {"prompt": "p", "images": [GOOD_IMAGE] * 11}, 400, ["images", "10"]),
    ("image number", {"prompt": "p", "images": [5]}, 400, ["images[0]", "string"]),
    ("image garbage", {"prompt": "p", "images": ["not an image!"]}, 400, ["images[0]", "base64"]),
    (
        "image base64 of text",
        {"prompt": "p", "images": [base64.b64encode(b"hello world").decode()]},
        400,
        ["images[0]", "decoded"],
    ),
    (
        "image data uri of text",
        {"prompt": "p", "images": ["data:image/png;base64," + base64.b64encode(b"nope").decode()]},
        400,
        ["images[0]"],
    ),
    ("image tiff", {"prompt": "p", "images": [_tiff()]}, 400, ["images[0]", "TIFF", "accepted"]),
    ("image bomb", {"prompt": "p", "images": [Made(_bomb)]}, 400, ["images[0]", "pixels"]),
    ("image ftp url", {"prompt": "p", "images": ["ftp://example.com/a.png"]}, 400, ["images[0]", "http"]),
    ("image bad url", {"prompt": "p", "images": ["http:///nohost.png"]}, 400, ["images[0]", "URL"]),
    (
        "image unknown upload",
        {"prompt": "p", "images": ["{base}/api/v3/media/files/" + "0" * 32 + "/a.png"]},
        400,
        ["images[0]", "upload"],
    ),
    ("second image bad", {"prompt": "p", "images": [GOOD_IMAGE, "%%%"]}, 400, ["images[1]"]),
    (
        "image url ipv6 unclosed",
        {"prompt": "p", "images": ["http://[::1/a.png"]},
        400,
        ["images[0]", "not a valid URL"],
    ),
    ("image url ipv6 not hex", {"prompt": "p", "images": ["http://[zz::1]/a.png"]}, 400, ["images[0]", "URL"]),
    (
        "image url port too big",
        {"prompt": "p", "images": ["http://example.com:99999/a.png"]},
        400,
        ["images[0]", "URL"],
    ),
    ("webhook ipv6 unclosed", {"prompt": "p", "webhook_url": "http://[::1"}, 400, ["webhook", "not a valid URL"]),
    ("webhook ipv6 not hex", {"prompt": "p", "webhook_url": "https://[v1.fe]/hook"}, 400, ["webhook"]),
    ("webhook port not a number", {"prompt": "p", "webhook_url": "http://example.com:port/"}, 400, ["webhook", "URL"]),
    ("webhook port 0", {"prompt": "p", "webhook_url": "http://example.com:0/"}, 400, ["webhook", "port 0"]),
    ("image url port 0", {"prompt": "p", "images": ["https://example.com:0/a.png"]}, 400, ["images[0]", "port 0"]),
    ("webhook with a space", {"prompt": "p", "webhook_url": "http://exa mple.com/"}, 400, ["webhook"]),
    ("webhook ftp", {"prompt": "p", "webhook_url": "ftp://example.com/"}, 400, ["webhook", "http(s)"]),
    ("body is a list", ["prompt"], 400, ["body", "object"]),
    ("body is a string", "a prompt", 400, ["body", "object"]),
    ("body not json", b"{prompt: nope", 400, ["JSON", "property name", "character 1"]),
    ("body cut short", b'{"prompt": "p"', 400, ["JSON", "delimiter", "character 14"]),
    ("body number of 5000 digits", b'{"prompt": "p", "seed": 1' + b"0" * 5000 + b"}", 400, ["JSON", "4300 digits"]),
    ("body nested 100000 deep", b"[" * 100_000, 400, ["JSON", "nested too deeply"]),
    ("body not utf-8", b'{"prompt": "\xff\xfe"}', 400, ["UTF-8", "byte 12"]),
]


@pytest.mark.parametrize("body,status,words", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_refused_clearly(app_client, body, status, words) -> None:
    api = app_client
    body = made(body)
    if isinstance(body, dict) and body.get("images"):
        base = str(api.base_url).rstrip("/")
        body = {**body, "images": [i.format(base=base) if isinstance(i, str) else i for i in body["images"]]}
    if isinstance(body, bytes):
        response = api.post(EDIT_SEQ, content=body, headers={"Content-Type": "application/json"})
    else:
        response = api.post(EDIT_SEQ, json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["code"] == status and payload["data"] is None
    for word in words:
        assert word.lower() in payload["message"].lower(), payload["message"]
    assert "Traceback" not in payload["message"] and len(payload["message"]) < 2_000  # nothing echoed whole


@pytest.mark.parametrize("webhook", ["http://[::1", "http://[::1]:99999/", "http://[fe80::1%25eth0/"])
def test_a_webhook_query_that_does_not_split_is_a_400(app_client, webhook) -> None:
    response = app_client.post(EDIT_SEQ, params={"webhook": webhook}, json={"prompt": "p"})
    assert response.status_code == 400, response.text
    assert "webhook" in response.json()["message"] and response.json()["data"] is None


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def test_oversized_body_is_413(app_client) -> None:
    api = app_client  # SEQDREAM_MAX_REQUEST_BYTES=4 MiB
    body = b'{"prompt": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = api.post(EDIT_SEQ, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == 413 and "larger than" in response.json()["message"]


UNDECODABLE = {
    "nested 100000 deep": (b"[" * 100_000, "nested too deeply"),
    "a number of 5000 digits": (b'{"prompt": "p", "image": 1' + b"0" * 5000 + b"}", "4300 digits"),
    "not utf-8": (b'{"prompt": "\xff"}', "UTF-8"),
    "cut short": (b'{"prompt": "p"', "character 14"),
}


@pytest.mark.parametrize("route", ["/api/v3/bytedance/seedream-v4", "/api/v3/images/generations",
                                   "/v1/images/generations", "/api/v3/provenance/verify"])  # fmt: skip
@pytest.mark.parametrize("case", UNDECODABLE)
def test_a_body_json_cannot_decode_is_a_400_saying_why_on_every_json_route(app_client, route, case) -> None:
    """Whatever `json.loads` raises (a deep nest raises RecursionError, not a ValueError) is a 400 in
    the route's own shape, never a 500."""
    body, words = UNDECODABLE[case]
    response = app_client.post(route, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    payload = response.json()
    message = payload["error"]["message"] if "error" in payload else payload["message"]
    assert words in message and message.startswith("body: "), message


@pytest.mark.parametrize(
    "size,words",
    [
        ("100000x2048", ["size", "204800000 pixels"]),
        ("9" * 100_000 + "x2048", ["size", "'99999", "…' is not of the form"]),
        (" " * 100_000 + "100000x2048", ["size", "100000x2048 is 204800000 pixels"]),
    ],
    ids=["six digits", "100000 digits", "100000 blanks"],
)
def test_ark_sizes_at_their_limits_are_refused_without_echoing_them(app_client, size, words) -> None:
    body = {"model": "seedream-4-0", "prompt": "p", "size": size}
    response = app_client.post("/api/v3/images/generations", json=body)
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert len(message) < 2_000 and all(word in message for word in words), message


@pytest.mark.parametrize("method,suffix", [("GET", "/result"), ("GET", ""), ("GET", "/events"), ("DELETE", "")])
def test_an_unknown_task_id_of_any_length_is_a_404_quoting_it_cut_short(app_client, method, suffix) -> None:
    for job_id, quoted in (("unknown", "unknown"), ("z" * 6000, "z" * 64 + "…")):
        response = app_client.request(method, f"/api/v3/predictions/{job_id}{suffix}")
        assert response.status_code == 404, response.text
        assert response.json()["message"] == f"prediction not found: {quoted}"
