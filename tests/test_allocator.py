"""The allocator setting the CLI applies: taken by glibc, harmless elsewhere."""

from __future__ import annotations

import platform

import pytest

from seqdream.cpu.allocator import keep_large_buffers


@pytest.mark.slow
def test_large_buffers_are_kept_on_glibc() -> None:
    taken = keep_large_buffers()
    assert taken == (platform.libc_ver()[0] == "glibc")
