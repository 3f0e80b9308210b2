"""The runs table's columns: which fields it shows, their cells, and how a header sorts.

Columns are search-language fields (``params.lr``, ``metrics.acc``, ``metrics.acc.max``,
``tags.team``), so a column, a sort and a filter all name a field the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cairn.domain.errors import Invalid
from cairn.domain.query import Field, OrderKey, format_field, parse_order_by
from cairn.domain.records import Run

MAX_COLUMNS = 40
DEFAULT_PER_KIND = 5
SYSTEM_PREFIX = "system/"

# Attributes every row shows; each header sorts like any other column.
FIXED = (
    ("Run", Field("attribute", "name")),
    ("Status", Field("attribute", "status")),
    ("Started", Field("attribute", "start_time")),
    ("Duration", Field("attribute", "duration")),
)
_DESCENDING_FIRST = frozenset({"metric", "start_time", "end_time", "duration"})


@dataclass(frozen=True)
class Column:
    field: Field
    label: str
    kind: str  # "metric", "param", "tag" or "attribute"

    @property
    def name(self) -> str:
        return format_field(self.field)


def column(field: Field) -> Column:
    suffix = f" ({field.aggregate})" if field.kind == "metric" and field.aggregate != "last" else ""
    return Column(field, field.key + suffix, field.kind)


def parse_columns(raw: Sequence[str]) -> list[Column]:
    """Columns from ``col`` query values; a bad one raises ``Invalid`` (field ``col``)."""
    fields: dict[str, Field] = {}
    for text in raw:
        try:
            keys = parse_order_by(text)
        except Invalid as exc:
            raise Invalid(f"column {text!r}: {exc.message}", field="col") from None
        for key in keys:
            if key.field.kind == "attribute":
                continue  # attributes are always shown
            fields.setdefault(format_field(key.field), key.field)
    if len(fields) > MAX_COLUMNS:
        raise Invalid(f"choose at most {MAX_COLUMNS} columns", field="col")
    return [column(f) for f in fields.values()]


@dataclass(frozen=True)
class KeysSeen:
    """The keys the runs on a page carry: what the column picker offers."""

    metrics: list[str]
    params: list[str]
    tags: list[str]

    @classmethod
    def of(cls, runs: Iterable[Run]) -> KeysSeen:
        metrics: set[str] = set()
        params: set[str] = set()
        tags: set[str] = set()
        for run in runs:
            metrics.update(run.metrics)
            params.update(run.params)
            tags.update(run.tags)
        tags = {t for t in tags if not t.startswith("cairn.")}
        return cls(_ordered(metrics), sorted(params), sorted(tags))

    def defaults(self) -> list[Column]:
        """Without a choice: the first few params and (non-system) metrics."""
        metrics = [m for m in self.metrics if not m.startswith(SYSTEM_PREFIX)]
        return [column(Field("param", k)) for k in self.params[:DEFAULT_PER_KIND]] + [
            column(Field("metric", k)) for k in metrics[:DEFAULT_PER_KIND]
        ]


def _ordered(metric_keys: set[str]) -> list[str]:
    return sorted(metric_keys, key=lambda k: (k.startswith(SYSTEM_PREFIX), k))


def cell(run: Run, field: Field) -> object:
    """The value a run shows in a column (None when it has none)."""
    if field.kind == "param":
        return run.params.get(field.key)
    if field.kind == "tag":
        return run.tags.get(field.key)
    if field.kind == "metric":
        summary = run.metrics.get(field.key)
        if summary is None:
            return None
        return {"last": summary.last, "min": summary.min, "max": summary.max}.get(
            field.aggregate or "last", summary.count
        )
    return getattr(run, field.key, None)


@dataclass(frozen=True)
class SortState:
    """What a header shows and where clicking it goes."""

    direction: str | None  # "ascending" / "descending" when the table is sorted by it
    next_order: str


def parse_order(text: str) -> OrderKey | None:
    """The single sort key of the ``order`` query value, or None for the default."""
    keys = parse_order_by(text) if text.strip() else []
    return keys[0] if keys else None


def sort_state(field: Field, current: OrderKey | None) -> SortState:
    name = format_field(field)
    if current is None and field == Field("attribute", "start_time"):
        current = OrderKey(field, descending=True)  # the default order
    if current is not None and current.field == field:
        direction = "descending" if current.descending else "ascending"
        flipped = name if current.descending else f"{name} desc"
        return SortState(direction, flipped)
    first_desc = field.kind in _DESCENDING_FIRST or field.key in _DESCENDING_FIRST
    return SortState(None, f"{name} desc" if first_desc else name)
