"""Outputs carry a signed C2PA manifest and the watermark, end to end through a real server; `seqdream
verify` and `POST /api/v3/provenance/verify` report them, for our outputs, for re-encoded copies and
for unrelated images. The c2pa library's own reader validates the manifests."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import c2pa
import httpx
import pytest
from PIL import Image

from support.servers import LocalServer

T2I = "/api/v3/bytedance/seedream-v4"
EDIT = "/api/v3/bytedance/seedream-v4/edit"


def run_sync(client: httpx.Client, path: str, body: dict) -> dict:
    response = client.post(path, json=body | {"enable_sync_mode": True})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "completed", data
    return data


def verify_cli(server: LocalServer, *paths: Path, json_out: bool = False) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "seqdream.cli.main", "verify", *(["--json"] if json_out else []), *map(str, paths)]
    return subprocess.run(args, env=server.env, capture_output=True, text=True, timeout=120)


def png(colour: str, size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_outputs_carry_a_manifest_the_c2pa_reader_validates(server: LocalServer, tmp_path: Path) -> None:
    reference = png("orange")
    with server.client() as client:
        data = run_sync(client, EDIT, {"prompt": "a red circle", "images": [base64.b64encode(reference).decode()]})
        output = client.get(data["outputs"][0]).content
        as_base64 = run_sync(client, T2I, {"prompt": "a blue square", "enable_base64_output": True, "seed": 3})
        by_url = run_sync(client, T2I, {"prompt": "a blue square", "seed": 3})
        assert base64.b64decode(as_base64["outputs"][0].split(",")[-1]) != b""
        encoded = base64.b64decode(as_base64["outputs"][0].split(",")[-1])
        assert encoded[:2] == b"\xff\xd8" and b"c2pa" in encoded  # base64 carries the signed file too
        assert client.get(by_url["outputs"][0]).content != encoded  # its own task id, its own manifest

    ca = server.data_dir / "provenance" / "ca.pem"
    assert ca.is_file() and (server.data_dir / "provenance" / "signer-key.pem").stat().st_mode & 0o077 == 0
    trusted = c2pa.Context(c2pa.Settings.from_dict({"trust": {"trust_anchors": ca.read_text()}}))
    with c2pa.Reader("image/jpeg", io.BytesIO(output), context=trusted) as reader:
        assert reader.get_validation_state() == "Trusted"
        manifest = reader.get_active_manifest()
    assert manifest["claim_generator_info"][0]["name"] == "seqdream"
    (action,) = [a for assertion in manifest["assertions"] if assertion["label"].startswith("c2pa.actions")
                 for a in assertion["data"]["actions"]]  # fmt: skip
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
    assert action["parameters"] == {"model": "bytedance/seedream-v4/edit", "task_id": data["id"], "image_index": 0}
    (ingredient,) = manifest["ingredients"]
    assert ingredient["title"] == "images[0]" and ingredient["relationship"] == "inputTo"
    assert "thumbnail" not in ingredient  # hashes and formats, not the picture
    # Without the local CA in its trust list a reader finds the manifest valid but the signer untrusted.
    with c2pa.Reader("image/jpeg", io.BytesIO(output)) as reader:
        failures = reader.get_validation_results()["activeManifest"]["failure"]
    assert [item["code"] for item in failures] == ["signingCredential.untrusted"]


@pytest.mark.parametrize("output_format", ["png", "webp", "jpeg"])
@pytest.mark.slow
def test_every_output_format_is_signed_and_verified(server: LocalServer, tmp_path: Path, output_format: str) -> None:
    with server.client() as client:
        body = {"prompt": "a green triangle", "size": "1024x1024", "output_format": output_format}
        response = client.post("/v1/images/generations", json=body)
        assert response.status_code == 200, response.text
        data = client.get(response.json()["data"][0]["url"]).content
    path = tmp_path / f"out.{output_format}"
    path.write_bytes(data)
    result = verify_cli(server, path, json_out=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["marked"] and report["format"] == output_format
    assert report["c2pa"]["present"] and report["c2pa"]["trusted"], report
    assert report["watermark"]["found"] and report["watermark"]["ours"]


@pytest.mark.slow
def test_verify_tells_ours_re_encoded_unrelated_and_unreadable_apart(server: LocalServer, tmp_path: Path) -> None:
    body = {"prompt": "a purple cross on a yellow background", "seed": 11}
    with server.client() as client:
        data = run_sync(client, T2I, body)
        ours = client.get(data["outputs"][0]).content
        again = run_sync(client, T2I, body)  # the same request: the same pixels, the same content tag
        other = run_sync(client, T2I, body | {"seed": 12})
        assert client.get(again["outputs"][0]).content != ours  # its manifest names its own task
    (tmp_path / "ours.jpeg").write_bytes(ours)
    copy = Image.open(io.BytesIO(ours)).convert("RGB")
    copy = copy.resize((copy.width // 2, copy.height // 2), Image.Resampling.BICUBIC)
    copy.save(tmp_path / "shared.jpeg", quality=75)  # a third party re-encodes: the manifest is gone
    Image.new("RGB", (800, 600), "teal").save(tmp_path / "unrelated.png")
    (tmp_path / "notes.txt").write_text("not an image")

    result = verify_cli(server, tmp_path / "ours.jpeg", tmp_path / "shared.jpeg")
    assert result.returncode == 0, result.stdout + result.stderr
    ours_line, shared_line = result.stdout.splitlines()
    assert "AI-generated by this seqdream service" in ours_line and f"task {data['id']}" in ours_line
    assert "signed by this service" in ours_line
    assert "no C2PA manifest" in shared_line and "watermark of this service" in shared_line
    # Without its manifest, the watermark still leads to the tasks that made such an image.
    assert f"(made by task {again['id']}, {data['id']})" in shared_line, shared_line
    assert other["id"] not in result.stdout
    as_json = json.loads(verify_cli(server, tmp_path / "shared.jpeg", json_out=True).stdout)
    assert as_json["watermark"]["tasks"] == [again["id"], data["id"]]

    unrelated = verify_cli(server, tmp_path / "ours.jpeg", tmp_path / "unrelated.png")
    assert unrelated.returncode == 1 and "unrelated.png: no marks of this service" in unrelated.stdout
    unreadable = verify_cli(server, tmp_path / "unrelated.png", tmp_path / "notes.txt")
    assert unreadable.returncode == 2 and "notes.txt: could not be decoded as an image" in unreadable.stderr

    with server.client() as client:
        uploaded = client.post(
            "/api/v3/provenance/verify", files={"file": ("shared.jpeg", (tmp_path / "shared.jpeg").read_bytes())}
        )
        assert uploaded.status_code == 200, uploaded.text
        report = uploaded.json()["data"]
        assert report["marked"] and not report["c2pa"]["present"] and report["watermark"]["ours"]
        assert report["watermark"]["tasks"] == [again["id"], data["id"]]
        by_url = client.post("/api/v3/provenance/verify", json={"image": data["outputs"][0]}).json()["data"]
        assert by_url["marked"] and by_url["c2pa"]["trusted"] and by_url["signed_by"] == "this service"
        plain = base64.b64encode((tmp_path / "unrelated.png").read_bytes()).decode()
        nothing = client.post("/api/v3/provenance/verify", json={"image": f"data:image/png;base64,{plain}"}).json()
        assert nothing["data"]["marked"] is False and nothing["data"]["watermark"]["found"] is False
        bad = client.post("/api/v3/provenance/verify", json={"image": base64.b64encode(b"not an image").decode()})
        assert bad.status_code == 400 and bad.json()["code"] == 400
        missing = client.post("/api/v3/provenance/verify", json={})
        assert missing.status_code == 400
    stranger = server.cli("keys", "create", "--name", "stranger").stdout.strip()
    with server.client(stranger) as client:  # another key's tasks are not named to it
        shared = {"file": ("shared.jpeg", (tmp_path / "shared.jpeg").read_bytes())}
        report = client.post("/api/v3/provenance/verify", files=shared).json()["data"]
        assert report["watermark"]["ours"] and report["watermark"]["tasks"] == []


@pytest.mark.slow
def test_marks_can_be_turned_off(tiny_model: Path, tmp_path: Path) -> None:
    server = LocalServer(tmp_path / "plain", tiny_model, SEQDREAM_PROVENANCE_C2PA="false",
                         SEQDREAM_PROVENANCE_WATERMARK="false", SEQDREAM_NSFW_CHECK="false").start()  # fmt: skip
    try:
        with server.client() as client:
            data = run_sync(client, T2I, {"prompt": "a red circle"})
            (tmp_path / "plain.jpeg").write_bytes(client.get(data["outputs"][0]).content)
        result = verify_cli(server, tmp_path / "plain.jpeg")
        assert result.returncode == 1 and "no marks of this service" in result.stdout
        assert not (server.data_dir / "provenance").exists()
    finally:
        server.stop()


@pytest.mark.slow
def test_a_configured_certificate_signs_and_a_broken_one_stops_the_start(tiny_model: Path, tmp_path: Path) -> None:
    from seqdream.provenance.credentials import local

    own = local(tmp_path / "elsewhere", "acme")  # a chain and key made elsewhere, as an operator's would be
    (tmp_path / "chain.pem").write_bytes(own.chain)
    (tmp_path / "key.pem").write_bytes(own.key)
    env = {"SEQDREAM_C2PA_SIGN_CERT": str(tmp_path / "chain.pem"), "SEQDREAM_C2PA_SIGN_KEY": str(tmp_path / "key.pem"),
           "SEQDREAM_C2PA_TRUST_ANCHORS": str(own.local_ca), "SEQDREAM_NSFW_CHECK": "false"}  # fmt: skip
    server = LocalServer(tmp_path / "signed", tiny_model, **env).start()
    try:
        with server.client() as client:
            data = run_sync(client, T2I, {"prompt": "a red circle"})
            (tmp_path / "signed.jpeg").write_bytes(client.get(data["outputs"][0]).content)
        report = json.loads(verify_cli(server, tmp_path / "signed.jpeg", json_out=True).stdout)
        assert report["c2pa"]["trusted"] and not (server.data_dir / "provenance").exists()
        anchors = own.local_ca.read_bytes()
        own.local_ca.write_text("not a certificate")  # replaced by a broken file while the server runs
        with server.client() as client:
            signed = {"file": ("signed.jpeg", (tmp_path / "signed.jpeg").read_bytes())}
            answer = client.post("/api/v3/provenance/verify", files=signed)
            assert answer.status_code == 503 and "trust anchors cannot be used" in answer.json()["message"]
            assert str(own.local_ca) not in answer.text  # the operator's path stays in the log
            own.local_ca.write_bytes(anchors)
            assert client.post("/api/v3/provenance/verify", files=signed).json()["data"]["c2pa"]["trusted"]
        own.local_ca.write_text("not a certificate")
        broken_anchors = verify_cli(server, tmp_path / "signed.jpeg")
        assert broken_anchors.returncode == 2 and "it holds no PEM certificate" in broken_anchors.stderr
        assert "Traceback" not in broken_anchors.stderr
        own.local_ca.write_bytes(anchors)
    finally:
        server.stop()
    assert "SEQDREAM_C2PA_TRUST_ANCHORS" in server.log_path.read_text()
    (tmp_path / "key.pem").write_text("not a key")
    broken = subprocess.run([sys.executable, "-m", "seqdream.cli.main", "serve"], env=server.env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert broken.returncode == 2 and "cannot sign with the configured C2PA certificate" in broken.stderr
    assert "Traceback" not in broken.stderr
