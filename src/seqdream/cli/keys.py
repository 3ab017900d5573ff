"""`seqdream keys create | update | list | revoke`, with the limits an operator sets per key."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import typer

from seqdream.cli.common import open_keys, parsed, read_settings
from seqdream.config import Settings
from seqdream.numbers import CREDITS, MAX_ACTIVE, RATE_PER_MIN, BadValue, Quantity, parse_weight

keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True, rich_markup_mode=None)

_UNSET = "keep"  # an option left out of `keys update`
_RATE_COUNT = Quantity("rate", 0, RATE_PER_MIN.high * 60)  # the N of N/h that can reach the per-minute most


def _rate(value: str) -> int | None:
    """'60/min', '2/s', '600/h' or '60' (per minute) to submits per minute; 'default': the service's;
    '0' or 'unlimited': no limit. A key's rate is whole submits a minute: '90/h' is refused with the
    nearest two, not rounded, and '0/min' (no submits at all) points to 'unlimited' and to revoking."""
    text = value.strip().lower().replace(" ", "")
    if text == "default":
        return None
    if text in ("0", "unlimited"):
        return 0
    number, _, unit = text.partition("/")
    minute, second, hour = Fraction(1), Fraction(60), Fraction(1, 60)  # exact: 600/h is 10/min, no more
    per = {"": minute, "m": minute, "min": minute, "minute": minute, "s": second, "sec": second, "second": second}
    per |= {"h": hour, "hour": hour}
    form = "write it as N/min, N/s or N/h (or 'default', 'unlimited')"
    try:
        count = _RATE_COUNT.parse(number) if unit in per else None
    except BadValue as exc:
        raise typer.BadParameter(f"{exc}; {form}") from None
    if count is None:
        raise typer.BadParameter(f"rate: {value!r}: {form}")
    if count == 0:
        raise typer.BadParameter(
            f"rate: {value!r} would refuse every submit; for no limit write 'unlimited', and to stop a key, revoke it"
        )
    per_minute = count * per[unit]
    if per_minute.denominator != 1:
        low, high = math.floor(per_minute), math.ceil(per_minute)
        nearest = f"{high}/min" if low == 0 else f"{low}/min or {high}/min"
        raise typer.BadParameter(
            f"rate: {value!r} is {float(per_minute):.3g} a minute; a key's rate is whole submits a minute: "
            f"write {nearest}"
        )
    if per_minute > RATE_PER_MIN.high:
        raise typer.BadParameter(f"rate: {value!r} is {per_minute} a minute; the most is {RATE_PER_MIN.high}/min")
    return int(per_minute)


def _count(value: str, quantity: Quantity, none_word: str) -> int | None:
    text = value.strip().lower()
    if text == none_word:
        return None
    if text == "unlimited" and quantity is MAX_ACTIVE:
        return 0
    try:
        return quantity.parse(value)
    except BadValue as exc:
        words = f"'{none_word}'" + (" or 'unlimited'" if quantity is MAX_ACTIVE else "")
        raise typer.BadParameter(f"{exc} (or {words})") from None


def _limits(rate: str, max_active: str, credits: str, weight: str) -> dict[str, int | float | None]:
    limits: dict[str, int | float | None] = {}
    if rate != _UNSET:
        limits["rate_per_min"] = _rate(rate)
    if max_active != _UNSET:
        limits["max_active"] = _count(max_active, MAX_ACTIVE, "default")
    if credits != _UNSET:
        limits["credits"] = _count(credits, CREDITS, "unmetered")
    if weight != _UNSET:
        limits["weight"] = None if weight.strip().lower() == "default" else parsed(parse_weight, weight)
    return limits


_RATE_HELP = "Submits a minute: N/min, N/s, N/h, 'unlimited' (or 0) or 'default' (SEQDREAM_KEY_RATE_PER_MIN)."
_ACTIVE_HELP = "Tasks queued or running at once: N, 'unlimited' (or 0) or 'default' (SEQDREAM_KEY_MAX_ACTIVE)."
_CREDITS_HELP = "Images the key may still make (each image one credit), or 'unmetered'."
_WEIGHT_HELP = "Share of the workers when keys compete (default 1; 2 gets twice the turns)."


def _describe(key: Any, settings: Settings) -> str:
    def limit(own: int | None, default: int, unit: str = "") -> str:
        value = default if own is None else own
        text = "unlimited" if value == 0 else f"{value}{unit}"
        return text + (" (default)" if own is None else "")

    credits = "unmetered" if key.credits is None else str(key.credits)
    return (
        f"rate {limit(key.rate_per_min, settings.key_rate_per_min, '/min')}, "
        f"active {limit(key.max_active, settings.key_max_active)}, credits {credits}, weight {key.weight or 1:g}"
    )


@keys_app.command("create")
def keys_create(
    name: str = typer.Option("default", metavar="NAME", help="A label to recognise the key by."),
    rate: str = typer.Option(_UNSET, metavar="RATE", help=_RATE_HELP, show_default=False),
    max_active: str = typer.Option(_UNSET, metavar="N", help=_ACTIVE_HELP, show_default=False),
    credits: str = typer.Option(_UNSET, metavar="N", help=_CREDITS_HELP, show_default=False),
    weight: str = typer.Option(_UNSET, metavar="W", help=_WEIGHT_HELP, show_default=False),
) -> None:
    """Create an API key and print it (it is shown only once)."""
    settings = read_settings()
    with open_keys(settings) as keys:
        created = parsed(keys.create, name, **_limits(rate, max_active, credits, weight))
        key = keys.find(created.id)
    typer.echo(created.secret)
    typer.echo(f"created key {created.id} ({name}; {_describe(key, settings)}); store it now, it cannot be shown again",
               err=True)  # fmt: skip


@keys_app.command("update")
def keys_update(
    key: str = typer.Argument(..., metavar="KEY", help="Key id, prefix or name from 'seqdream keys list'"),
    rate: str = typer.Option(_UNSET, metavar="RATE", help=_RATE_HELP, show_default=False),
    max_active: str = typer.Option(_UNSET, metavar="N", help=_ACTIVE_HELP, show_default=False),
    credits: str = typer.Option(_UNSET, metavar="N", help=_CREDITS_HELP, show_default=False),
    add_credits: str = typer.Option(
        "0", metavar="N", help="Add N credits (a top-up; -N takes some back; an unmetered key starts at 0)."
    ),
    weight: str = typer.Option(_UNSET, metavar="W", help=_WEIGHT_HELP, show_default=False),
) -> None:
    """Change a key's limits, credits or weight; they apply to the next submit, in every process."""
    settings = read_settings()
    limits = _limits(rate, max_active, credits, weight)
    added = parsed(Quantity("add-credits", -CREDITS.high, CREDITS.high).parse, add_credits, signed=True)
    try:
        with open_keys(settings) as keys:
            found = keys.update_limits(key, add_credits=added, **limits)
    except BadValue as exc:
        typer.echo(f"not changed: {exc}", err=True)
        raise typer.Exit(1) from None
    if found is None:
        typer.echo(f"no key matches {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{found.id}  {found.name}: {_describe(found, settings)}")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefix, name, created, revoked, limits)."""
    settings = read_settings()
    with open_keys(settings) as keys:
        listed = keys.list()
    for key in listed:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.prefix}…  {key.name:<20} created {key.created_at:%Y-%m-%d %H:%M}  {state}  "
                   f"{_describe(key, settings)}")  # fmt: skip


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., metavar="KEY", help="Key id or prefix from 'seqdream keys list'"),
) -> None:
    """Revoke a key: requests using it get 401 from then on."""
    with open_keys(read_settings()) as keys:
        revoked = keys.revoke(key)
    if not revoked:
        typer.echo(f"no active key matches {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key}")
