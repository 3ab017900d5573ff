"""Example requests a model folder ships (`examples.json` beside `seqdream.json`), for the playground.

The built-in model ships prompts in its world's vocabulary and the reference images they edit;
a model without the file (a hub id, say) has no examples and the playground keeps its defaults.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from seqdream.api.deps import ServicesDep, base_url
from seqdream.api.envelope import APIError, success
from seqdream.builtin import resolve_model
from seqdream.locations import example_file_url, is_safe_name

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v3/examples", tags=["service"])

EXAMPLES_FILE = "examples.json"


@lru_cache(maxsize=8)
def load_examples(model: str) -> dict[str, Any]:
    """{"about": str, "grammar": str, "examples": [...]} from the model folder, or empty when it ships none."""
    path = Path(resolve_model(model)) / EXAMPLES_FILE
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        return {"about": "", "grammar": "", "examples": []}
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return {"about": "", "grammar": "", "examples": []}
    return {
        "about": str(payload.get("about", "")),
        "grammar": str(payload.get("grammar", "")),  # the prompt wordings the model was trained on
        "examples": list(payload.get("examples", [])),
    }


def example_file(model: str, name: str) -> Path | None:
    """The path of a reference image that one of the model's examples uses, else None."""
    listed = {image for example in load_examples(model)["examples"] for image in example.get("images", [])}
    if name not in listed or not is_safe_name(name):
        return None
    path = Path(resolve_model(model)) / "examples" / name
    return path if path.is_file() else None


@router.get("", summary="Example requests for the loaded model (used by the playground)")
async def list_examples(request: Request, services: ServicesDep) -> dict[str, Any]:
    model = services.settings.model
    found = load_examples(model)
    base = base_url(request)
    examples = [
        {**example, "images": [example_file_url(base, name) for name in example.get("images", [])]}
        for example in found["examples"]
    ]
    return success({"model": model, "about": found["about"], "grammar": found["grammar"], "examples": examples})


@router.get("/files/{name}", summary="A reference image used by an example")
async def get_example_file(name: str, services: ServicesDep) -> FileResponse:
    path = example_file(services.settings.model, name)
    if path is None:
        raise APIError(404, "example file not found")
    return FileResponse(path, media_type=mimetypes.guess_type(name)[0] or "application/octet-stream")
