"""The id a worker and its process go by fits the jobs table's worker_id (64 characters), whatever the host."""

from __future__ import annotations

import socket

import pytest

from seqdream.jobs.presence import new_process_id


def test_a_process_id_fits_worker_id_on_a_host_with_a_long_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "pod-" + "x" * 250)  # an FQDN may be 253 characters
    made = new_process_id()
    assert len(made) <= 64 and made.startswith("pod-xxx") and made != new_process_id()
