"""Damaged and odd-shaped images on every route that takes one: a 4xx in the envelope (a PNG whose
text chunk inflates past Pillow's limit was a 500 on uploads), and verify reads any shape it accepts
(a 60000 x 1 image was a 500 in the watermark reader)."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from support.damaged import BAD

DAMAGED = {
    name: BAD[name] for name in ("zTXt that inflates past Pillow's limit", "iCCP that inflates past Pillow's limit")
}
DAMAGED["PNG cut in its pixels"] = BAD["PNG cut in its pixels"]


def _refused(response, words: str = "file") -> None:  # type: ignore[no-untyped-def]
    assert response.status_code in (400, 415), response.text
    payload = response.json()
    assert payload["code"] == response.status_code and payload["data"] is None and words in payload["message"]


@pytest.mark.parametrize("data", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_image_is_a_4xx_on_every_route_that_takes_one(app_client, data: bytes) -> None:
    api = app_client
    _refused(api.post("/api/v3/media/upload/binary", files={"file": ("a.png", data, "image/png")}))
    ticket = api.post(
        "/api/v3/media/uploads", json={"filename": "a.png", "size": len(data), "content_type": "image/png"}
    )
    upload = ticket.json()["data"]["upload"]
    _refused(api.put(upload["url"], content=data, headers=upload["headers"]))
    _refused(api.post("/api/v3/provenance/verify", files={"file": ("a.png", data, "image/png")}), "image")
    body = {"prompt": "make the circle blue", "images": [base64.b64encode(data).decode()]}
    _refused(api.post("/api/v3/bytedance/seedream-v4/edit", json=body), "images[0]")


@pytest.mark.parametrize("size", [(60000, 1), (1, 60000), (5000, 63), (63, 5000), (64, 64), (700, 129)])
def test_verify_reads_an_image_of_any_shape_it_accepts(app_client, size: tuple[int, int]) -> None:
    buffer = io.BytesIO()
    Image.new("L", size, 128).save(buffer, format="PNG")
    response = app_client.post(
        "/api/v3/provenance/verify", files={"file": ("thin.png", buffer.getvalue(), "image/png")}
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["format"] == "png" and data["marked"] is False and data["watermark"]["found"] is False


@pytest.mark.parametrize("size", [(60000, 1), (1100, 128)])
def test_a_reference_longer_than_eight_to_one_is_refused_where_it_arrives(app_client, size: tuple[int, int]) -> None:
    """It was accepted, then failed its task in the model call; verify (above) still reads such a file."""
    api = app_client
    buffer = io.BytesIO()
    Image.new("L", size, 128).save(buffer, format="PNG")
    data = buffer.getvalue()
    answer = api.post("/api/v3/media/upload/binary", files={"file": ("long.png", data, "image/png")})
    _refused(answer)
    assert "at most 8 times" in answer.json()["message"]
    body = {"prompt": "make the circle blue", "images": [base64.b64encode(data).decode()]}
    answer = api.post("/api/v3/bytedance/seedream-v4/edit", json=body)
    _refused(answer, "images[0]")
    assert f"{size[0]}x{size[1]}" in answer.json()["message"]
