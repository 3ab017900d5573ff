"""Settings at their limits: every number finite and bounded, every URL and network one that parses,
each refusal naming the setting and why (`seqdream serve` prints it and exits 2)."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from seqdream.config import Settings
from support.servers import TEST_ENV, cli_in_process


def _fields_of(kind: type) -> list[str]:
    return [
        name
        for name, field in Settings.model_fields.items()
        if kind in (field.annotation, *typing.get_args(field.annotation))
    ]


FLOATS, INTS = _fields_of(float), _fields_of(int)


def _refusal(**values: object) -> str:
    with pytest.raises(ValidationError) as refused:
        Settings(**values)  # type: ignore[arg-type]
    return str(refused.value)


@pytest.mark.parametrize("name", FLOATS)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400"])
def test_every_float_setting_refuses_what_is_not_a_finite_number(name: str, value: str) -> None:
    message = _refusal(**{name: value})
    assert name in message and "finite number" in message, message


@pytest.mark.parametrize("name", FLOATS + INTS)
def test_every_number_setting_has_an_upper_bound(name: str) -> None:
    """A duration, count or size too large for the timers, clocks and columns that take it is refused
    (an infinite retention made every housekeeping sweep raise; an infinite poll killed the worker)."""
    message = _refusal(**{name: 10**20})
    assert name in message and "less than or equal" in message, message


def test_the_number_settings_are_all_found() -> None:
    assert {"retention_hours", "job_lease_s", "poll_interval_s", "guidance_scale"} <= set(FLOATS)
    assert {"port", "job_max_attempts", "key_rate_per_min", "max_image_pixels"} <= set(INTS)


@pytest.mark.parametrize(
    "name,value,words",
    [
        ("port", "65536", ["65535"]),
        ("log_level", "verbose", ["critical", "debug"]),
        ("fetch_allow_networks", "10.0.0.0/33", ["10.0.0.0/33"]),
        ("fetch_allow_networks", "10.0.0.0/8, nonsense", ["nonsense"]),
        ("public_base_url", "http://[::1", ["not a valid URL"]),
        ("public_base_url", "ftp://example.com", ["http(s)"]),
        ("public_base_url", "https://example.com:99999/", ["not a valid URL"]),
        ("s3_endpoint_url", "localhost:9000", ["http(s)"]),
        ("database_url", "postgresql://user@[::1/db", ["not a database URL"]),
        ("database_url", "nonsense", ["not a database URL"]),
        ("storage_url", "s3://[::1/blobs", ["s3://bucket/prefix"]),
        ("storage_url", "s3://", ["s3://bucket/prefix"]),
        ("storage_url", "gs://bucket", ["s3://bucket/prefix"]),
    ],
)
def test_malformed_settings_are_refused_saying_why(name: str, value: str, words: list[str]) -> None:
    message = _refusal(**{name: value})
    assert name in message and all(word in message for word in words), message


def test_well_formed_settings_pass() -> None:
    settings = Settings(
        log_level="DEBUG", public_base_url="https://example.com/sd", s3_endpoint_url="http://[::1]:9000",
        database_url="postgresql+psycopg://u:p@[::1]:5432/db", storage_url="s3://bucket/prefix",
        fetch_allow_networks="10.0.0.0/8, fd00::/8", port=0, retention_hours=24 * 365,
    )  # fmt: skip
    assert settings.log_level == "debug" and len(settings.allowed_networks) == 2


@pytest.mark.parametrize("setting", ["SEQDREAM_RETENTION_HOURS=inf", "SEQDREAM_STORAGE_URL=s3://[::1/x"])
@pytest.mark.parametrize("command", [["keys", "list"], ["keys", "create"], ["usage"], ["db", "upgrade"]])
def test_every_command_reports_a_bad_setting_by_name_and_exits_2(
    setting: str, command: list[str], tmp_path: Path
) -> None:
    """The same check as `serve` (which starts a server when the settings are good, so the short
    commands stand for it here): the setting's name and the reason, no traceback."""
    name, value = setting.split("=", 1)
    result = cli_in_process({**TEST_ENV, "SEQDREAM_DATA_DIR": str(tmp_path), name: value}, *command)
    field = name.removeprefix("SEQDREAM_").lower()
    assert result.returncode == 2 and f"invalid setting: {field} ({name}): " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Value error" not in result.stderr
