"""One attempt at a job: its images marked, checked, stored and recorded as each batch finishes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from seqdream.cpu.parallel import parallel_map
from seqdream.db import Job
from seqdream.jobs.request import JobRequest
from seqdream.jobs.store import JobStore
from seqdream.locations import output_key
from seqdream.provenance.content_credentials import Ingredient
from seqdream.provenance.marking import Marker
from seqdream.storage import BlobStore


class Detector(Protocol):
    def is_nsfw(self, image: Image.Image) -> bool: ...


@dataclass(frozen=True)
class Outlets:
    """Where an attempt's images go: the worker's marker, detector, blob store and job store."""

    marker: Marker
    detector: Detector
    blobs: BlobStore
    jobs: JobStore
    worker_id: str


@dataclass
class Attempt:
    job: Job
    request: JobRequest
    fmt: str
    quality: int
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:8])  # its output names: no other attempt's
    ingredients: list[Ingredient] = field(default_factory=list)  # the references, as a manifest names them
    inputs: str = ""  # what the pixels are made from (`JobRequest.inputs_key`), once references are loaded
    keys: list[str] = field(default_factory=list)  # the outputs stored so far, in order
    flags: list[bool] = field(default_factory=list)

    def use_references(self, ingredients: list[Ingredient]) -> None:
        self.ingredients = ingredients
        self.inputs = self.request.inputs_key(self.job.model, self.job.seed, [item.data for item in ingredients])

    def receiver(
        self, outlets: Outlets, not_owned: Callable[[], Exception]
    ) -> Callable[[int, list[Image.Image]], None]:
        """The engine's callback: mark, check, store and record each batch as it finishes (polling
        shows a group growing); `not_owned()` is raised when the job is no longer this worker's."""

        def save(indexed: tuple[int, Image.Image]) -> str:
            index, image = indexed
            key = output_key(self.job.id, index, self.fmt, self.name)
            data = outlets.marker.file(
                image, self.fmt, self.quality,
                model=self.job.model, task_id=self.job.id, index=index, ingredients=self.ingredients,
            )  # fmt: skip
            outlets.blobs.put(key, data)
            return key

        def on_images(start: int, images: list[Image.Image]) -> None:
            images = outlets.marker.mark(images, self.inputs, visible=self.request.watermark)
            flags = parallel_map(outlets.detector.is_nsfw, images)
            self.keys.extend(parallel_map(save, enumerate(images, start)))
            self.flags.extend(flags)
            recorded = outlets.jobs.add_outputs(
                self.job.id,
                outlets.worker_id,
                outputs=self.keys,
                has_nsfw_contents=self.flags,
                content_tag=outlets.marker.content_tag(self.inputs),
            )
            if not recorded:
                raise not_owned()

        return on_images
