"""Test inputs made when a test first uses them rather than when its module is collected: a
decompression bomb takes seconds to encode, which every test process would otherwise spend
collecting the module, whether or not it runs the case."""

from __future__ import annotations

import functools
from collections.abc import Callable


class Made:
    """A value made on first use, once per process."""

    def __init__(self, make: Callable[[], object]) -> None:
        self.get = functools.cache(make)


def made(value: object) -> object:
    """`value` with every Made inside it (in dicts, lists and tuples) made."""
    if isinstance(value, Made):
        return value.get()
    if isinstance(value, dict):
        return {key: made(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(made(item) for item in value)
    return value
