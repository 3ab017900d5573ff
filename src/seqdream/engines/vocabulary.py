"""The words a model declares it knows (its folder's seqdream.json, `vocabulary`), and the words of a
prompt outside them: a task still runs, and its result names them (`warnings`), so a user who asks the
built-in model for "a photo of a cat" learns why the picture shows shapes."""

from __future__ import annotations

import re
from functools import lru_cache

from seqdream.builtin import resolve_model
from seqdream.engines.model_folder import model_defaults

_WORD = re.compile(r"[a-z0-9]+")  # "4k" is one word; "4" alone is a number, not a word


@lru_cache(maxsize=8)
def declared_vocabulary(model: str) -> frozenset[str] | None:
    """The words the model setting's folder declares, or None when it declares none (any real model)."""
    try:
        words = model_defaults(resolve_model(model)).get("vocabulary")
    except Exception:  # noqa: BLE001 - a folder that cannot be read declares nothing (the engine says why)
        return None
    return frozenset(str(word).lower() for word in words) if isinstance(words, list) else None


def unknown_words(prompt: str, vocabulary: frozenset[str] | None) -> list[str]:
    """The prompt's words (letters only; numbers and punctuation are not words) outside `vocabulary`,
    each once, in the order they come."""
    if not vocabulary:
        return []
    words = (word for word in _WORD.findall(prompt.lower()) if not word.isdigit())
    return list(dict.fromkeys(word for word in words if word not in vocabulary))


def vocabulary_warning(prompt: str, vocabulary: frozenset[str] | None) -> list[str]:
    """The result's `warnings` for a prompt: empty, or one sentence naming the unknown words."""
    unknown = unknown_words(prompt, vocabulary)
    if not unknown:
        return []
    shown = ", ".join(f'"{word}"' for word in unknown[:10]) + (" …" if len(unknown) > 10 else "")
    return [
        f"the model does not know the word(s) {shown}: it draws only what its vocabulary names "
        "(see GET /api/v3/examples for the wordings it understands)"
    ]
