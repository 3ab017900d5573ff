"""Request bodies of the Seedream V4 family, one class per model, and their rules."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from seqdream.api.field_rules import field_rules
from seqdream.jobs.planner import MAX_IMAGES_OUT, SEED_MAX
from seqdream.numbers import shown, side_outside, size_pair

MIN_SIDE, MAX_SIDE = 1024, 4096
V45_MIN_PIXELS = 2560 * 1440  # Seedream v4.5 has no 1K sizes
MAX_REFERENCES = 10
MAX_PROMPT_CHARS = 10_000
MAX_URL_CHARS = 4096  # a reference or webhook URL
MAX_MODEL_NAME_CHARS = 128  # the Ark and OpenAI dialects' `model`
_ALLOWED_CONTROLS = {"\n", "\r", "\t"}


def check_prompt(value: str) -> str:
    """A prompt every dialect accepts: not blank, no control characters but newlines and tabs."""
    # Blank also when only zero-width and other invisible format characters remain.
    if not "".join(ch for ch in value if unicodedata.category(ch) != "Cf").strip():
        raise ValueError("must not be empty")
    if any(unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS for ch in value):
        raise ValueError("must not contain control characters (other than newlines and tabs)")
    return value


# The prompt field of every dialect: 1 to MAX_PROMPT_CHARS characters that `check_prompt` accepts.
Prompt = Annotated[StrictStr, Field(min_length=1, max_length=MAX_PROMPT_CHARS), AfterValidator(check_prompt)]


class SeedreamRequest(BaseModel):
    """Fields every model of the family takes."""

    model_config = ConfigDict(extra="ignore")
    FAMILY: ClassVar[str] = "bytedance/seedream-v4"
    MIN_PIXELS: ClassVar[int] = 0  # v4.5 has no 1K: at least 2560*1440 pixels
    MAX_TOTAL_IMAGES: ClassVar[int | None] = None  # v4.5: references + max_images <= 15

    prompt: Prompt = Field(description="The prompt to generate an image from.")
    size: StrictStr = Field("2048*2048", description="Output size in pixels, width*height; 1024 ~ 4096 per side.")
    seed: StrictInt = Field(-1, ge=-1, le=SEED_MAX, description="Random seed; -1 means random.")
    enable_base64_output: StrictBool = Field(False, description="Return outputs as base64 strings instead of URLs.")
    enable_sync_mode: StrictBool = Field(False, description="Hold the request until the images are ready.")
    webhook_url: StrictStr | None = Field(
        None,
        max_length=MAX_URL_CHARS,
        description="POSTed the task when it ends (or `?webhook=`); signed, see /webhook/secret.",
    )

    @field_validator("size")
    @classmethod
    def _size_in_range(cls, value: str) -> str:
        pair = size_pair(value)
        if pair is None:
            raise ValueError(f'{shown(value)} is not of the form "W*H"')
        width, height = pair
        if outside := side_outside(width, height, MIN_SIDE, MAX_SIDE):
            raise ValueError(outside)
        if width * height < cls.MIN_PIXELS:
            raise ValueError(
                f"{width}*{height} is {width * height} pixels; {cls.FAMILY} needs at least {cls.MIN_PIXELS}"
            )
        return f"{width}*{height}"

    @model_validator(mode="after")
    def _total_images(self) -> SeedreamRequest:
        total = len(getattr(self, "images", [])) + getattr(self, "max_images", 1)
        if self.MAX_TOTAL_IMAGES is not None and total > self.MAX_TOTAL_IMAGES:
            raise ValueError(
                f"images + max_images is {total}; {self.FAMILY} allows at most {self.MAX_TOTAL_IMAGES} in all"
            )
        return self


class _RefusesImages(SeedreamRequest):
    @model_validator(mode="before")
    @classmethod
    def _no_images(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("images"):
            raise ValueError(
                f"images: this model takes no reference images; use {cls.FAMILY}/edit or {cls.FAMILY}/edit-sequential"
            )
        return data


class TextToImageRequest(_RefusesImages):
    """bytedance/seedream-v4: one image from a prompt."""


class SequentialRequest(_RefusesImages):
    """bytedance/seedream-v4/sequential: a group of consistent images from a prompt."""

    max_images: StrictInt = Field(1, ge=1, le=MAX_IMAGES_OUT, description="Most images to generate, 1 ~ 14.")


class EditRequest(SeedreamRequest):
    """bytedance/seedream-v4/edit: one image from a prompt and 1-10 reference images."""

    images: list[StrictStr] = Field(
        ..., min_length=1, max_length=MAX_REFERENCES, description="Images to edit: URLs or base64."
    )


class EditSequentialRequest(SeedreamRequest):
    """bytedance/seedream-v4/edit-sequential: a group from a prompt and up to 10 references."""

    images: list[StrictStr] = Field(
        default_factory=list, max_length=MAX_REFERENCES, description="Images to edit: URLs or base64."
    )
    max_images: StrictInt = Field(1, ge=1, le=MAX_IMAGES_OUT, description="Most images to generate, 1 ~ 14.")


AnyRequest = TextToImageRequest | SequentialRequest | EditRequest | EditSequentialRequest


class DeleteRequest(BaseModel):
    """POST /api/v3/predictions/delete."""

    ids: list[str] = Field(..., min_length=1, max_length=100, description="Task ids to delete.")


class ListingQuery(BaseModel):
    """GET /api/v3/predictions: a page of the calling key's tasks."""

    page: int = Field(1, ge=1, le=10_000, description="Page, from 1.")
    page_size: int = Field(20, ge=1, le=100, description="Tasks per page.")


