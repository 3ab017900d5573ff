"""A full disk, made on purpose."""

from __future__ import annotations

from pathlib import Path


def fill(disk: Path) -> Path:
    """Write a file until the disk refuses (ENOSPC); returns it, to remove when space should come back."""
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 256 * 1024)
                handle.flush()
        except OSError:
            pass
    return filler
