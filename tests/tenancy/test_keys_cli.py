"""`seqdream keys create/update/list` with limits, as an operator runs them; and every command that
opens the database closes it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.servers import TEST_ENV, cli_in_process


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it, in this process (it only reads and writes the database)."""
    return cli_in_process({**TEST_ENV, "SEQDREAM_DATA_DIR": str(data_dir)}, *args)


def test_limits_are_set_shown_and_changed(tmp_path: Path) -> None:
    created = cli(tmp_path, "keys", "create", "--name", "team-a", "--rate", "2/s", "--max-active", "20",
                  "--credits", "100", "--weight", "2")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("sqd_")
    assert "rate 120/min, active 20, credits 100, weight 2" in created.stderr
    prefix = created.stdout.strip()[:10]

    listed = cli(tmp_path, "keys", "list").stdout
    assert "team-a" in listed and "rate 120/min, active 20, credits 100, weight 2" in listed

    updated = cli(tmp_path, "keys", "update", prefix, "--rate", "default", "--max-active", "unlimited",
                  "--add-credits", "5")  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    assert "rate 600/min (default), active unlimited, credits 105, weight 2" in updated.stdout
    metered_off = cli(tmp_path, "keys", "update", prefix, "--credits", "unmetered", "--rate", "600/h")
    assert "rate 10/min, active unlimited, credits unmetered" in metered_off.stdout


def test_bad_limits_are_refused_with_the_form_to_use(tmp_path: Path) -> None:
    for option, value, hint in [
        ("--rate", "fast", "N/min, N/s or N/h"),
        ("--max-active", "-3", "not a whole number"),
        ("--weight", "0", "from 0.01 to 100"),
        ("--credits", "lots", "'unmetered'"),
    ]:
        result = cli(tmp_path, "keys", "create", option, value)
        assert result.returncode == 2 and hint in result.stderr, (option, result.stderr)
    assert cli(tmp_path, "keys", "update", "sqd_nothing", "--rate", "5").returncode == 1


def test_a_rate_is_kept_exactly_or_refused_with_the_nearest_it_can_be(tmp_path: Path) -> None:
    """A key's rate is whole submits a minute: a finer one was rounded up (1/h became 1/min, sixty
    times what was asked) and '0/min' became 1/min; now each is refused with what to write."""
    for value, hint in [
        ("0/min", "would refuse every submit; for no limit write 'unlimited'"),
        ("0/h", "would refuse every submit"),
        ("90/h", "'90/h' is 1.5 a minute; a key's rate is whole submits a minute: write 1/min or 2/min"),
        ("1/h", "write 1/min"),
        ("20000/s", "'20000/s' is 1200000 a minute; the most is 1000000/min"),
        ("9" * 30, "is outside 0-60000000"),
        ("5/day", "N/min, N/s or N/h"),
    ]:
        result = cli(tmp_path, "keys", "create", "--rate", value)
        assert result.returncode == 2 and hint in " ".join(result.stderr.split()), (value, result.stderr)
    for value, shown in [("600/h", "rate 10/min"), ("60000000/h", "rate 1000000/min"), ("0", "rate unlimited"),
                         ("unlimited", "rate unlimited"), ("2/s", "rate 120/min"), ("7", "rate 7/min")]:  # fmt: skip
        result = cli(tmp_path, "keys", "create", "--rate", value)
        assert result.returncode == 0 and shown + "," in result.stderr, (value, result.stderr)


def test_every_command_that_opens_the_database_leaves_it_in_one_file(tmp_path: Path) -> None:
    """A command closes every connection it opened, so SQLite folds its write-ahead log back into
    seqdream.db: a copy of that one file is the whole database, and nothing of the command stays open."""
    secret = cli(tmp_path, "keys", "create", "--name", "ops").stdout.strip()
    commands = [
        ("keys", "list"), ("keys", "update", "ops", "--rate", "5/min"), ("keys", "revoke", secret[:10]),
        ("usage",), ("db", "current"), ("db", "upgrade"), ("watch", "no-such-task"),
    ]  # fmt: skip
    assert not list(tmp_path.glob("seqdream.db-*")), "keys create"
    for command in commands:
        result = cli(tmp_path, *command)
        assert result.returncode in (0, 2), (command, result.stderr)  # watch: 2, no such task
        assert not list(tmp_path.glob("seqdream.db-*")), command


def test_a_key_name_fits_its_column_on_every_database(tmp_path: Path) -> None:
    """128 characters (PostgreSQL refuses more; SQLite would have kept 5000), and not blank."""
    for name in ("x" * 129, "x" * 5000, "   ", ""):
        result = cli(tmp_path, "keys", "create", "--name", name)
        assert result.returncode == 2 and "1 to 128 characters" in result.stderr, result.stderr
    assert cli(tmp_path, "keys", "create", "--name", "é" * 128).returncode == 0
    listed = cli(tmp_path, "keys", "list").stdout
    assert "é" * 128 in listed and "x" * 129 not in listed
