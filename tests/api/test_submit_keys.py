"""A submit checks its API key in the same trip to the thread pool that queues it: before any
reference is decoded or stored, and against the key ring as it stands (a revoke acts at once)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

EDIT = "/api/v3/bytedance/seedream-v4/edit"
T2I = "/api/v3/bytedance/seedream-v4"


def stored_files(client: TestClient) -> set[Path]:
    root = Path(client.app.state.seqdream.services.settings.data_dir)  # type: ignore[attr-defined]
    return {path for path in root.rglob("*") if path.is_file() and "seqdream.db" not in path.name}


def inline_image() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "blue").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize("sync", [False, True])
def test_a_wrong_key_is_refused_before_anything_is_stored(app_client: TestClient, sync: bool) -> None:
    services = app_client.app.state.seqdream.services  # type: ignore[attr-defined]
    before_files, before_jobs = stored_files(app_client), services.jobs.counts()
    body = {"prompt": "make it red", "images": [inline_image()], "enable_sync_mode": sync}
    answer = app_client.post(EDIT, json=body, headers={"Authorization": "Bearer sqd_not-a-real-key"})
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == 401 and "invalid or revoked" in answer.json()["message"]
    assert stored_files(app_client) == before_files and services.jobs.counts() == before_jobs


def test_a_revoked_key_is_refused_at_its_next_submit(app_client: TestClient) -> None:
    keys = app_client.app.state.seqdream.services.keys  # type: ignore[attr-defined]
    created = keys.create("soon revoked")
    headers = {"Authorization": f"Bearer {created.secret}"}
    assert app_client.post(T2I, json={"prompt": "a kite"}, headers=headers).status_code == 200
    assert keys.revoke(created.id)
    answer = app_client.post(T2I, json={"prompt": "a kite"}, headers=headers)
    assert answer.status_code == 401 and "invalid or revoked" in answer.json()["message"]
    missing = app_client.post(T2I, json={"prompt": "a kite"}, headers={"Authorization": ""})
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["message"]
