"""Other dialects of the same service, driven by their real clients: OpenAI's images API (`openai`),
ByteDance Ark's (`byteplus-python-sdk-v2`, streaming included) and the Seedream v4.5 routes."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from byteplussdkarkruntime import Ark
from byteplussdkarkruntime._exceptions import ArkBadRequestError
from byteplussdkarkruntime.types.images.images import SequentialImageGenerationOptions
from PIL import Image

from seqdream_devkit.images import decode, png_bytes
from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

# One image per batch and enough steps that a group visibly arrives image by image.
PACED = {"SEQDREAM_MAX_BATCH": "1", "SEQDREAM_NUM_INFERENCE_STEPS": "30"}


@pytest.fixture(scope="module")
def dialect_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    process = LocalServer(tmp_path_factory.mktemp("dialects"), tiny_model, **PACED).start()
    yield process
    process.stop()


@pytest.fixture()
def openai_client(dialect_server: LocalServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{dialect_server.base_url}/v1", api_key=dialect_server.api_key, max_retries=0)


@pytest.fixture()
def ark(dialect_server: LocalServer) -> Ark:
    return Ark(base_url=f"{dialect_server.base_url}/api/v3", api_key=dialect_server.api_key, max_retries=0)


def from_b64(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


# -- OpenAI ---------------------------------------------------------------------------------------
def test_openai_generate_maps_n_to_a_group(openai_client: openai.OpenAI) -> None:
    result = openai_client.images.generate(
        model="seedream", prompt="a fox in the snow", n=3, size="1024x768", response_format="b64_json"
    )
    images = [from_b64(item.b64_json or "") for item in result.data or []]
    assert [image.size for image in images] == [(1024, 768)] * 3
    assert result.created > 0
    by_url = openai_client.images.generate(model="seedream", prompt="a fox", size="auto")
    (item,) = by_url.data or []
    assert item.url and decode(httpx.get(item.url).content).size == (1024, 1024)


def test_openai_edit_takes_several_image_files(openai_client: openai.OpenAI) -> None:
    red = ("red.png", png_bytes((96, 96), "red"), "image/png")
    blue = ("blue.png", png_bytes((64, 128), "blue"), "image/png")
    result = openai_client.images.edit(
        image=[red, blue], prompt="put them side by side", n=2, size="1024x1024", response_format="b64_json"
    )
    assert [from_b64(item.b64_json or "").size for item in result.data or []] == [(1024, 1024)] * 2


def test_openai_output_format_is_png_by_default_and_honoured(
    openai_client: openai.OpenAI, dialect_server: LocalServer
) -> None:
    """OpenAI clients save `b64_json` as .png unless they asked otherwise; the service's own
    default (JPEG) stays on the WaveSpeed routes."""
    magic = {"PNG": b"\x89PNG", "JPEG": b"\xff\xd8\xff", "WEBP": b"RIFF"}
    plain = openai_client.images.generate(prompt="a fox", response_format="b64_json")
    assert base64.b64decode((plain.data or [])[0].b64_json or "").startswith(magic["PNG"])
    for fmt in ("jpeg", "webp", "png"):
        result = openai_client.images.generate(
            prompt="a fox",
            response_format="b64_json",
            output_format=fmt,
            output_compression=40,  # type: ignore[arg-type]
        )
        data = base64.b64decode((result.data or [])[0].b64_json or "")
        assert data.startswith(magic[fmt.upper()]) and Image.open(io.BytesIO(data)).format == fmt.upper()
    by_url = openai_client.images.generate(prompt="a fox", output_format="webp")  # type: ignore[arg-type]
    item = (by_url.data or [])[0]
    assert item.url and item.url.endswith(".webp")
    assert httpx.get(item.url).headers["content-type"] == "image/webp"
    edit = openai_client.images.edit(
        image=[("red.png", png_bytes((64, 64), "red"), "image/png")],
        prompt="x",
        response_format="b64_json",
        extra_body={"output_format": "jpeg", "output_compression": 30},
    )
    assert base64.b64decode((edit.data or [])[0].b64_json or "").startswith(magic["JPEG"])
    wavespeed = httpx.post(
        f"{dialect_server.base_url}/api/v3/bytedance/seedream-v4",
        headers={"Authorization": f"Bearer {dialect_server.api_key}"},
        json={"prompt": "a fox", "size": "1024*1024", "enable_sync_mode": True},
        timeout=120,
    ).json()
    assert wavespeed["data"]["outputs"][0].endswith(".jpeg")
    for bad in ({"output_format": "gif"}, {"output_compression": 101}):
        with pytest.raises(openai.BadRequestError, match=next(iter(bad))):
            openai_client.images.generate(prompt="a fox", extra_body=bad)
    with pytest.raises(openai.BadRequestError, match="output_compression"):
        openai_client.images.edit(
            image=[("r.png", png_bytes((64, 64), "red"), "image/png")],
            prompt="x",
            extra_body={"output_compression": "٣"},
        )


def test_openai_errors_come_in_openai_shape(openai_client: openai.OpenAI, dialect_server: LocalServer) -> None:
    with pytest.raises(openai.BadRequestError) as bad_size:
        openai_client.images.generate(prompt="a fox", size="100x100")
    assert "size" in str(bad_size.value) and bad_size.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="width 100000 is outside"):  # out of range, not of form
        openai_client.images.generate(prompt="a fox", size="100000x1024")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as long_size:  # a megabyte of size is not echoed back
        openai_client.images.generate(prompt="a fox", size="9" * 100_000 + "x1024")  # type: ignore[arg-type]
    assert len(long_size.value.body["message"]) < 2_000  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        openai_client.images.generate(prompt="a fox", n=15)
    with pytest.raises(openai.BadRequestError, match="mask"):
        png = ("a.png", png_bytes((32, 32), "red"), "image/png")
        openai_client.images.edit(image=png, mask=png, prompt="x")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{dialect_server.base_url}/v1", api_key="sqd_wrong", max_retries=0).images.generate(
            prompt="a fox"
        )
    raw = httpx.post(f"{dialect_server.base_url}/v1/images/generations", json={"prompt": ""},
                     headers={"Authorization": f"Bearer {dialect_server.api_key}"})  # fmt: skip
    assert raw.status_code == 400 and set(raw.json()["error"]) == {"message", "type", "param", "code"}


# -- Ark ------------------------------------------------------------------------------------------
def test_ark_group_with_references_and_sizes(ark: Ark) -> None:
    reference = "data:image/png;base64," + base64.b64encode(png_bytes((80, 80), "green")).decode()
    result = ark.images.generate(
        model="seedream-4-0-250828",
        prompt="a series of 2 images of a green kite",
        image=[reference],
        size="1280x720",
        sequential_image_generation="auto",
        sequential_image_generation_options=SequentialImageGenerationOptions(max_images=4),
        response_format="url",
        watermark=False,
    )
    assert [item.size for item in result.data] == ["1280x720"] * 2
    assert [decode(httpx.get(item.url).content).size for item in result.data] == [(1280, 720)] * 2
    assert result.usage.generated_images == 2 and result.usage.output_tokens == 2 * 1280 * 720 // 256
    assert result.model == "seedream-4-0-250828"
    single = ark.images.generate(model="seedream-4-0-250828", prompt="a series of 3 kites", size="2K")
    assert [item.size for item in single.data] == ["2048x2048"]  # sequential generation is off by default


def test_ark_watermark_marks_only_the_corner(ark: Ark) -> None:
    def render(watermark: bool) -> np.ndarray:
        result = ark.images.generate(
            model="seedream-4-0-250828", prompt="a kite", size="1024x1024", seed=11, watermark=watermark,
            response_format="b64_json",
        )  # fmt: skip
        return np.asarray(from_b64(result.data[0].b64_json), dtype=np.int16)

    plain, marked = render(False), render(True)
    changed = np.abs(plain - marked).max(axis=2) > 24
    assert changed[-60:, -260:].sum() > 200  # the mark is there, bottom right
    assert changed[:-60, :].sum() == 0 and changed[:, :-260].sum() == 0  # and nowhere else


def test_ark_stream_sends_each_image_as_it_finishes(ark: Ark, dialect_server: LocalServer) -> None:
    stream = ark.images.generate(
        model="seedream-4-5-251128",
        prompt="a series of 5 images of a comet",
        size="2560x1440",
        sequential_image_generation="auto",
        response_format="url",
        watermark=False,
        stream=True,
    )
    events = []
    first_seen_while_running = None
    for event in stream:
        events.append(event)
        if event.type == "image_generation.partial_succeeded" and first_seen_while_running is None:
            job_id = re.search(r"/outputs/([0-9a-f]+)/", event.url).group(1)  # type: ignore[union-attr]
            with dialect_server.client() as api:
                status = api.get(f"/api/v3/predictions/{job_id}/result").json()["data"]["status"]
            first_seen_while_running = status == "processing"
    kinds = [event.type for event in events]
    assert kinds == ["image_generation.partial_succeeded"] * 5 + ["image_generation.completed"]
    assert [event.image_index for event in events[:5]] == [0, 1, 2, 3, 4]
    assert all(event.size == "2560x1440" for event in events[:5])
    # (this SDK parses every stream event as its "generating" class, so `usage` stays a plain dict)
    assert events[-1].model_dump()["usage"]["generated_images"] == 5
    assert first_seen_while_running  # the first image came while the rest were still being drawn
    assert decode(httpx.get(events[4].url).content).size == (2560, 1440)


def test_ark_stream_reports_a_failed_task_as_sse(dialect_server: LocalServer) -> None:
    body = {
        "model": "seedream-4-0-250828", "prompt": "edit it", "stream": True,
        "image": "http://no-such-host.invalid/missing.png",  # passes submission, cannot be fetched
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {dialect_server.api_key}"}
    with httpx.stream("POST", f"{dialect_server.base_url}/api/v3/images/generations", json=body, headers=headers,
                      timeout=120) as response:  # fmt: skip
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    blocks = [block for block in text.split("\n\n") if block.strip()]
    assert blocks[-1] == "data: [DONE]"
    events = [json.loads(block.split("data: ", 1)[1]) for block in blocks[:-1]]
    assert [event["type"] for event in events] == ["image_generation.partial_failed", "image_generation.completed"]
    assert events[0]["error"]["code"] == "InvalidParameter" and "images[0]" in events[0]["error"]["message"]
    assert events[1]["usage"]["generated_images"] == 0


def test_ark_errors_come_in_ark_shape(ark: Ark, dialect_server: LocalServer) -> None:
    with pytest.raises(ArkBadRequestError, match="size"):
        ark.images.generate(model="seedream-4-5-251128", prompt="a kite", size="1024x1024")  # no 1K on 4.5
    with pytest.raises(ArkBadRequestError, match="aspect ratio"):
        ark.images.generate(model="seedream-4-0-250828", prompt="a kite", size="4096x250")
    headers = {"Authorization": f"Bearer {dialect_server.api_key}"}
    for body, field in (
        ({"model": "m", "prompt": "p", "response_format": "png"}, "response_format"),
        ({"model": "m", "prompt": "p", "image": ["x"] * 11}, "image"),
        ({"prompt": "p"}, "model"),
        ({"model": "m", "prompt": "p", "sequential_image_generation": "on"}, "sequential_image_generation"),
    ):
        response = httpx.post(f"{dialect_server.base_url}/api/v3/images/generations", json=body, headers=headers)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["code"] == "InvalidParameter" and field in error["message"]
    unauthorised = httpx.post(f"{dialect_server.base_url}/api/v3/images/generations", json={"model": "m"})
    assert unauthorised.status_code == 401 and unauthorised.json()["error"]["code"] == "AuthenticationError"


# -- Seedream v4.5 on WaveSpeed's paths -----------------------------------------------------------
def test_v45_routes_run_with_v45_rules(dialect_server: LocalServer) -> None:
    with dialect_server.client() as api:
        done = api.post(
            "/api/v3/bytedance/seedream-v4.5/sequential",
            json={"prompt": "a series of 2 images of a kite", "max_images": 2, "size": "2560*1440",
                  "enable_sync_mode": True},
        ).json()["data"]  # fmt: skip
        assert done["status"] == "completed" and done["model"] == "bytedance/seedream-v4.5/sequential"
        assert [decode(api.get(url).content).size for url in done["outputs"]] == [(2560, 1440)] * 2
        small = api.post("/api/v3/bytedance/seedream-v4.5", json={"prompt": "a kite", "size": "1024*1024"})
        assert small.status_code == 400 and "at least 3686400" in small.json()["message"]
        assert (
            api.post("/api/v3/bytedance/seedream-v4", json={"prompt": "a kite", "size": "1024*1024"}).status_code == 200
        )
        too_many = api.post(
            "/api/v3/bytedance/seedream-v4.5/edit-sequential",
            json={"prompt": "x", "images": [done["outputs"][0]] * 10, "max_images": 6},
        )
        assert too_many.status_code == 400 and "at most 15" in too_many.json()["message"]
