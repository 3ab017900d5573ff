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
    for digits in ("9" * 19, "1" + "0" * 4000, "-" + "9" * 30):  # past int64, past int()'s digit limit
        with pytest.raises(BadValue, match=f"is outside {quantity.low}-{quantity.high}$"):
            quantity.parse(digits, signed=True)  # a number too big is named so, not "not a whole number"
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
    assert day_span(None, "9999-12-31", today, default_days=30, max_days=366) == (date(9999, 12, 2), LAST_DAY)
    assert day_span(None, "0001-01-01", today, default_days=30, max_days=366) == (FIRST_DAY, FIRST_DAY)
    assert day_span("0001-01-01", "0001-01-02", today, default_days=30, max_days=366) == (FIRST_DAY, FIRST_DAY)
    assert day_span(None, None, today, default_days=30, max_days=366) == (date(2026, 11, 7), today)
    with pytest.raises(BadValue, match="after"):
        day_span("2026-12-02", "2026-12-01", today, default_days=30, max_days=366)
    # the message names the days as they were written, not as clamped
    with pytest.raises(BadValue, match=r"at most 366 days \(0001-01-01 to 9999-12-31 is 3652059\)"):
        day_span("0001-01-01", "9999-12-31", today, default_days=30, max_days=366)
    with pytest.raises(BadValue, match=r"0001-01-02 is after to \(0001-01-01\)"):
        day_span("0001-01-02", "0001-01-01", today, default_days=30, max_days=366)
    assert day_span(None, "0001-01-05", today, default_days=30, max_days=366) == (FIRST_DAY, FIRST_DAY)


# Every number an HTTP route takes, each sent at the class's edges: 200 or a 400 that names the field.
# (route, field, other fields, the field's range, whether the route waits for the images)
NUMERIC_FIELDS = [
    ("/api/v3/bytedance/seedream-v4", "seed", {"prompt": "p"}, (-1, 2**31 - 1), False),
    ("/api/v3/bytedance/seedream-v4/sequential", "max_images", {"prompt": "p"}, (1, 14), False),
    ("/api/v3/images/generations", "seed", {"model": "seedream-4-0-250828", "prompt": "p"}, (-1, 2**31 - 1), True),
    ("/v1/images/generations", "n", {"prompt": "p"}, (1, 14), True),
    ("/v1/images/generations", "output_compression", {"prompt": "p", "output_format": "jpeg"}, (0, 100), True),
]
EDGE_VALUES = [0, -1, -2, 2**31 - 1, 2**31, 2**63, 10**20, 1.5, "٣", "", None, "12", True]


@pytest.mark.parametrize(("path", "field", "base", "bounds", "waits"), NUMERIC_FIELDS, ids=lambda v: str(v)[:40])
def test_numeric_fields_at_their_edges_answer_200_or_a_400_naming_them(
    app_client, path, field, base, bounds, waits
) -> None:  # type: ignore[no-untyped-def]
    low, high = bounds
    for value in EDGE_VALUES:
        valid = type(value) is int and low <= value <= high
        if (valid or value is None) and waits:  # Ark reads null as "the default"
            continue  # a route that waits for its images would wait for a worker this app does not have
        answer = app_client.post(path, json={**base, field: value})
        expected = (200, 400) if value is None else ((200,) if valid else (400,))
        assert answer.status_code in expected, (field, value, answer.status_code, answer.text)
        if answer.status_code == 400:
            body = answer.json()
            message = body.get("message") or body.get("error", {}).get("message", "")
            assert field in message, (field, value, message)


@pytest.mark.parametrize("param", ["page", "page_size"])
def test_listing_pages_at_their_edges_answer_200_or_a_400_naming_them(app_client, param: str) -> None:  # type: ignore[no-untyped-def]
    for value in ["0", "-1", "1", "100", "101", "9" * 20, "1.5", "٣", "", "1e3"]:
        answer = app_client.get("/api/v3/predictions", params={param: value})
        assert answer.status_code in (200, 400), (param, value, answer.text)
        if answer.status_code == 400:
            assert param in answer.json()["message"], answer.text


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "2026-12-01' OR '1'='1", "٢٠٢٦-١٢-٠١", "", "x" * 5000])
def test_usage_days_in_process_answer_200_or_400(app_client, value: str) -> None:  # type: ignore[no-untyped-def]
    for param in ("from", "to"):
        answer = app_client.get("/api/v3/usage", params={param: value})
        assert answer.status_code in (200, 400), (param, value, answer.text)
        if answer.status_code == 400:
            assert answer.json()["message"].startswith(("from: ", "to: ")), answer.text


def test_one_size_reading_for_every_dialect_and_setting() -> None:
    from seqdream.numbers import size_pair

    assert size_pair("2048*1024") == (2048, 1024) and size_pair(" 64 * 64 ") == (64, 64)
    assert size_pair("2048x2048") is None and size_pair("2048x2048", separators="xX*") == (2048, 2048)
    for bad in ("", "2048", "2048*", "２０４８*2048", "2048*2048*2", "-1*5", "1" * 19 + "*1", "1.5*2"):
        assert size_pair(bad, separators="xX*") is None, bad
    # a side of up to 18 digits is read, so that its range is what a message speaks of, not its form
    assert size_pair("123456*1") == (123456, 1) and size_pair("1*" + "9" * 18) == (1, 10**18 - 1)


def test_a_side_out_of_range_is_named() -> None:
    from seqdream.numbers import side_outside

    assert side_outside(1024, 4096, 1024, 4096) is None
    assert side_outside(100000, 2048, 1024, 4096) == "width 100000 is outside 1024-4096"
    assert side_outside(2048, 1023, 1024, 4096) == "height 1023 is outside 1024-4096"
