"""Compile the search language (``cairn.domain.query``) to SQLAlchemy Core; nothing else
turns a query into SQL.

Every metric, param or tag a search names is one aliased join on its table (a run has at
most one summary row per metric key and one row per param or tag key, so no join
multiplies rows); ``metrics.x`` and ``metrics.x.max`` share a join. A field that a
top-level ``and`` of the filter compares is an inner join, so the database may start from
that table's index; any other is a left outer join. Comparisons use two-valued logic: a run
without the field does not match ``metrics.x > 1`` and does match ``not metrics.x > 1``.

Sorts put NULLs (missing values) last in both directions, written as a ``(col IS NULL)``
key so SQLite and PostgreSQL agree. The run id is the final tie-breaker, so the order is
total and paging is keyset: the cursor carries the last row's sort values and id, and the
next page starts strictly after them. Its checksum catches damage, not forgery (there is
no secret); a forged cursor can only move where a page starts.

``like`` is case-sensitive on both databases: LIKE narrows (it ignores ASCII case on
SQLite) and ``regexp_match`` decides, which on SQLite is the REGEXP function SQLAlchemy's
pysqlite dialect registers on each connection. Compiling costs ~0.1-0.5 ms, so the part of
a search that its text decides is kept in a small LRU cache; a page adds only its cursor.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from typing import cast as typed

from sqlalchemy import (
    ColumnElement,
    Float,
    FromClause,
    Numeric,
    Row,
    Select,
    Table,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
)

from cairn.domain.errors import Invalid
from cairn.domain.query import (
    ORDERING_OPS,
    And,
    Comparison,
    Expr,
    Field,
    InList,
    IsNull,
    Not,
    Or,
    OrderKey,
    Value,
    format_order_by,
    parse_order_by,
    parse_search,
    time_to_ms,
)
from cairn.domain.validation import LIMITS
from cairn.store.tables import MetricKeyRow, MetricSummaryRow, ParamRow, RunRow, TagRow

_RUNS = typed(Table, RunRow.__table__)
_KEYS = typed(Table, MetricKeyRow.__table__)
_SUMMARIES = typed(Table, MetricSummaryRow.__table__)
_PARAMS = typed(Table, ParamRow.__table__)
_TAGS = typed(Table, TagRow.__table__)

MAX_JOINED_FIELDS = 32  # SQLite joins at most 64 tables
DEFAULT_ORDER = (
    OrderKey(Field("attribute", "start_time"), descending=True),
    OrderKey(Field("attribute", "id"), descending=True),
)
_TIEBREAK = OrderKey(Field("attribute", "id"), descending=True)
_MAX_CURSOR = 100_000
_CHECK = 6  # bytes of blake2s that guard a cursor against damage
_INT64 = 2**63 - 1

_AGGREGATE_COLUMNS = {
    "last": "last_value",
    "min": "min_value",
    "max": "max_value",
    "count": "count",
}
_ATTRIBUTES: dict[str, ColumnElement[Any]] = {
    "id": _RUNS.c.id,
    "name": _RUNS.c.name,
    "status": _RUNS.c.status,
    "experiment": _RUNS.c.experiment,
    "start_time": _RUNS.c.start_time,
    "end_time": _RUNS.c.end_time,
    "author": _RUNS.c.author,
    "parent_id": _RUNS.c.parent_id,
    "duration": cast(_RUNS.c.end_time - _RUNS.c.start_time, Float) / 1000.0,
}
_NOT_NULL = frozenset({"id", "status", "start_time"})
_COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

# Params and tags are text; compared with a number they are read as one. PostgreSQL's
# CAST fails on text that is not a number, so only text shaped like one is cast, and to
# NUMERIC there (which holds any such text exactly), to REAL on SQLite.
_NUMBER_TEXT = r"\A[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?\Z"
_NUMBER_TYPE = Float().with_variant(Numeric(), "postgresql")


def _numeric(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((column.regexp_match(_NUMBER_TEXT), cast(column, _NUMBER_TYPE)), else_=None)


def _number_literal(value: int | float) -> ColumnElement[Any]:
    return cast(literal(repr(value)), _NUMBER_TYPE)


def _like_regex(pattern: str) -> str:
    """A case-sensitive regex for a LIKE pattern (escape ``\\``): SQLite's LIKE ignores case."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return r"(?s)\A" + "".join(out) + r"\Z"


def _float(value: Value) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer literal beyond a double
        return math.inf if typed(int, value) > 0 else -math.inf


def _int64(value: int | float) -> int | float:
    return max(-_INT64 - 1, min(_INT64, value)) if isinstance(value, int) else value


