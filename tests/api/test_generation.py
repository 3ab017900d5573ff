"""Groups, seeds, base64 in and out, uploads and exact output sizes, all over HTTP."""

from __future__ import annotations

import base64
import hashlib

import numpy as np
import pytest

from seqdream_devkit.images import decode, png_bytes
from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

EDIT_SEQ = "/api/v3/bytedance/seedream-v4/edit-sequential"


def run_sync(api, **body) -> dict:
    response = api.post(EDIT_SEQ, json={"enable_sync_mode": True, **body})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "completed", data["error"]
    return data


def digests(api, data: dict) -> list[str]:
    return [hashlib.sha256(api.get(url).content).hexdigest() for url in data["outputs"]]


def pictures(api, data: dict) -> list[np.ndarray]:
    return [np.asarray(decode(api.get(url).content), np.int16) for url in data["outputs"]]


def same_pictures(api, first: dict, second: dict) -> bool:
    """The same pictures, up to each task's own provenance watermark (a level or two of chroma) and
    JPEG's response to it; a different seed differs by far more."""
    return all(np.abs(a - b).mean() < 2.5 for a, b in zip(pictures(api, first), pictures(api, second), strict=True))


def test_group_with_reproducible_seeds(api) -> None:
    ref = base64.b64encode(png_bytes((120, 90), "orange")).decode()
    body = {
        "prompt": "a series of 4 images of a fox walking through seasons",
        "images": [ref],
        "max_images": 6,
        "seed": 1234,
        "size": "1024*1280",
    }
    first = run_sync(api, **body)
    second = run_sync(api, **body)
    assert len(first["outputs"]) == 4 and first["seed"] == 1234
    assert first["has_nsfw_contents"] == [False] * 4
    assert same_pictures(api, first, second)  # same seed and inputs: the same pictures
    assert len(set(digests(api, first))) == 4  # every image of the group is its own
    other = run_sync(api, **{**body, "seed": 4321})
    assert not same_pictures(api, other, first)
    for url in first["outputs"]:
        assert decode(api.get(url).content).size == (1024, 1280)


def test_group_size_follows_the_prompt_capped_by_max_images(api) -> None:
    assert len(run_sync(api, prompt="a storyboard: 1. dawn 2. noon 3. dusk", max_images=14)["outputs"]) == 3
    assert len(run_sync(api, prompt="a series of 9 images of a fish", max_images=2)["outputs"]) == 2
    assert len(run_sync(api, prompt="a fish", max_images=3)["outputs"]) == 3


def test_random_seed_is_recorded_and_reproduces(api) -> None:
    first = run_sync(api, prompt="a clock tower", seed=-1)
    assert 0 <= first["seed"] <= 2147483647
    again = run_sync(api, prompt="a clock tower", seed=first["seed"])
    assert same_pictures(api, first, again)


def test_base64_in_and_out(api) -> None:
    raw = png_bytes((100, 100), "purple")
    for encoded in (base64.b64encode(raw).decode(), "data:image/png;base64," + base64.b64encode(raw).decode()):
        data = run_sync(api, prompt="put a hat on it", images=[encoded], enable_base64_output=True, size="1024*1024")
        assert len(data["outputs"]) == 1
        assert not data["outputs"][0].startswith(("http", "data:"))
        image = decode(base64.b64decode(data["outputs"][0]))
        assert image.size == (1024, 1024) and image.format == "JPEG"
    # The result endpoint keeps answering in base64 for that task.
    again = api.get(data["urls"]["get"]).json()["data"]
    assert again["outputs"] == data["outputs"]


def test_jpeg_and_webp_references(api) -> None:
    refs = [base64.b64encode(png_bytes((200, 150), "green", fmt)).decode() for fmt in ("JPEG", "WEBP", "GIF")]
    data = run_sync(api, prompt="combine these", images=refs, size="2048*1024")
    assert decode(api.get(data["outputs"][0]).content).size == (2048, 1024)


def test_legacy_binary_upload_and_own_url_reference(server: LocalServer, api) -> None:
    raw = png_bytes((90, 90), "yellow")
    uploaded = api.post("/api/v3/media/upload/binary", files={"file": ("ref.png", raw, "image/png")}).json()
    assert uploaded["code"] == 200
    url = uploaded["data"]["download_url"]
    assert api.get(url).content == raw
    data = run_sync(api, prompt="make it night", images=[url], size="1024*1024")
    assert len(data["outputs"]) == 1
    not_image = api.post("/api/v3/media/upload/binary", files={"file": ("a.txt", b"hello", "text/plain")})
    assert not_image.status_code == 415 and not_image.json()["code"] == 415


def test_upload_ticket_rules(server: LocalServer, api) -> None:
    ticket = api.post("/api/v3/media/uploads", json={"filename": "x.png", "size": 10}).json()["data"]
    put_url = ticket["upload"]["url"]
    with server.client(key=None) as anonymous:
        forged = put_url.replace("token=", "token=x")
        assert anonymous.put(forged, content=b"0" * 10).status_code == 403
        wrong_size = anonymous.put(put_url, content=png_bytes())
        assert wrong_size.status_code == 400 and "declared size" in wrong_size.json()["message"]
    too_big = api.post("/api/v3/media/uploads", json={"filename": "x.png", "size": 10**12})
    assert too_big.status_code == 413
    not_image = api.post("/api/v3/media/uploads", json={"filename": "x.pdf", "size": 10})
    assert not_image.status_code == 415
    # A download URL whose bytes never arrived cannot be used as a reference.
    refused = api.post(EDIT_SEQ, json={"prompt": "p", "images": [ticket["download_url"]]})
    assert refused.status_code == 400 and "upload" in refused.json()["message"]
