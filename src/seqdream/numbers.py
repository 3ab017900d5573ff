"""Strict number parsing for untrusted text: ASCII digits only.

`str.isdigit()` accepts superscripts and other scripts' digits ("²", "٣") that `int()` then
refuses or reads differently; every number a client sends goes through here instead.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,18}")


def ascii_int(value: str | bytes | None) -> int | None:
    """The non-negative integer written in ASCII digits (surrounding blanks allowed), else None."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip(" \t")
    return int(text) if _DIGITS.fullmatch(text) else None