@functools.cache
def _alias(kind: str, n: int) -> tuple[FromClause, ColumnElement[bool]]:
    """The n-th join of a search on ``kind``'s table and its link to the run; kept, as
    building an alias costs ~0.3 ms."""
    table = _SUMMARIES if kind == "metric" else _PARAMS if kind == "param" else _TAGS
    alias = table.alias(f"{kind[0]}{n}")
    return alias, alias.c.run_pk == _RUNS.c.pk


@functools.lru_cache(maxsize=1024)
def _join_on(kind: str, n: int, key: str) -> tuple[FromClause, ColumnElement[bool]]:
    """The n-th join's alias and ON clause for ``key``: searches repeat keys, so it is kept."""
    alias, link = _alias(kind, n)
    if kind == "metric":
        key_id = select(_KEYS.c.id).where(_KEYS.c.name == key).scalar_subquery()
        return alias, and_(link, alias.c.key_id == key_id)
    return alias, and_(link, alias.c.key == key)


@dataclass(frozen=True, slots=True)
class _Join:
    alias: FromClause
    on: ColumnElement[bool]
    inner: bool


@dataclass(frozen=True, slots=True)
class _Sort:
    expr: ColumnElement[Any]
    descending: bool
    nullable: bool
    kind: type  # of its values: int, float or str


class _Builder:
    def __init__(self, required: set[tuple[str, str]], demote_ranges: bool = False) -> None:
        self.required = required
        self.demote_ranges = demote_ranges
        self.joins: dict[tuple[str, str], _Join] = {}

    def source(self, field: Field) -> FromClause:
        ident = (field.kind, field.key)
        join = self.joins.get(ident)
        if join is None:
            n = len(self.joins)
            if n >= MAX_JOINED_FIELDS:
                raise Invalid(
                    f"a search may name at most {MAX_JOINED_FIELDS} different metrics, "
                    "params and tags",
                    field="filter",
                )
            alias, on = _join_on(field.kind, n, field.key)
            join = self.joins[ident] = _Join(alias, on, ident in self.required)
        return join.alias

    def column(self, field: Field) -> ColumnElement[Any]:
        if field.kind == "attribute":
            return _ATTRIBUTES[field.key]
        alias = self.source(field)
        if field.kind == "metric":
            return alias.c[_AGGREGATE_COLUMNS[field.aggregate or "last"]]
        return alias.c.value

    def from_clause(self) -> FromClause:
        source: FromClause = _RUNS
        for join in sorted(self.joins.values(), key=lambda j: not j.inner):
            source = source.join(join.alias, join.on, isouter=not join.inner)
        return source

    def where(self, expr: Expr) -> ColumnElement[bool]:
        if isinstance(expr, And):
            return and_(*(self.where(e) for e in expr.operands))
        if isinstance(expr, Or):
            return or_(*(self.where(e) for e in expr.operands))
        if isinstance(expr, Not):
            # A comparison with a missing field is NULL; under NOT it must count as false.
            return not_(func.coalesce(self.where(expr.operand), false()))
        if isinstance(expr, IsNull):
            column = self.column(expr.field)
            return column.is_not(None) if expr.negated else column.is_(None)
        if isinstance(expr, InList):
            return self.in_list(expr)
        return self.comparison(expr)

    def operand(self, field: Field, value: Value) -> tuple[ColumnElement[Any], Any]:
        column = self.column(field)
        if field.kind == "metric":  # typed, so PostgreSQL never casts 1.5 to a BIGINT count
            return column, literal(_float(value), Float())
        if field.kind in ("param", "tag"):
            if isinstance(value, bool):
                return func.lower(column), "true" if value else "false"
            if isinstance(value, int | float):
                return _numeric(column), _number_literal(value)
            return column, value
        if field.key in ("start_time", "end_time"):
            ms = time_to_ms(value)
            return column, _int64(ms) if isinstance(ms, int) else literal(ms, Float())
        if field.key == "duration":
            return column, _float(value)
        return column, value.lower() if field.key == "status" else value  # type: ignore[union-attr]

    def comparison(self, node: Comparison) -> ColumnElement[bool]:
        field, op, value = node.field, node.op, node.value
        if op in ("like", "ilike"):
            column, pattern = self.column(field), typed(str, value)
            if field.key == "status" and field.kind == "attribute":
                pattern = pattern.lower()
            if op == "ilike":
                return func.lower(column).like(func.lower(literal(pattern)), escape="\\")
            # LIKE narrows cheaply (and uses no case on SQLite); the regex settles case.
            return and_(
                column.like(pattern, escape="\\"), column.regexp_match(_like_regex(pattern))
            )
        column, operand = self.operand(field, value)
        if self.demote_ranges and field.kind == "metric" and op in ORDERING_OPS:
            # ``+ 0`` keeps SQLite off the (key_id, last_value) range: without statistics
            # it rates that range above the param's equality, which is the narrower one.
            column = column + 0
        if op == "!=" and _is_number(value) and field.kind in ("param", "tag"):
            # Text that is not a number differs from every number.
            raw = self.column(field)
            return and_(raw.is_not(None), not_(func.coalesce(column == operand, false())))
        return _COMPARE[op](column, operand)

    def in_list(self, node: InList) -> ColumnElement[bool]:
        groups: dict[str, tuple[ColumnElement[Any], list[Any]]] = {}
        for value in node.values:
            column, operand = self.operand(node.field, value)
            kind = "bool" if isinstance(value, bool) else "number" if _is_number(value) else ""
            groups.setdefault(kind, (column, []))[1].append(operand)
        if not node.negated:
            return or_(*(column.in_(values) for column, values in groups.values()))
        if "number" in groups and node.field.kind in ("param", "tag"):
            positive = or_(*(column.in_(values) for column, values in groups.values()))
            raw = self.column(node.field)
            return and_(raw.is_not(None), not_(func.coalesce(positive, false())))
        return and_(*(column.not_in(values) for column, values in groups.values()))

    def sort(self, key: OrderKey) -> _Sort:
        field = key.field
        kind: type = str
        if field.kind == "metric":
            kind = int if field.aggregate == "count" else float
        elif field.kind == "attribute" and field.key in ("start_time", "end_time"):
            kind = int
        elif field.kind == "attribute" and field.key == "duration":
            kind = float
        nullable = field.kind != "attribute" or field.key not in _NOT_NULL
        return _Sort(self.column(field), key.descending, nullable, kind)


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text_equality(expr: Expr | None) -> bool:
    """Whether a top-level ``and`` holds ``params.x = 'v'`` or ``tags.x in ('v', …)``."""
    stack = [expr] if expr is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack.extend(node.operands)
        elif isinstance(node, Comparison | InList) and node.field.kind in ("param", "tag"):
            if isinstance(node, Comparison) and node.op == "=" and isinstance(node.value, str):
                return True
            if (
                isinstance(node, InList)
                and not node.negated
                and all(isinstance(v, str) for v in node.values)
            ):
                return True
    return False


