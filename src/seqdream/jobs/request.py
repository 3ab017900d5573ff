"""What a job asks for, as stored with it: validated at the API, typed everywhere after."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from seqdream.numbers import size_pair


class Reference(BaseModel):
    """One reference image: a blob in our storage, or a URL fetched under the SSRF policy."""

    model_config = ConfigDict(frozen=True)

    blob: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Reference:
        if (self.blob is None) == (self.url is None):
            raise ValueError("a reference is either a blob or a URL")
        return self

    @property
    def is_inline_input(self) -> bool:
        """Stored from the request itself (base64 or an example file): the job owns it."""
        return self.blob is not None and self.blob.startswith("inputs/")


class JobRequest(BaseModel):
    """Stored with `model_dump()` in the job row, read back with `model_validate()`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    prompt: str
    size: str = "2048*2048"  # "W*H", validated by the API
    max_images: int = Field(1, ge=1)
    images: list[Reference] = []
    enable_base64_output: bool = False
    watermark: bool = False  # an "AI generated" mark in the corner (Ark's `watermark`)
    webhook_url: str | None = None  # POSTed the task object when it completes or fails
    public_base: str | None = None  # the base URL the task was submitted to: links in its webhook
    output_format: Literal["jpeg", "png", "webp"] | None = None  # None: the service's setting
    output_quality: int | None = Field(None, ge=0, le=100)  # JPEG/WebP quality; None: the setting

    @property
    def width_height(self) -> tuple[int, int]:
        pair = size_pair(self.size)
        if pair is None:  # requests are validated when accepted: a stored one always has a size
            raise ValueError(f"a task's size {self.size!r} is not W*H")
        return pair

    def inputs_key(self, model: str, seed: int, references: list[bytes]) -> str:
        """Everything the pixels depend on, as one string: identical requests give identical keys
        (references by their bytes' hashes, wherever they were stored)."""
        digests = [hashlib.sha256(data).hexdigest() for data in references]
        fields = [model, str(seed), self.prompt, self.size, str(self.max_images), str(self.watermark), *digests]
        return json.dumps(fields)

    @classmethod
    def of(cls, stored: dict[str, Any]) -> JobRequest:
        return cls.model_validate(stored)
