"""A database outage under a request gets one answer wherever it meets it: a read, a submit (nothing
queued), each dialect's error shape, always with Retry-After; never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

T2I = "/api/v3/bytedance/seedream-v4"


def outage(*_args: object, **_kwargs: object) -> None:
    raise OperationalError("SELECT jobs", {}, Exception("server closed the connection unexpectedly"))


@pytest.mark.parametrize(
    ("method", "path", "body", "method_name", "said"),
    [
        ("get", "/api/v3/predictions/0123456789abcdef0123456789abcdef/result", None, "get", "try again shortly"),
        ("get", "/api/v3/predictions", None, "recent", "try again shortly"),
        ("post", T2I, {"prompt": "a red circle"}, "queue", "nothing was queued, try again shortly"),
        ("post", "/api/v3/images/generations", {"model": "seedream-4-0-250828", "prompt": "a red circle"}, "queue",
         "nothing was queued"),
    ],
)  # fmt: skip
def test_an_outage_is_one_503_wherever_a_request_meets_it(  # type: ignore[no-untyped-def]
    app_client: TestClient, monkeypatch: pytest.MonkeyPatch, method, path, body, method_name, said
) -> None:
    jobs = app_client.app.state.seqdream.services.jobs  # type: ignore[attr-defined]
    monkeypatch.setattr(jobs, method_name, outage)
    answer = app_client.request(method, path, json=body)
    assert answer.status_code == 503 and answer.headers["Retry-After"], answer.text
    payload = answer.json()
    message = payload["message"] if "message" in payload else payload["error"]["message"]
    assert message.startswith(f"the database is unavailable; {said}"), message
