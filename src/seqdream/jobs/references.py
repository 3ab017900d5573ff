"""Load a job's reference images: stored blobs, or URLs fetched under the SSRF policy."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from seqdream.images.decode import ImageInputError, ReferenceLimits, open_image
from seqdream.images.fetch import FetchPolicy, fetch_image_bytes
from seqdream.jobs.request import Reference
from seqdream.storage import BlobNotFound, BlobStore


@dataclass(frozen=True)
class LoadedReference:
    image: Image.Image
    data: bytes  # as received: what a C2PA manifest names as an ingredient


def load_references(
    sources: list[Reference],
    *,
    blobs: BlobStore,
    policy: FetchPolicy,
    limits: ReferenceLimits,
) -> list[LoadedReference]:
    """Each reference held to `limits` (`reference_limits`, as at intake); errors name the offending
    image, `images[i]`."""
    images = []
    for index, source in enumerate(sources):
        label = f"images[{index}]"
        try:
            if source.blob is not None:
                try:
                    data = blobs.get(source.blob)
                except BlobNotFound as exc:
                    raise ImageInputError("is no longer stored (it expired or was deleted)") from exc
            else:
                data = fetch_image_bytes(str(source.url), policy)
            images.append(LoadedReference(open_image(data, **limits), data))
        except ImageInputError as exc:
            where = f" ({source.url})" if source.url else ""
            raise ImageInputError(f"{label}{where} {exc}") from exc
    return images
