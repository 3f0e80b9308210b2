"""How commands print: readable tables for people, ``--json`` for scripts, and one exit
code per error kind so a script can tell "not found" from "server down"."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from cairn.domain.errors import CairnError

EXIT_CODES: dict[str, int] = {
    "internal": 1,
    "invalid": 3,
    "not_found": 4,
    "already_exists": 5,
    "conflict": 5,
    "unauthenticated": 6,
    "forbidden": 6,
    "unavailable": 7,
    "schema_outdated": 8,
    "too_large": 9,
    "rate_limited": 10,
}

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn a ``CairnError`` into a one-line message on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CairnError as exc:
            click.echo(f"error ({exc.code}): {exc.message}", err=True)
            sys.exit(EXIT_CODES.get(exc.code, 1))

    return wrapper  # type: ignore[return-value]


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {f: getattr(value, f) for f in value.__dataclass_fields__}
    return str(value)


def _clean_floats(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean_floats(v) for k, v in value.items()}
    if hasattr(value, "_asdict"):  # a record that is a NamedTuple (metric summaries, points)
        return _clean_floats(value._asdict())
    if isinstance(value, list | tuple):
        return [_clean_floats(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _clean_floats(_default(value))
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(_clean_floats(value), default=_default, indent=2))


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, max_width: int = 40
) -> None:
    """A plain aligned table; long cells are cut with an ellipsis."""
    cells = [[_cut(format_value(c), max_width) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    click.echo(line.rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cut(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"
