"""The official `wavespeed` SDK, unchanged but for base URL and key."""

from __future__ import annotations

import base64

import pytest
import wavespeed
from wavespeed import Client

from seqdream_devkit.images import decode, png_bytes
from support.servers import LocalServer

pytestmark = pytest.mark.slow  # starts servers or processes

MODEL = "bytedance/seedream-v4/edit-sequential"


@pytest.fixture()
def sdk(server: LocalServer) -> Client:
    return Client(api_key=server.api_key, base_url=server.base_url, max_connection_retries=0)


def test_sdk_async_mode_polls_to_completion(sdk: Client, server: LocalServer) -> None:
    output = sdk.run(
        MODEL,
        {"prompt": "a series of 2 images of a paper boat", "max_images": 4, "size": "1024*1024"},
        poll_interval=0.05,
        timeout=60,
    )
    assert len(output["outputs"]) == 2
    for url in output["outputs"]:
        assert url.startswith(server.base_url)
        with server.client() as client:
            assert decode(client.get(url).content).size == (1024, 1024)


def test_sdk_sync_mode(sdk: Client) -> None:
    output = sdk.run(
        MODEL,
        {"prompt": "a teapot", "size": "1536*1024", "enable_base64_output": True},
        enable_sync_mode=True,
        timeout=60,
    )
    assert len(output["outputs"]) == 1
    assert decode(base64.b64decode(output["outputs"][0])).size == (1536, 1024)


def test_sdk_upload_then_edit(sdk: Client, server: LocalServer, tmp_path) -> None:
    path = tmp_path / "reference.png"
    path.write_bytes(png_bytes((128, 96), "blue"))
    url = sdk.upload(str(path))
    assert url.startswith(server.base_url) and url.endswith("/reference.png")
    with server.client(key=None) as anonymous:  # download URLs are capability URLs, like a CDN's
        assert anonymous.get(url).content == path.read_bytes()
    output = sdk.run(
        MODEL,
        {"prompt": "make the background green", "images": [url], "size": "1024*1024"},
        enable_sync_mode=True,
        timeout=60,
    )
    assert len(output["outputs"]) == 1


def test_sdk_reports_failed_tasks(sdk: Client, server: LocalServer) -> None:
    # A host that does not resolve passes submission and fails the task with a useful error.
    result = sdk.run_no_throw(
        MODEL, {"prompt": "edit", "images": ["http://no-such-host.invalid/a.png"]}, poll_interval=0.05, timeout=60
    )
    assert result["status"] == "failed"
    assert "could not be resolved" in result["error"] and result["task_id"] != "unknown"


def test_module_level_sdk_functions(server: LocalServer, monkeypatch) -> None:
    monkeypatch.setattr(wavespeed.config.api, "api_key", server.api_key)
    monkeypatch.setattr(wavespeed.config.api, "base_url", server.base_url)
    monkeypatch.setattr(wavespeed.api, "_default_client", None)
    output = wavespeed.run(MODEL, {"prompt": "a lamp"}, enable_sync_mode=True)
    assert len(output["outputs"]) == 1


def test_sdk_reads_a_result_that_carries_warnings(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`warnings` (a prompt outside the model's declared words) is an extension the SDK ignores."""
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    declared = model / "seqdream.json"
    settings = json.loads(declared.read_text()) if declared.is_file() else {}
    declared.write_text(json.dumps({**settings, "vocabulary": ["a", "red", "circle"]}))
    server = LocalServer(tmp_path / "data", model).start()
    try:
        client = Client(api_key=server.api_key, base_url=server.base_url, max_connection_retries=0)
        output = client.run(MODEL, {"prompt": "a red dragon", "size": "1024*1024"}, poll_interval=0.05, timeout=60)
        assert len(output["outputs"]) == 1
        with server.client() as api:  # the SDK hands back the outputs; the task itself says more
            (listed,) = api.get("/api/v3/predictions").json()["data"]["items"]
            task = api.get(f"/api/v3/predictions/{listed['id']}/result").json()["data"]
        assert task["warnings"] and '"dragon"' in task["warnings"][0] and '"red"' not in task["warnings"][0]
    finally:
        server.stop()
