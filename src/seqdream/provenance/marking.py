"""What a worker does to each output: the invisible watermark on its pixels, the signed manifest in
its file. Both on by default (`SEQDREAM_PROVENANCE_WATERMARK`, `SEQDREAM_PROVENANCE_C2PA`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import c2pa
from PIL import Image

from seqdream.config import Settings
from seqdream.cpu.parallel import parallel_map
from seqdream.images.encode import encode_image
from seqdream.images.label import add_watermark
from seqdream.provenance import credentials, watermark
from seqdream.provenance.content_credentials import ContentCredentials, Ingredient

log = logging.getLogger(__name__)


class ProvenanceSetupError(ValueError):
    """The configured signing certificate or key cannot sign (said at start, not per task)."""


@dataclass
class Marker:
    service: int | None  # the watermark's service tag; None: no watermark
    credentials: ContentCredentials | None  # None: no manifest

    @classmethod
    def from_settings(cls, settings: Settings) -> Marker:
        signer = None
        if settings.provenance_c2pa:
            configured = settings.c2pa_sign_cert is not None or settings.c2pa_sign_key is not None
            try:
                if configured:
                    if settings.c2pa_sign_cert is None or settings.c2pa_sign_key is None:
                        raise ValueError("set both SEQDREAM_C2PA_SIGN_CERT and SEQDREAM_C2PA_SIGN_KEY")
                    identity = credentials.load(settings.c2pa_sign_cert, settings.c2pa_sign_key, settings.c2pa_sign_alg)
                else:
                    identity = credentials.local(settings.data_dir, settings.provenance_service_id)
                signer = ContentCredentials(identity)
            except (OSError, ValueError, c2pa.C2paError) as exc:
                what = "the configured C2PA certificate and key" if configured else "the local C2PA CA"
                raise ProvenanceSetupError(
                    f"cannot sign with {what}: {exc} (or turn signing off: SEQDREAM_PROVENANCE_C2PA=false)"
                ) from exc
        service = watermark.service_tag(settings.provenance_service_id) if settings.provenance_watermark else None
        return cls(service=service, credentials=signer)

    def content_tag(self, inputs: str) -> int | None:
        """The tag this service's watermark gives images made from `inputs`; None when it marks none."""
        return None if self.service is None else watermark.content_tag(inputs)

    def watermark(self, image: Image.Image, inputs: str) -> Image.Image:
        """`inputs`: what the image was made from (`JobRequest.inputs_key`), not the task's id, so a
        repeated request with the same seed gives the same pixels."""
        tag = self.content_tag(inputs)
        if self.service is None or tag is None:
            return image
        return watermark.embed(image, watermark.Payload(self.service, tag))

    def sign(
        self, data: bytes, fmt: str, *, model: str, task_id: str, index: int, ingredients: list[Ingredient]
    ) -> bytes:
        if self.credentials is None:
            return data
        return self.credentials.sign(data, fmt, model=model, task_id=task_id, index=index, ingredients=ingredients)

    def mark(self, images: list[Image.Image], inputs: str, *, visible: bool = False) -> list[Image.Image]:
        """A batch of outputs' pixels as they are delivered: the visible label when the request asks for
        it, then this service's invisible watermark (a worker's tasks and `seqdream generate` alike)."""
        if visible:
            images = parallel_map(add_watermark, images)
        return parallel_map(lambda image: self.watermark(image, inputs), images)

    def file(
        self,
        image: Image.Image,
        fmt: str,
        quality: int,
        *,
        model: str,
        task_id: str,
        index: int,
        ingredients: list[Ingredient],
    ) -> bytes:
        """An output's file: encoded in `fmt`, with the signed manifest in it."""
        data = encode_image(image, fmt, quality)
        return self.sign(data, fmt, model=model, task_id=task_id, index=index, ingredients=ingredients)
