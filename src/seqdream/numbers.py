"""Every number and date a user sends, parsed strictly and bounded in one place.

`str.isdigit()` accepts superscripts and other scripts' digits ("²", "٣") that `int()` then
refuses or reads differently, and Python's integers have no limit while the database's columns
do; so every number a client, an operator's command line or a setting sends goes through here:
ASCII digits only, a bounded length, and the quantity's own range checked before any arithmetic.
A bad value raises `BadValue`, whose message names the parameter and the form to use; the HTTP
layer answers it with a 400 and the command line with exit status 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_DIGITS = re.compile(r"[0-9]{1,18}")
_SIGNED = re.compile(r"[+-]?[0-9]{1,18}")
_TOO_LONG = re.compile(r"[+-]?[0-9]{19,}")  # digits, but past any quantity's range
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")

INT32_MAX = 2**31 - 1  # the widest integer column (PostgreSQL's INTEGER)


class BadValue(ValueError):
    """A user's value out of form or range; `str()` is a message safe to show."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def ascii_int(value: str | bytes | None) -> int | None:
    """The non-negative integer written in ASCII digits (surrounding blanks allowed), else None."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip(" \t")
    return int(text) if _DIGITS.fullmatch(text) else None


_SIZE = re.compile(r"\s*([0-9]{1,18})\s*([*xX])\s*([0-9]{1,18})\s*")


def size_pair(value: str, separators: str = "*") -> tuple[int, int] | None:
    """(width, height) of "2048*2048" (or "2048x2048" where `separators` has x), ASCII digits only; else None.
    The one reading of a size, for every dialect and setting; the ranges are the caller's to check."""
    match = _SIZE.fullmatch(value)
    if not match or match.group(2) not in separators:
        return None
    return int(match.group(1)), int(match.group(3))


def side_outside(width: int, height: int, low: int, high: int) -> str | None:
    """Why a size's side is out of [low, high] ("width 100000 is outside 1024-4096"), or None."""
    for name, side in (("width", width), ("height", height)):
        if not low <= side <= high:
            return f"{name} {side} is outside {low}-{high}"
    return None


def cut(value: str, most: int = 40) -> str:
    """A user's value as a message shows it: its first `most` characters (a value may be megabytes)."""
    return value[:most] + ("…" if len(value) > most else "")


def shown(value: str) -> str:
    """A user's value quoted in a message, cut to its first 40 characters."""
    return repr(cut(value))


@dataclass(frozen=True)
class Quantity:
    """A whole-number quantity a user sets: its name, range and what the range means."""

    name: str
    low: int
    high: int

    def parse(self, text: str, *, signed: bool = False) -> int:
        """`text` as a whole number in [low, high] (`signed`: a leading + or - is allowed)."""
        stripped = text.strip()
        if _TOO_LONG.fullmatch(stripped) and (signed or stripped[0].isdigit()):
            raise BadValue(self.name, f"{shown(text)} is outside {self._range}")
        if not (_SIGNED if signed else _DIGITS).fullmatch(stripped):
            form = "a whole number" + (" (+N or -N)" if signed else "")
            raise BadValue(self.name, f"{shown(text)} is not {form} written in digits 0-9")
        return self.check(int(stripped))

    @property
    def _range(self) -> str:
        return f"{self.low}-{self.high}" if self.low >= 0 else f"{self.low} to {self.high}"

    def check(self, value: int) -> int:
        if not self.low <= value <= self.high:
            raise BadValue(self.name, f"{value} is outside {self._range}")
        return value


CREDITS = Quantity("credits", 0, INT32_MAX)  # images a key may still make
RATE_PER_MIN = Quantity("rate", 0, 1_000_000)  # submits a minute (0: unlimited)
MAX_ACTIVE = Quantity("max-active", 0, 1_000_000)  # tasks queued or running at once (0: unlimited)
WEIGHT = (0.01, 100.0)  # a key's share of the workers


def top_up(balance: int | None, add: int) -> int:
    """The balance after adding `add` (which may be negative), refused below 0 or past CREDITS.high."""
    after = (balance or 0) + add
    if after < 0:
        raise BadValue("add-credits", f"the key has {balance or 0} credits; taking {-add} would leave {after}")
    if after > CREDITS.high:
        raise BadValue("add-credits", f"the balance would be {after}, past the most a key holds ({CREDITS.high})")
    return after


def parse_weight(text: str) -> float:
    low, high = WEIGHT
    try:
        weight = float(text.strip()) if re.fullmatch(r"[0-9]{1,4}(\.[0-9]{1,6})?", text.strip()) else None
    except ValueError:  # pragma: no cover - the pattern admits only what float() reads
        weight = None
    if weight is None or not low <= weight <= high:
        raise BadValue("weight", f"{shown(text)}: a weight is a number from {low:g} to {high:g}")
    return weight


# Days a user names: a strict YYYY-MM-DD (UTC), clamped to a range any date arithmetic stays inside.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 30)


def _named_day(text: str, name: str) -> date:
    """A YYYY-MM-DD day (UTC) in ASCII digits, nothing before or after it, as written."""
    match = _DAY.fullmatch(text.strip())
    try:
        day = date(*(int(part) for part in match.groups())) if match else None
    except ValueError:
        day = None
    if day is None:
        raise BadValue(name, f"{shown(text)} is not a day of the form YYYY-MM-DD (UTC)")
    return day


def _clamped(day: date) -> date:
    return min(max(day, FIRST_DAY), LAST_DAY)


def utc_day(text: str, name: str) -> date:
    """A YYYY-MM-DD day (UTC) in ASCII digits, nothing before or after it; clamped to FIRST_DAY-LAST_DAY."""
    return _clamped(_named_day(text, name))


def day_span(start: str | None, end: str | None, today: date, *, default_days: int, max_days: int) -> tuple[date, date]:
    """(first, last) days of a query, both included: `end` defaults to today, `start` to `default_days`
    before `end`; refused when `start` is after `end` or the span is longer than `max_days`. The checks
    and their messages use the days as written; the days returned are clamped."""
    last = _named_day(end, "to") if end is not None else today
    if start is not None:
        first = _named_day(start, "from")
    else:  # no earlier than year 1's first day, where date arithmetic ends
        first = last - timedelta(days=min(default_days - 1, (last - date.min).days))
    if first > last:
        raise BadValue("from", f"{first} is after to ({last})")
    if (last - first).days >= max_days:
        raise BadValue(
            "from", f"a query spans at most {max_days} days ({first} to {last} is {(last - first).days + 1})"
        )
    return _clamped(first), _clamped(last)
