"""Every error, from every layer, in the shape of the route's dialect: WaveSpeed's envelope, Ark's
`{"error": {"code", "message", "param", "type"}}` and OpenAI's `{"error": {"message", "type", "param",
"code"}}`. The limits on the head (414, 431) and the body (413) answer before any route runs, and still
in the dialect's shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.servers import LocalServer

pytestmark = pytest.mark.slow  # a real server: the head limits live in its HTTP protocol

DIALECTS = {
    "wavespeed": ("/api/v3/bytedance/seedream-v4", {"prompt": "a kite"}),
    "ark": ("/api/v3/images/generations", {"model": "seedream-4-0-250828", "prompt": "a kite"}),
    "openai": ("/v1/images/generations", {"prompt": "a kite"}),
}
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def shapes_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = LocalServer(
        tmp_path_factory.mktemp("shapes"), tiny_model, "--workers", "0", SEQDREAM_MAX_REQUEST_BYTES=str(MAX_BODY)
    ).start()
    yield server
    server.stop()


def assert_shape(dialect: str, answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, (dialect, answer.status_code, answer.text)
    body = answer.json()
    if dialect == "wavespeed":
        assert set(body) == {"code", "message", "data"} and body["code"] == status and body["data"] is None, body
        return str(body["message"])
    error = body["error"]
    keys = {"code", "message", "param", "type"}
    assert set(body) == {"error"} and set(error) == keys, (dialect, body)
    assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str)
    return str(error["message"])


def errors(server: LocalServer, dialect: str) -> dict[int, httpx.Response]:
    """One request of each error class to the dialect's generation route."""
    path, body = DIALECTS[dialect]
    broke = server.cli("keys", "create", "--name", f"broke-{dialect}", "--credits", "0").stdout.strip()
    slow = server.cli("keys", "create", "--name", f"slow-{dialect}", "--rate", "1/min").stdout.strip()
    answers: dict[int, httpx.Response] = {}
    with server.client() as client, server.client(None) as anonymous:
        answers[400] = client.post(path, json={**body, "prompt": 12})  # a wrong type: 422 in FastAPI, 400 here
        answers[401] = anonymous.post(path, json=body)
        with server.client(broke) as poor:
            answers[402] = poor.post(path, json=body)
        answers[404] = client.get(path.rsplit("/", 1)[0] + "/no-such-route")
        first = client.post(path, json={"prompt": 12}, headers={"Idempotency-Key": f"k-{dialect}"})
        assert first.status_code == 400
        if dialect == "wavespeed":  # the async dialect: a reused key with another body is a conflict
            client.post(path, json=body, headers={"Idempotency-Key": f"same-{dialect}"})
            answers[409] = client.post(
                path, json={**body, "prompt": "other"}, headers={"Idempotency-Key": f"same-{dialect}"}
            )
        answers[413] = client.post(path, content=b"{" + b" " * (MAX_BODY + 10) + b"}",
                                   headers={"Content-Type": "application/json"})  # fmt: skip
        answers[414] = client.post(path + "?" + "q" * 9000, json=body)
        answers[431] = client.post(path, json=body, headers={f"x-h{n}": "v" for n in range(150)})
        if dialect == "wavespeed":
            with server.client(slow) as limited:
                assert limited.post(path, json=body).status_code == 200
                answers[429] = limited.post(path, json=body)
    return answers


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_each_error_class_answers_in_the_dialects_own_shape(shapes_server: LocalServer, dialect: str) -> None:
    answers = errors(shapes_server, dialect)
    for status, answer in answers.items():
        message = assert_shape(dialect, answer, status)
        assert "Traceback" not in message and "object at 0x" not in message
    if 429 in answers:
        assert 1 <= int(answers[429].headers["Retry-After"]) <= 60
    assert {400, 401, 402, 404, 413, 414, 431} <= set(answers)
