"""What `POST /api/v3/provenance/verify` is sent, refused as a submit refuses a reference: the same
words for a path on the client's machine, another scheme, a form without its file."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

VERIFY = "/api/v3/provenance/verify"
SUBMIT = "/api/v3/bytedance/seedream-v4/edit"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("/home/me/cat.png", "looks like a path on your machine; a file on your machine is uploaded first"),
        ("C:\\Users\\me\\cat.png", "looks like a path on your machine"),
        ("ftp://example.com/cat.png", "only http(s) URLs, data: URIs and base64 are accepted"),
        ("file:///etc/passwd", "only http(s) URLs, data: URIs and base64 are accepted"),
        ("bm90IGFuIGltYWdl", "decoded"),  # base64 of "not an image"
    ],
)
def test_verify_and_submit_refuse_a_value_in_the_same_words(app_client: TestClient, value: str, words: str) -> None:
    checked = app_client.post(VERIFY, json={"image": value})
    submitted = app_client.post(SUBMIT, json={"prompt": "x", "images": [value]})
    assert checked.status_code == submitted.status_code == 400, (checked.text, submitted.text)
    as_verify, as_submit = checked.json()["message"], submitted.json()["message"]
    assert as_verify.startswith("image") and as_submit.startswith("images[0]")
    assert words in as_verify and words in as_submit
    if words != "decoded":  # refused before decoding: in one helper's words (verify decodes with its own limits)
        assert as_verify.removeprefix("image") == as_submit.removeprefix("images[0]")


def test_a_form_without_its_file_says_what_to_send(app_client: TestClient) -> None:
    for path in (VERIFY, "/api/v3/media/upload/binary"):
        text_part = app_client.post(path, data={"file": "cat.png"}, files={"other": ("x.txt", b"x", "text/plain")})
        assert text_part.status_code == 400 and "a file, not a text field" in text_part.json()["message"]
        two = [("file", ("a.png", b"a", "image/png")), ("file", ("b.png", b"b", "image/png"))]
        assert app_client.post(path, files=two).status_code == 400
