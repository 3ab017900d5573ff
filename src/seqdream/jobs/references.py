"""Load a job's reference images: stored blobs, or URLs fetched under the SSRF policy."""

from __future__ import annotations

from typing import Any

from PIL import Image

from seqdream.images.decode import ImageInputError, open_image
from seqdream.images.fetch import FetchPolicy, fetch_image_bytes
from seqdream.storage import BlobNotFound, BlobStore


def load_references(
    sources: list[dict[str, Any]],
    *,
    blobs: BlobStore,
    policy: FetchPolicy,
    max_pixels: int,
) -> list[Image.Image]:
    """Each source is {"blob": key} or {"url": url}; errors name the offending image."""
    images = []
    for index, source in enumerate(sources):
        label = f"images[{index}]"
        try:
            if "blob" in source:
                try:
                    data = blobs.get(source["blob"])
                except BlobNotFound as exc:
                    raise ImageInputError("is no longer stored (it expired or was deleted)") from exc
            else:
                data = fetch_image_bytes(source["url"], policy)
            images.append(open_image(data, max_bytes=policy.max_bytes, max_pixels=max_pixels))
        except ImageInputError as exc:
            where = f" ({source['url']})" if "url" in source else ""
            raise ImageInputError(f"{label}{where} {exc}") from exc
    return images
