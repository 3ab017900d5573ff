"""Whether an image carries seqdream's marks: `seqdream verify` and `POST /api/v3/provenance/verify`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from seqdream.images.decode import ImageInputError, open_image
from seqdream.provenance import watermark
from seqdream.provenance.content_credentials import MIME, ManifestReport, read_manifest
from seqdream.provenance.credentials import local_ca


class UnreadableImage(ValueError):
    pass


@dataclass(frozen=True)
class WatermarkReport:
    found: bool
    service: int | None = None
    ours: bool = False  # the service tag is this service's
    content_tag: str | None = None  # 6 hex digits of sha256(the request's inputs): equal for identical requests

    @property
    def tag(self) -> int | None:
        """The content tag as the number tasks record (`Job.content_tag`)."""
        return None if self.content_tag is None else int(self.content_tag, 16)

    def as_dict(self) -> dict[str, Any]:
        return {"found": self.found, "ours": self.ours, "service_tag": self.service, "content_tag": self.content_tag}


@dataclass(frozen=True)
class ProvenanceReport:
    format: str
    c2pa: ManifestReport
    watermark: WatermarkReport

    @property
    def signed_by(self) -> str | None:
        """Who signed the manifest: "this service" when its certificate chains to this service's trust
        anchors (its own local CA, or the configured ones), "another party" when the signature is
        valid but chains to neither (anyone can make such a manifest and name seqdream in it),
        "nobody" when it is invalid or tampered; None without a manifest."""
        if not self.c2pa.present:
            return None
        if self.c2pa.trusted:
            return "this service"
        return "another party" if self.c2pa.valid else "nobody"

    @property
    def from_seqdream(self) -> bool:
        """Made by this service: a seqdream manifest signed by it, or this service's watermark."""
        signed_here = self.signed_by == "this service" and (self.c2pa.claim_generator or "").startswith("seqdream/")
        return signed_here or self.watermark.ours

    @property
    def task_ids(self) -> list[str]:
        return [str(a["parameters"]["task_id"]) for a in self.c2pa.actions if "task_id" in a.get("parameters", {})]

    def as_dict(self) -> dict[str, Any]:
        return {
            "marked": self.from_seqdream,
            "signed_by": self.signed_by,
            "format": self.format,
            "c2pa": self.c2pa.as_dict(),
            "watermark": self.watermark.as_dict(),
        }


def verify(data: bytes, *, trust_anchors: str, service_id: str, max_bytes: int, max_pixels: int) -> ProvenanceReport:
    """The marks `data` carries. UnreadableImage (a message safe to show) for what is not an
    image, or is past the byte or pixel limits: those are read from the header, before decoding."""
    try:
        image = open_image(data, max_bytes=max_bytes, max_pixels=max_pixels)  # limits checked before decoding
    except ImageInputError as exc:
        raise UnreadableImage(str(exc)) from exc
    fmt = image.format or "?"
    mime = MIME.get(fmt.lower())
    manifest = read_manifest(data, mime, trust_anchors) if mime else ManifestReport(present=False)
    payload = watermark.read(image)
    if payload is None:
        mark = WatermarkReport(found=False)
    else:
        mark = WatermarkReport(
            found=True,
            service=payload.service,
            ours=payload.service == watermark.service_tag(service_id),
            content_tag=f"{payload.task:06x}",
        )
    return ProvenanceReport(format=fmt.lower(), c2pa=manifest, watermark=mark)


class TrustAnchorsError(ValueError):
    """SEQDREAM_C2PA_TRUST_ANCHORS names a file that cannot be read or holds no certificate."""


def trust_anchors(configured: Path | None, data_dir: Path) -> str:
    """The PEM certificates a manifest's signer may chain to: the configured ones (a TrustAnchorsError
    when that file cannot be read or holds none) and this service's own local CA, when it made one."""
    texts = []
    if configured is not None:
        try:
            pem = configured.read_bytes()
            x509.load_pem_x509_certificates(pem)
            text = pem.decode("ascii")
        except (OSError, ValueError) as exc:  # missing, a folder, not text, no PEM certificate in it
            why = exc.strerror if isinstance(exc, OSError) else "it holds no PEM certificate"
            raise TrustAnchorsError(f"SEQDREAM_C2PA_TRUST_ANCHORS={configured} cannot be used: {why}") from exc
        texts.append(text)
    own = local_ca(data_dir)
    if own.is_file():
        texts.append(own.read_text())
    return "".join(texts)
