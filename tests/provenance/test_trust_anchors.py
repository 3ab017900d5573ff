"""SEQDREAM_C2PA_TRUST_ANCHORS: a file that cannot be used is said at once, by name, never ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqdream.provenance.credentials import local, local_ca
from seqdream.provenance.verify import TrustAnchorsError, trust_anchors
from support.servers import TEST_ENV, cli_in_process


def test_the_configured_anchors_and_the_services_own_ca_are_trusted(tmp_path: Path) -> None:
    theirs, ours = local(tmp_path / "operator", "acme"), local(tmp_path / "data", "seqdream")
    pem = trust_anchors(theirs.local_ca, tmp_path / "data")
    assert theirs.local_ca.read_text() in pem and local_ca(tmp_path / "data").read_text() in pem
    assert ours.local_ca == local_ca(tmp_path / "data")
    assert trust_anchors(None, tmp_path / "nothing yet") == ""  # no anchors: nothing is trusted, no error


def _unusable(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "garbage.pem").write_text("not a certificate")
    (tmp_path / "empty.pem").write_text("")
    (tmp_path / "binary.pem").write_bytes(bytes(range(256)))
    (tmp_path / "a-folder").mkdir()
    return {
        "missing": (tmp_path / "missing.pem", "No such file or directory"),
        "folder": (tmp_path / "a-folder", "Is a directory"),
        "garbage": (tmp_path / "garbage.pem", "it holds no PEM certificate"),
        "empty": (tmp_path / "empty.pem", "it holds no PEM certificate"),
        "binary": (tmp_path / "binary.pem", "it holds no PEM certificate"),
    }


def test_a_file_that_cannot_be_used_is_an_error_naming_the_setting(tmp_path: Path) -> None:
    for path, why in _unusable(tmp_path).values():
        with pytest.raises(TrustAnchorsError, match=f"SEQDREAM_C2PA_TRUST_ANCHORS={path} cannot be used: {why}"):
            trust_anchors(path, tmp_path / "data")


@pytest.mark.parametrize("command", [("verify", "any.png"), ("serve",)])
def test_serve_and_verify_stop_on_anchors_that_cannot_be_used(
    tiny_model: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    (tmp_path / "a-file").write_text("")
    for path, why in _unusable(tmp_path).values():
        # A data folder that cannot be made: a start that went past the anchors stops there instead.
        env = {**TEST_ENV, "SEQDREAM_MODEL": str(tiny_model), "SEQDREAM_DATA_DIR": str(tmp_path / "a-file" / "data"),
               "SEQDREAM_C2PA_TRUST_ANCHORS": str(path)}  # fmt: skip
        result = cli_in_process(env, *command)
        assert result.returncode == 2 and why in result.stderr, result.stderr