def _required(expr: Expr | None) -> set[tuple[str, str]]:
    """Fields that every matching run must have: those compared in top-level ``and``s
    (``x is null`` holds for runs without x, so it keeps an outer join)."""
    found: set[tuple[str, str]] = set()
    stack = [expr] if expr is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack.extend(node.operands)
        elif isinstance(node, Comparison | InList) or (isinstance(node, IsNull) and node.negated):
            found.add((node.field.kind, node.field.key))
    return {ident for ident in found if ident[0] != "attribute"}


def _after(sorts: Sequence[_Sort], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``sorts`` (NULLs last, any direction)."""
    clauses: list[ColumnElement[bool]] = []
    equal: list[ColumnElement[bool]] = []
    for sort, value in zip(sorts, values, strict=True):
        if value is None:  # nothing sorts after a NULL within this key
            equal.append(sort.expr.is_(None))
            continue
        beyond = sort.expr < value if sort.descending else sort.expr > value
        if sort.nullable:
            beyond = or_(beyond, sort.expr.is_(None))
        clauses.append(and_(*equal, beyond))
        equal.append(sort.expr == value)
    return or_(*clauses) if clauses else false()


# ---------------------------------------------------------------------------- cursors


def _signature(keys: Sequence[OrderKey]) -> str:
    return hashlib.blake2s(format_order_by(keys).encode(), digest_size=6).hexdigest()


def _encode_cursor(signature: str, values: list[Any]) -> str:
    body = json.dumps([signature, values], separators=(",", ":"), ensure_ascii=False).encode()
    check = hashlib.blake2s(body, digest_size=_CHECK).digest()
    return base64.urlsafe_b64encode(check + body).rstrip(b"=").decode("ascii")


def _bad_cursor(why: str) -> Invalid:
    return Invalid(
        f"cursor is not valid ({why}); start again without a cursor",
        field="cursor",
    )


def _decode_cursor(cursor: str, signature: str, sorts: Sequence[_Sort]) -> list[Any]:
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_CURSOR:
        raise _bad_cursor("not a cursor this server made")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        body = raw[_CHECK:]
        if hashlib.blake2s(body, digest_size=_CHECK).digest() != raw[:_CHECK]:
            raise ValueError("checksum")
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise _bad_cursor("damaged or not made by this server") from None
    if not (isinstance(data, list) and len(data) == 2 and isinstance(data[1], list)):
        raise _bad_cursor("damaged or not made by this server")
    if data[0] != signature:
        raise _bad_cursor("it was made for another sort order")
    values: list[Any] = data[1]
    if len(values) != len(sorts) or not all(map(_fits, sorts, values)):
        raise _bad_cursor("its values do not fit the sort order")
    return values


def _fits(sort: _Sort, value: Any) -> bool:
    if value is None:
        return sort.nullable
    if sort.kind is str or isinstance(value, bool):
        return isinstance(value, str)
    if isinstance(value, int):
        return -_INT64 - 1 <= value <= _INT64
    return sort.kind is float and isinstance(value, float) and not math.isnan(value)


# ---------------------------------------------------------------------------- entry point


@dataclass(frozen=True, slots=True)
class RunSearch:
    """A compiled run search: execute ``statement``, then hand its rows to ``page``."""

    statement: Select[*tuple[Any, ...]]
    limit: int
    order_signature: str = ""
    id_tiebreak: bool = True

    def page(self, rows: Sequence[Row[*tuple[Any, ...]]]) -> tuple[list[int], str | None]:
        """The run pks of this page in order, and the cursor of the next (None: last page)."""
        pks = [row[0] for row in rows[: self.limit]]
        if len(rows) <= self.limit:
            return pks, None
        last = rows[self.limit - 1]
        values = [*last[2:], last[1]] if self.id_tiebreak else list(last[2:])
        return pks, _encode_cursor(self.order_signature, values)


def compile_run_search(
    filter_text: str | None,
    order_by: Sequence[str] | None,
    *,
    project_id: int | None,
    limit: int,
    cursor: str | None,
) -> RunSearch:
    """Compile a run search: filter, sort order (default newest first), page size, cursor.

    >>> s = compile_run_search("metrics.acc > 0.9 order by metrics.acc desc", None,
    ...                        project_id=1, limit=50, cursor=None)
    >>> [c.name for c in s.statement.selected_columns]
    ['pk', 'id', 'sort0']
    """
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 1 <= limit <= LIMITS["page_size"]
    ):
        raise Invalid(
            f"limit must be a whole number from 1 to {LIMITS['page_size']}",
            field="limit",
            details={"limit": "page_size", "max": LIMITS["page_size"]},
        )
    if isinstance(order_by, str):
        order_by = [order_by]
    plan = _plan(filter_text, tuple(order_by or ()))
    statement = plan.statement
    if project_id is not None:
        statement = statement.where(_RUNS.c.project_id == project_id)
    if cursor is not None:
        values = _decode_cursor(cursor, plan.signature, plan.sorts)
        statement = statement.where(_after(plan.sorts, values))
    return RunSearch(statement.limit(limit + 1), limit, plan.signature, plan.tiebreak)


@dataclass(frozen=True, slots=True)
class _Plan:
    statement: Select[*tuple[Any, ...]]  # filtered and ordered; no project, cursor, limit
    sorts: tuple[_Sort, ...]
    signature: str
    tiebreak: bool


@functools.lru_cache(maxsize=256)
def _plan(filter_text: str | None, order_by: tuple[str, ...]) -> _Plan:
    """The part of a search that its text decides; kept, as UIs repeat a search per page."""
    search = parse_search(filter_text)
    keys = list(search.order_by)
    if order_by:
        extra = parse_order_by(order_by)
        if keys and extra:
            raise Invalid(
                "give the sort order once: in order_by or in the filter's 'order by'",
                field="order_by",
            )
        keys = keys or extra
    keys = keys or list(DEFAULT_ORDER)
    builder = _Builder(_required(search.where), _text_equality(search.where))
    conditions = [builder.where(search.where)] if search.where is not None else []
    sorts = [builder.sort(key) for key in keys]
    labels = [sort.expr.label(f"sort{i}") for i, sort in enumerate(sorts)]
    tiebreak = not any(k.field == _TIEBREAK.field for k in keys)
    if tiebreak:
        # Ids sort by creation time: break ties in the direction of the last key, so
        # runs started in the same millisecond keep their start order.
        sorts.append(builder.sort(replace(_TIEBREAK, descending=keys[-1].descending)))
    ordering: list[ColumnElement[Any]] = []
    for sort in sorts:
        if sort.nullable:
            ordering.append(sort.expr.is_(None))
        ordering.append(sort.expr.desc() if sort.descending else sort.expr.asc())
    statement = (
        select(_RUNS.c.pk, _RUNS.c.id, *labels)
        .select_from(builder.from_clause())
        .where(*conditions)
        .order_by(*ordering)
    )
    return _Plan(statement, tuple(sorts), _signature(keys), tiebreak)
