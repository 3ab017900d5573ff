"""The seed's requests over real HTTP, the envelope, status lifecycle, auth and 404s."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from seqdream_devkit.images import decode
from support.servers import LocalServer

EDIT_SEQ = "/api/v3/bytedance/seedream-v4/edit-sequential"


def run_seed_curl(server: LocalServer, body: dict) -> dict:
    """The seed's submit command, verbatim but for the base URL and key."""
    command = [
        "curl",
        "--silent",
        "--location",
        "--request",
        "POST",
        f"{server.base_url}{EDIT_SEQ}",
        "--header",
        "Content-Type: application/json",
        "--header",
        f"Authorization: Bearer {server.api_key}",
        "--data-raw",
        json.dumps(body),
    ]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.slow
def test_seed_curl_examples(server: LocalServer) -> None:
    seed_body = {"size": "2048*2048", "max_images": 1, "enable_base64_output": False, "enable_sync_mode": False}
    # The seed's body has no prompt, which its own table marks required: a clear 400.
    refused = run_seed_curl(server, seed_body)
    assert refused["code"] == 400 and refused["data"] is None
    assert "prompt" in refused["message"] and "required" in refused["message"].lower()

    submitted = run_seed_curl(server, {"prompt": "a lighthouse at dusk", **seed_body})
    data = submitted["data"]
    assert submitted["code"] == 200 and submitted["message"] == "success"
    assert data["status"] in ("created", "processing") and data["outputs"] == []
    assert data["model"] == "bytedance/seedream-v4/edit-sequential"
    assert data["urls"]["get"] == f"{server.base_url}/api/v3/predictions/{data['id']}/result"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["created_at"])

    server.wait_for(data["id"])
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--location",
            "--request",
            "GET",
            data["urls"]["get"],
            "--header",
            f"Authorization: Bearer {server.api_key}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    final = json.loads(result.stdout)["data"]
    assert final["status"] == "completed" and final["error"] == ""
    assert len(final["outputs"]) == 1 and final["has_nsfw_contents"] == [False]
    assert final["timings"]["inference"] > 0
    image = subprocess.run(["curl", "--silent", final["outputs"][0]], capture_output=True, check=True).stdout
    assert decode(image).size == (2048, 2048)


@pytest.mark.slow
def test_lifecycle_and_both_result_paths(server: LocalServer, api) -> None:
    response = api.post(EDIT_SEQ, json={"prompt": "a red kite", "size": "1024*1536", "seed": 11})
    assert response.status_code == 200
    job_id = response.json()["data"]["id"]
    final = server.wait_for(job_id)
    assert final["status"] == "completed"
    same = api.get(f"/api/v3/predictions/{job_id}").json()["data"]
    assert same["outputs"] == final["outputs"] and same["seed"] == 11
    picture = decode(api.get(final["outputs"][0]).content)
    assert picture.size == (1024, 1536) and picture.format == "JPEG"


@pytest.mark.slow
def test_missing_wrong_and_revoked_keys_get_401(server: LocalServer) -> None:
    body = {"prompt": "a cat"}
    with server.client(key=None) as anonymous:
        response = anonymous.post(EDIT_SEQ, json=body)
        assert response.status_code == 401 and response.json()["code"] == 401
        assert "API key" in response.json()["message"]
        assert anonymous.get("/api/v3/predictions/abc/result").status_code == 401
    with server.client(key="sqd_not-a-real-key") as wrong:
        assert wrong.post(EDIT_SEQ, json=body).status_code == 401
    secret = server.cli("keys", "create", "--name", "temporary").stdout.strip()
    with server.client(key=secret) as temporary:
        assert temporary.post(EDIT_SEQ, json=body).status_code == 200
        listing = server.cli("keys", "list").stdout
        key_id = next(line.split()[0] for line in listing.splitlines() if "temporary" in line)
        assert secret not in listing  # only the prefix is ever shown again
        server.cli("keys", "revoke", key_id)
        assert temporary.post(EDIT_SEQ, json=body).status_code == 401