SIZE_RULE = f'a string "W*H" with each side from {MIN_SIDE} to {MAX_SIDE}, e.g. "2048*2048"'
_NOTES = {
    "images": "each an http(s) URL, a data: URI or base64 image data",
    "seed": "-1 picks a random seed",
    "webhook_url": "an http(s) URL that receives the task when it ends",
    "ids": "task ids",
}
# What a 400 of the WaveSpeed routes quotes for each field (`?webhook=` is the body's webhook_url).
FIELD_RULES = field_rules(
    EditSequentialRequest, DeleteRequest, ListingQuery, by_validator={"size": SIZE_RULE}, notes=_NOTES
)
FIELD_RULES["webhook"] = FIELD_RULES["webhook_url"]


class _V45:
    """Seedream v4.5's rules on top of v4's: no 1K sizes, references and outputs at most 15 together."""

    FAMILY: ClassVar[str] = "bytedance/seedream-v4.5"
    MIN_PIXELS: ClassVar[int] = V45_MIN_PIXELS
    MAX_TOTAL_IMAGES: ClassVar[int | None] = 15


class TextToImageV45Request(_V45, TextToImageRequest):
    """bytedance/seedream-v4.5: one image from a prompt."""


class SequentialV45Request(_V45, SequentialRequest):
    """bytedance/seedream-v4.5/sequential."""


class EditV45Request(_V45, EditRequest):
    """bytedance/seedream-v4.5/edit."""


class EditSequentialV45Request(_V45, EditSequentialRequest):
    """bytedance/seedream-v4.5/edit-sequential."""


V45_FIELD_RULES = FIELD_RULES | {
    "size": f'a string "W*H", each side {MIN_SIDE} to {MAX_SIDE}, at least 2560*1440 pixels in all, e.g. "2048*2048"',
    "max_images": f"{FIELD_RULES['max_images']}; images + max_images at most {_V45.MAX_TOTAL_IMAGES}",
}


@dataclass(frozen=True)
class ModelSpec:
    id: str
    schema: type[SeedreamRequest]
    summary: str


MODELS = [
    ModelSpec("bytedance/seedream-v4", TextToImageRequest, "Text to image"),
    ModelSpec("bytedance/seedream-v4/edit", EditRequest, "Edit with 1-10 reference images"),
    ModelSpec("bytedance/seedream-v4/sequential", SequentialRequest, "Group of 1-14 images from text"),
    ModelSpec(
        "bytedance/seedream-v4/edit-sequential",
        EditSequentialRequest,
        "Group of 1-14 images from text and up to 10 references",
    ),
    ModelSpec("bytedance/seedream-v4.5", TextToImageV45Request, "Seedream v4.5: text to image"),
    ModelSpec("bytedance/seedream-v4.5/edit", EditV45Request, "Seedream v4.5: edit with 1-10 reference images"),
    ModelSpec("bytedance/seedream-v4.5/sequential", SequentialV45Request, "Seedream v4.5: group of 1-14 images"),
    ModelSpec(
        "bytedance/seedream-v4.5/edit-sequential",
        EditSequentialV45Request,
        "Seedream v4.5: group of 1-14 images from text and up to 10 references",
    ),
]
