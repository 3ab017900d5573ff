"""Every number and date a user sends is parsed strictly and bounded in one place (seqdream.numbers)."""

from __future__ import annotations

from datetime import date

import pytest

from seqdream.numbers import (
    CREDITS,
    FIRST_DAY,
    LAST_DAY,
    MAX_ACTIVE,
    RATE_PER_MIN,
    BadValue,
    day_span,
    parse_weight,
    top_up,
    utc_day,
)

# The class of values every numeric option is tried with: none may get past with a wrong meaning.
NOT_WHOLE_NUMBERS = ["", " ", "-1", "1.5", "1e3", "0x10", "٣", "²", "１２", "12a", "9" * 20, "NaN", "+"]


@pytest.mark.parametrize("quantity", [CREDITS, RATE_PER_MIN, MAX_ACTIVE], ids=lambda q: q.name)
@pytest.mark.parametrize("text", NOT_WHOLE_NUMBERS)
def test_quantities_refuse_anything_but_ascii_whole_numbers_in_range(quantity, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadValue) as refused:
        quantity.parse(text)
    assert str(refused.value).startswith(f"{quantity.name}: ")


@pytest.mark.parametrize("quantity", [CREDITS, RATE_PER_MIN, MAX_ACTIVE], ids=lambda q: q.name)
def test_quantities_take_their_whole_range_and_nothing_past_it(quantity) -> None:  # type: ignore[no-untyped-def]
    assert quantity.parse("0") == 0 and quantity.parse(f" {quantity.high} ") == quantity.high
    with pytest.raises(BadValue, match="outside"):
        quantity.parse(str(quantity.high + 1))
    assert CREDITS.high == 2**31 - 1  # PostgreSQL's INTEGER column holds it


def test_signed_values_and_top_ups_stay_integers_between_zero_and_the_maximum() -> None:
    with pytest.raises(BadValue, match="outside"):  # signed forms are read, then bounded like any other
        CREDITS.parse("-5", signed=True)
    assert top_up(4, 3) == 7 and top_up(None, 5) == 5 and top_up(4, -4) == 0
    with pytest.raises(BadValue, match="would leave -96"):
        top_up(4, -100)
    with pytest.raises(BadValue, match="past the most a key holds"):
        top_up(CREDITS.high, 1)
    assert isinstance(top_up(CREDITS.high - 1, 1), int)


@pytest.mark.parametrize("text", ["0", "-1", "101", "1e2", "inf", "nan", "٣", "", "0.001"])
def test_weights_refuse_what_is_not_a_plain_number_in_range(text: str) -> None:
    with pytest.raises(BadValue, match="weight"):
        parse_weight(text)
    assert parse_weight("0.01") == 0.01 and parse_weight("100") == 100.0


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01' OR '1'='1",  # only the first 10 characters used to be read
        "2026-12-01T23:00:00-05:00",  # a moment on another day in UTC
        "2026-12-01 ",
        "2026-13-01",
        "2026-02-30",
        "26-12-01",
        "２０２６-12-01",
        "last tuesday",
        "",
        "12/01/2026",
    ],
)
def test_days_are_strict_yyyy_mm_dd(text: str) -> None:
    if text.strip() == "2026-12-01":
        assert utc_day(text, "from") == date(2026, 12, 1)  # surrounding blanks are forgiven
        return
    with pytest.raises(BadValue, match="^from: .*YYYY-MM-DD"):
        utc_day(text, "from")


def test_day_spans_at_the_calendars_ends_are_clamped_before_any_arithmetic() -> None:
    today = date(2026, 12, 6)
    assert day_span(None, "9999-12-31", today, default_days=30, max_days=366) == (date(9999, 12, 1), LAST_DAY)
    assert day_span(None, "0001-01-01", today, default_days=30, max_days=366) == (FIRST_DAY, FIRST_DAY)
    assert day_span("0001-01-01", "0001-01-02", today, default_days=30, max_days=366) == (FIRST_DAY, FIRST_DAY)
    assert day_span(None, None, today, default_days=30, max_days=366) == (date(2026, 11, 7), today)
    with pytest.raises(BadValue, match="after"):
        day_span("2026-12-02", "2026-12-01", today, default_days=30, max_days=366)
    with pytest.raises(BadValue, match="at most 366 days"):
        day_span("0001-01-01", "9999-12-31", today, default_days=30, max_days=366)