@pytest.mark.slow
def test_unknown_prediction_is_404(api) -> None:
    for path in ("/api/v3/predictions/0123456789abcdef0123456789abcdef/result", "/api/v3/predictions/nope"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {"code": 404, "message": response.json()["message"], "data": None}
        assert "not found" in response.json()["message"]


@pytest.mark.slow
def test_unknown_route_and_method_use_the_envelope(api) -> None:
    missing = api.post("/api/v3/bytedance/seedream-v9", json={"prompt": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == 404
    wrong_method = api.get(EDIT_SEQ)
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == 405


@pytest.mark.slow
def test_jobs_are_private_to_their_key(server: LocalServer, api) -> None:
    job_id = api.post(EDIT_SEQ, json={"prompt": "a private thing"}).json()["data"]["id"]
    other = server.cli("keys", "create", "--name", "other").stdout.strip()
    with server.client(key=other) as stranger:
        assert stranger.get(f"/api/v3/predictions/{job_id}/result").status_code == 404


@pytest.mark.slow
def test_family_models_and_their_rules(server: LocalServer, api) -> None:
    import base64

    from seqdream_devkit.images import png_bytes

    t2i = api.post("/api/v3/bytedance/seedream-v4", json={"prompt": "a bird", "enable_sync_mode": True}).json()
    assert t2i["data"]["status"] == "completed" and len(t2i["data"]["outputs"]) == 1
    refused = api.post("/api/v3/bytedance/seedream-v4", json={"prompt": "a bird", "images": ["aGVsbG8="]})
    assert refused.status_code == 400 and "takes no reference images" in refused.json()["message"]

    edit_without = api.post("/api/v3/bytedance/seedream-v4/edit", json={"prompt": "make it blue"})
    assert edit_without.status_code == 400 and "images" in edit_without.json()["message"]
    ref = base64.b64encode(png_bytes()).decode()
    edit = api.post(
        "/api/v3/bytedance/seedream-v4/edit",
        json={
            "prompt": "a series of 4 images, make it blue",
            "images": [ref],
            "enable_sync_mode": True,
            "max_images": 4,
        },
    ).json()["data"]
    assert edit["status"] == "completed" and len(edit["outputs"]) == 1  # edit makes one image

    group = api.post(
        "/api/v3/bytedance/seedream-v4/sequential",
        json={
            "prompt": "three images of a tree in spring, summer and autumn",
            "max_images": 5,
            "size": "1024*1024",
            "enable_sync_mode": True,
        },
    ).json()["data"]
    assert group["status"] == "completed" and len(group["outputs"]) == 3
    refused_group = api.post("/api/v3/bytedance/seedream-v4/sequential", json={"prompt": "x", "images": [ref]})
    assert refused_group.status_code == 400


@pytest.mark.slow
def test_openapi_docs_are_served_offline(api) -> None:
    docs = api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "cdn.jsdelivr" not in docs.text
    spec = api.get("/openapi.json").json()
    assert "/api/v3/bytedance/seedream-v4/edit-sequential" in spec["paths"]


@pytest.mark.slow
def test_unknown_fields_are_ignored(api) -> None:
    response = api.post(EDIT_SEQ, json={"prompt": "a cat", "enable_prompt_expansion": True, "foo": {"bar": 1}})
    assert response.status_code == 200 and response.json()["data"]["status"] in ("created", "processing")


@pytest.mark.slow
def test_no_auth_flag_for_development(tiny_model, tmp_path) -> None:
    dev = LocalServer(tmp_path / "dev", tiny_model, "--no-auth").start()
    try:
        with dev.client(key=None) as anonymous:
            data = anonymous.post(EDIT_SEQ, json={"prompt": "a cat", "enable_sync_mode": True}).json()["data"]
            assert data["status"] == "completed"
            assert anonymous.get(data["urls"]["get"]).json()["data"]["outputs"] == data["outputs"]
    finally:
        dev.stop()


@pytest.mark.slow
def test_history_lists_the_callers_recent_tasks(server: LocalServer, api) -> None:
    fresh = server.cli("keys", "create", "--name", "history").stdout.strip()
    with server.client(key=fresh) as client:
        ids = [client.post(EDIT_SEQ, json={"prompt": f"history {i}"}).json()["data"]["id"] for i in range(3)]
        page = client.get("/api/v3/predictions", params={"page_size": 2}).json()["data"]
        assert [item["id"] for item in page["items"]] == ids[::-1][:2]
        assert page["items"][0]["prompt"] == "history 2"
        rest = client.get("/api/v3/predictions", params={"page": 2, "page_size": 2}).json()["data"]
        assert [item["id"] for item in rest["items"]] == ids[:1]
        bad = client.get("/api/v3/predictions", params={"page_size": 500})
        assert bad.status_code == 400 and "page_size" in bad.json()["message"]
    mine = api.get("/api/v3/predictions", params={"page_size": 100}).json()["data"]["items"]
    assert not set(ids) & {item["id"] for item in mine}
