"""What trips a newcomer, answered: a wrong route lists the right ones, a local path as a reference points
to the upload route, the browser's favicon is there, and the command list is not cut short."""

from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from seqdream.cli.main import app as cli


@pytest.mark.parametrize(
    ("method", "path", "shape"),
    [("POST", "/api/v3/bytedance/seedream-v5", "code"), ("GET", "/api/v3/predictions", None),
     ("POST", "/v1/images/edit", "error"), ("GET", "/nothing/here", "code")],
)  # fmt: skip
def test_a_wrong_route_names_the_right_ones(app_client: TestClient, method: str, path: str, shape: str | None) -> None:
    answer = app_client.request(method, path, json={"prompt": "p"})
    if shape is None:  # a real route, for contrast
        assert answer.status_code == 200
        return
    assert answer.status_code == 404
    body = answer.json()
    message = body["message"] if shape == "code" else body["error"]["message"]
    assert f"no route {method} {path}" in message and "/api/v3/bytedance/seedream-v4" in message
    assert "/openapi.json" in message


@pytest.mark.parametrize(
    "value", ["/home/me/cat.png", "./cat.png", "~/Pictures/cat.png", "C:\\\\Users\\\\me\\\\cat.png"]
)
def test_a_local_path_as_a_reference_points_to_the_upload_route(app_client: TestClient, value: str) -> None:
    answer = app_client.post("/api/v3/bytedance/seedream-v4/edit", json={"prompt": "p", "images": [value]})
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert "looks like a path on your machine" in message and "/api/v3/media/upload/binary" in message


def test_base64_that_starts_like_a_path_is_still_an_image(app_client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "JPEG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    assert encoded.startswith("/9j/")  # every JPEG's base64 does
    answer = app_client.post("/api/v3/bytedance/seedream-v4/edit", json={"prompt": "p", "images": [encoded]})
    assert answer.status_code == 200, answer.text


def test_the_browsers_favicon_is_served(app_client: TestClient) -> None:
    answer = app_client.get("/favicon.ico")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/svg+xml"
    assert answer.content.startswith(b"<svg")


def test_the_command_list_says_each_command_whole() -> None:
    result = CliRunner().invoke(cli, ["--help"], terminal_width=80)
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    assert "..." not in commands and "…" not in commands, commands
    for name in ("serve", "worker", "health", "generate", "verify", "usage", "keys", "db"):
        assert f"  {name} " in commands


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/api/v3/examples", "/api/v3/predictions", "/nope"])
def test_json_replies_end_with_a_newline(app_client: TestClient, path: str) -> None:
    """So `curl … ; curl …` prints one JSON document a line, not two run together."""
    answer = app_client.get(path)
    assert answer.content.endswith(b"}\n") and answer.json() is not None
