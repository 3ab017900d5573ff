"""Signed C2PA manifests: written into each output, read back by `verify`.

A manifest says: made by `seqdream/<version>` (`claim_generator_info`), one `c2pa.created` action
whose digital source type is `trainedAlgorithmicMedia`, with the model id, the task id and the
image's place in its group as parameters, and the task's reference images as ingredients (their
hashes and formats; no thumbnails, so no pictures travel with the output).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import c2pa
from PIL import Image

from seqdream import __version__
from seqdream.provenance.credentials import SigningIdentity

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_ALGORITHMS = {name.lower(): member for name, member in c2pa.C2paSigningAlg.__members__.items()}


@dataclass(frozen=True)
class Ingredient:
    data: bytes  # the reference as it was received
    mime: str

    @classmethod
    def of(cls, data: bytes, image: Image.Image) -> Ingredient:
        """A reference as received and as decoded (its format names its type)."""
        return cls(data, Image.MIME.get(str(image.format), "application/octet-stream"))


class ContentCredentials:
    """Signs outputs with one identity (thread-safe: each call makes its own builder)."""

    def __init__(self, identity: SigningIdentity) -> None:
        algorithm = _ALGORITHMS.get(identity.algorithm.lower())
        if algorithm is None:
            raise ValueError(f"C2PA signing algorithm {identity.algorithm!r} is not one of {sorted(_ALGORITHMS)}")
        self.identity = identity
        self._signer_info = c2pa.C2paSignerInfo(algorithm, identity.chain, identity.key, None)
        self._context = c2pa.Context(c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}}))
        self.sign(_probe(), "png", model="probe", task_id="probe", index=0, ingredients=[])  # fails now, not per task

    def sign(
        self, data: bytes, fmt: str, *, model: str, task_id: str, index: int, ingredients: list[Ingredient]
    ) -> bytes:
        try:
            return self._sign(data, fmt, model, task_id, index, ingredients, as_hashes=False)
        except c2pa.C2paError:
            if not ingredients:
                raise
            # A reference the c2pa library cannot parse as an ingredient: name them all by hash instead.
            return self._sign(data, fmt, model, task_id, index, ingredients, as_hashes=True)

    def _sign(
        self,
        data: bytes,
        fmt: str,
        model: str,
        task_id: str,
        index: int,
        ingredients: list[Ingredient],
        as_hashes: bool,
    ) -> bytes:
        mime = MIME[fmt]
        action = {
            "action": "c2pa.created",
            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "softwareAgent": {"name": "seqdream", "version": __version__},
            "parameters": {"model": model, "task_id": task_id, "image_index": index},
        }
        assertions: list[dict[str, Any]] = [{"label": "c2pa.actions", "data": {"actions": [action]}}]
        if as_hashes and ingredients:
            references = [
                {"title": f"images[{number}]", "format": item.mime, "sha256": hashlib.sha256(item.data).hexdigest()}
                for number, item in enumerate(ingredients)
            ]
            assertions.append({"label": "org.seqdream.references", "data": {"references": references}})
        manifest = {
            "claim_generator_info": [{"name": "seqdream", "version": __version__}],
            "title": f"{task_id}-{index}.{fmt}",
            "format": mime,
            "assertions": assertions,
        }
        with (
            c2pa.Signer.from_info(self._signer_info) as signer,
            c2pa.Builder(manifest, context=self._context) as builder,
        ):
            for number, ingredient in enumerate([] if as_hashes else ingredients):
                builder.add_ingredient(
                    {"title": f"images[{number}]", "relationship": "inputTo"},
                    ingredient.mime,
                    io.BytesIO(ingredient.data),
                )
            out = io.BytesIO()
            builder.sign(signer, mime, io.BytesIO(data), out)
        return out.getvalue()


def _probe() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class ManifestReport:
    present: bool
    valid: bool = False  # the signature and hashes check out (whoever signed)
    trusted: bool = False  # ... and the signer chains to a trust anchor
    state: str | None = None  # c2pa's: Invalid, Valid or Trusted
    failures: tuple[str, ...] = ()  # c2pa's failure codes (signingCredential.untrusted, ...)
    claim_generator: str | None = None
    actions: tuple[dict[str, Any], ...] = ()
    ingredients: tuple[dict[str, Any], ...] = ()
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "present": self.present, "valid": self.valid, "trusted": self.trusted, "state": self.state,
            "failures": list(self.failures), "claim_generator": self.claim_generator, "actions": list(self.actions),
            "ingredients": list(self.ingredients), **({"error": self.error} if self.error else {}),
        }  # fmt: skip


def read_manifest(data: bytes, mime: str, anchors: str) -> ManifestReport:
    """What the c2pa library reads in the bytes, validated against the trust anchors given (PEM)."""
    settings: dict[str, Any] = {"verify": {"verify_trust": bool(anchors)}}
    if anchors:
        settings["trust"] = {"trust_anchors": anchors}
    try:
        with c2pa.Context(c2pa.Settings.from_dict(settings)) as context:
            reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=context)
            if reader is None:
                return ManifestReport(present=False)
            with reader:
                active = reader.get_active_manifest() or {}
                state = reader.get_validation_state()
                results = reader.get_validation_results() or {}
    except c2pa.C2paError as exc:
        return ManifestReport(present=True, error=f"{type(exc).__name__}: {exc}")
    failures = tuple(item.get("code", "") for item in (results.get("activeManifest") or {}).get("failure", []))
    actions: list[dict[str, Any]] = []
    for assertion in active.get("assertions", []):
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            actions += assertion.get("data", {}).get("actions", [])
    generator: dict[str, Any] = next(iter(active.get("claim_generator_info") or []), {})
    untrusted_only = set(failures) <= {"signingCredential.untrusted"}
    return ManifestReport(
        present=True,
        valid=state in ("Valid", "Trusted") or (bool(failures) and untrusted_only),
        trusted=state == "Trusted",
        state=state,
        failures=failures,
        claim_generator=f"{generator.get('name', '?')}/{generator.get('version', '?')}" if generator else None,
        actions=tuple(actions),
        ingredients=tuple(
            {key: item.get(key) for key in ("title", "format", "relationship")}
            for item in active.get("ingredients", [])
        ),
    )
