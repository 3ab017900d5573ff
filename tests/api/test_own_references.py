"""URLs this service handed out come back as references: read from storage, whatever host name is used.

A reference that can never load (an own URL that is unknown or expired, a loopback address) is a
400 at submit that names the field, not a failed job.
"""

from __future__ import annotations

import httpx
import pytest

from seqdream_devkit.images import decode, png_bytes
from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

T2I = "/api/v3/bytedance/seedream-v4"
EDIT = "/api/v3/bytedance/seedream-v4/edit"


def sync(api: httpx.Client, path: str, **body: object) -> dict:
    response = api.post(path, json={"enable_sync_mode": True, "size": "1024*1024", **body})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_an_output_url_is_accepted_as_a_reference_under_any_local_host_name(
    api: httpx.Client, server: LocalServer
) -> None:
    first = sync(api, T2I, prompt="a red circle", seed=3)
    assert first["status"] == "completed"
    output = first["outputs"][0]
    assert output.startswith(server.base_url)
    for url in (output, output.replace("127.0.0.1", "localhost"), output.replace("127.0.0.1", "[::1]")):
        edited = sync(api, EDIT, prompt="make it blue", images=[url], seed=4)
        assert edited["status"] == "completed", (url, edited["error"])
        assert decode(api.get(edited["outputs"][0]).content).size == (1024, 1024)


def test_an_upload_url_under_another_local_host_name_is_read_from_storage(
    api: httpx.Client, server: LocalServer
) -> None:
    uploaded = api.post("/api/v3/media/upload/binary", files={"file": ("ref.png", png_bytes(), "image/png")})
    url = uploaded.json()["data"]["download_url"].replace("127.0.0.1", "localhost")
    edited = sync(api, EDIT, prompt="make it blue", images=[url], seed=5)
    assert edited["status"] == "completed", edited["error"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/v3/media/outputs/0123456789abcdef0123456789abcdef/0.jpeg", "no stored output"),
        ("/api/v3/media/files/0123456789abcdef0123456789abcdef/x.png", "no completed upload"),
        ("/api/v3/examples/files/scene-1.png", "no example file"),  # the tiny model ships no examples
        ("/health", "loopback"),
    ],
)
def test_an_unknown_own_url_is_a_400_at_submit(api: httpx.Client, server: LocalServer, path: str, message: str) -> None:
    response = api.post(EDIT, json={"prompt": "x", "images": [f"{server.base_url}{path}"]})
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("images[0]") and message in response.json()["message"]
    # verify reads our own URLs the same way (it answered 404 for these, and fetched an example file's URL)
    checked = api.post("/api/v3/provenance/verify", json={"image": f"{server.base_url}{path}"})
    assert checked.status_code == 400 and checked.json()["message"].startswith("image: "), checked.text
    assert message in checked.json()["message"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1/cat.png",
        "http://localhost:1/cat.png",
        "http://LOCALHOST.:1/cat.png",
        "http://2130706433:1/cat.png",  # 127.0.0.1 as one decimal number
        "http://0x7f.1:1/cat.png",
        "http://[::ffff:127.0.0.1]:1/cat.png",
        "http://10.0.0.1/cat.png",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_a_reference_on_a_forbidden_literal_address_is_a_400_at_submit(api: httpx.Client, url: str) -> None:
    response = api.post(EDIT, json={"prompt": "x", "images": ["http://example.com/ok.png", url]})
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("images[1]"), response.text
    assert "not allowed" in response.json()["message"]
