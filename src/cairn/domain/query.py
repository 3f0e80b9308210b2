"""The search language: one grammar for runs (later models, versions, datasets).

A superset of MLflow's filter strings::

    metrics.acc > 0.9 and params.lr = '0.01' and (tags.team = 'nlp' or status = 'finished')
    order by metrics.acc desc, start_time

Grammar (keywords are case-insensitive)::

    search     := [expr] ['order' 'by' order_key (',' order_key)*]
    expr       := and ('or' and)*
    and        := not ('and' not)*
    not        := ['not'] atom
    atom       := '(' expr ')' | comparison
    comparison := field op value
                | field ['not'] 'in' '(' value (',' value)* ')'
                | field 'is' ['not'] 'null'
    op         := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>=' | 'like' | 'ilike'
    field      := 'metrics.' KEY ['.min' | '.max' | '.last' | '.count']
                | 'params.' KEY | 'tags.' KEY | ['attributes.'] NAME
    value      := 'string' | "string" | number | 'true' | 'false'
    order_key  := field ['asc' | 'desc']

A KEY is dot-separated words (``metrics.val.acc`` is key ``val.acc``; only a last
segment of exactly ``min``/``max``/``last``/``count`` is an aggregate). Any other key is
quoted with backticks or double quotes: ``metrics.`val loss```, ``metrics."a/b".max``.
Strings take ``\\n \\t \\r \\\\ \\' \\" \\```` escapes and SQL's doubled quote; other
backslashes stay, so ``like '50\\%'`` reaches SQL as the pattern ``50\\%``.

The parser checks what it can without a database (a metric compares with numbers, a time
with epoch milliseconds or an ISO date, a status with a known status) so every error points
at a column. ``store/search.py`` compiles the tree to SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NoReturn

from cairn.domain.errors import Invalid
from cairn.domain.query_tokens import OPS, PLAIN_KEY, Op, Token, fail, tokenize
from cairn.domain.validation import LIMITS

FieldKind = Literal["metric", "param", "tag", "attribute"]
Aggregate = Literal["last", "min", "max", "count"]
Value = str | int | float | bool
AttributeType = Literal["text", "time", "number"]

AGGREGATES: tuple[Aggregate, ...] = ("last", "min", "max", "count")
ORDERING_OPS = frozenset({"<", "<=", ">", ">="})
_MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Field:
    """What a comparison or sort reads; ``aggregate`` is set for metrics only."""

    kind: FieldKind
    key: str
    aggregate: Aggregate | None = None

    def __post_init__(self) -> None:
        if self.kind == "metric" and self.aggregate is None:
            object.__setattr__(self, "aggregate", "last")
        elif self.kind != "metric" and self.aggregate is not None:
            raise ValueError(f"only metrics take an aggregate, not {self.kind}s")

    def __str__(self) -> str:
        return format_field(self)


@dataclass(frozen=True, slots=True)
class Comparison:
    field: Field
    op: Op
    value: Value


@dataclass(frozen=True, slots=True)
class InList:
    field: Field
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class IsNull:
    field: Field
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Comparison | InList | IsNull | Not | And | Or
Leaf = Comparison | InList | IsNull


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: Field
    descending: bool = False

    def __str__(self) -> str:
        return format_field(self.field) + (" desc" if self.descending else "")


@dataclass(frozen=True, slots=True)
class Search:
    """A parsed filter: the condition (None: every row) and its ``order by`` clause."""

    where: Expr | None
    order_by: tuple[OrderKey, ...] = ()


@dataclass(frozen=True, slots=True)
class Attribute:
    """A column-like field; ``choices`` (any case) limits what ``=``, ``!=``, ``in`` take."""

    name: str
    type: AttributeType
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()


class AttributeSet:
    """The attributes one kind of entity has, looked up by name or alias, any case."""

    def __init__(self, *attributes: Attribute) -> None:
        self.attributes = attributes
        self._by_name = {n: a for a in attributes for n in (a.name, *a.aliases)}
        self.names = ", ".join(sorted(a.name for a in attributes))

    def get(self, name: str) -> Attribute | None:
        return self._by_name.get(name.lower())


RUN_ATTRIBUTES = AttributeSet(
    Attribute("id", "text", aliases=("run_id",)),
    Attribute("name", "text", aliases=("run_name",)),
    Attribute("status", "text", choices=("running", "finished", "failed", "killed")),
    Attribute("experiment", "text"),
    Attribute("start_time", "time"),
    Attribute("end_time", "time"),
    Attribute("author", "text"),
    Attribute("parent_id", "text"),
    Attribute("duration", "number"),
)

_PREFIXES: dict[str, FieldKind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ---------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, field: str, attributes: AttributeSet, **extra: object) -> None:
        self.field = field
        self.extra = extra
        self.attributes = attributes
        self.tokens = tokenize(text, field)
        self.pos = 0

    def fail(self, token: Token, reason: str) -> NoReturn:
        fail(self.field, token.text, token.column, reason, **self.extra)

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.tokens[self.pos]
        if token.kind != kind:
            return False
        return text is None or (token.value if kind == "keyword" else token.text) == text

    def expect(self, kind: str, text: str, reason: str) -> None:
        if not self.at(kind, text):
            self.fail(self.peek(), reason)
        self.pos += 1

    def search(self, allow_order: bool) -> Search:
        where = None
        if not (self.at("end") or (allow_order and self.at("keyword", "order"))):
            where = self.or_(0)
        order: tuple[OrderKey, ...] = ()
        if allow_order and self.at("keyword", "order"):
            self.pos += 1
            self.expect("keyword", "by", "expected 'by' after 'order'")
            order = tuple(self.order_keys())
        if not self.at("end"):
            more = "'and', 'or', 'order by'" if allow_order and not order else "'and', 'or'"
            self.fail(self.peek(), f"expected {more} or the end of the filter")
        return Search(where, order)

    def order_keys(self) -> list[OrderKey]:
        keys = [self.order_key()]
        while self.at("punct", ","):
            self.pos += 1
            keys.append(self.order_key())
        if not self.at("end"):
            self.fail(self.peek(), "expected 'asc', 'desc', ',' or the end of the order by")
        return keys

    def order_key(self) -> OrderKey:
        field = self.field_of(self.take())
        descending = False
        if self.at("keyword", "asc") or self.at("keyword", "desc"):
            descending = self.take().value == "desc"
        return OrderKey(field, descending)

    def or_(self, depth: int) -> Expr:
        items = [self.and_(depth)]
        while self.at("keyword", "or"):
            self.pos += 1
            items.append(self.and_(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self, depth: int) -> Expr:
        items = [self.not_(depth)]
        while self.at("keyword", "and"):
            self.pos += 1
            items.append(self.not_(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_(self, depth: int) -> Expr:
        if self.at("keyword", "not"):
            self.pos += 1
            return Not(self.atom(depth))
        return self.atom(depth)

    def atom(self, depth: int) -> Expr:
        if self.at("punct", "("):
            if depth >= _MAX_DEPTH:
                self.fail(self.peek(), f"parentheses nest deeper than {_MAX_DEPTH}")
            self.pos += 1
            expr = self.or_(depth + 1)
            self.expect("punct", ")", "expected ')' or 'and', 'or'")
            return expr
        return self.comparison()

    def comparison(self) -> Leaf:
        field = self.field_of(self.take())
        token = self.take()
        if token.kind == "keyword" and token.value in ("not", "in"):
            if token.value == "not":
                self.expect("keyword", "in", "expected 'in' after 'not'")
            self.expect("punct", "(", "expected '(' to open the list of values")
            values = [self.value(field, "in", self.take())]
            while self.at("punct", ","):
                self.pos += 1
                values.append(self.value(field, "in", self.take()))
            self.expect("punct", ")", "expected ',' or ')'")
            return InList(field, tuple(values), negated=token.value == "not")
        if token.kind == "keyword" and token.value == "is":
            negated = self.at("keyword", "not")
            self.pos += negated
            self.expect("keyword", "null", "expected 'null' or 'not null' after 'is'")
            return IsNull(field, negated)
        op: Op
        if token.kind == "op":
            op = OPS[token.text]
        elif token.kind == "keyword" and token.value in ("like", "ilike"):
            op = "like" if token.value == "like" else "ilike"
            if self.value_type(field) in ("number", "time"):
                self.fail(token, f"{op} matches text, and {field} is not text")
        else:
            self.fail(token, "expected a comparison operator (= != < <= > >= like ilike in is)")
        return Comparison(field, op, self.value(field, op, self.take()))

    def field_of(self, token: Token) -> Field:
        if token.kind != "path":
            self.fail(token, "expected a field such as metrics.acc, params.lr or status")
        segments: tuple[tuple[str, bool], ...] = token.value  # type: ignore[assignment]
        if len(segments) == 1:
            return self.attribute(token, segments[0][0])
        kind = _PREFIXES.get(segments[0][0].lower())
        if kind is None:
            self.fail(
                token,
                f"unknown field {token.text!r}: a field is metrics.KEY, params.KEY, "
                f"tags.KEY or an attribute ({self.attributes.names})",
            )
        rest = segments[1:]
        if kind == "attribute":
            return self.attribute(token, ".".join(t for t, _ in rest))
        aggregate: Aggregate | None = None
        if kind == "metric":
            aggregate = "last"
            last, quoted = rest[-1]
            if len(rest) > 1 and not quoted and last in AGGREGATES:
                aggregate = AGGREGATES[AGGREGATES.index(last)]
                rest = rest[:-1]
        key = ".".join(t for t, _ in rest)
        if not key:
            self.fail(token, "the key is empty")
        return Field(kind, key, aggregate)

    def attribute(self, token: Token, name: str) -> Field:
        attribute = self.attributes.get(name)
        if attribute is None:
            self.fail(
                token,
                f"unknown attribute {name!r}: use one of {self.attributes.names}, "
                "or metrics.KEY, params.KEY, tags.KEY",
            )
        return Field("attribute", attribute.name)

    def value_type(self, field: Field) -> str:
        if field.kind == "metric":
            return "number"
        if field.kind == "attribute":
            attribute = self.attributes.get(field.key)
            assert attribute is not None
            return attribute.type
        return "any"

    def value(self, field: Field, op: str, token: Token) -> Value:
        if token.kind in ("string", "number"):
            value: Value = token.value  # type: ignore[assignment]
        elif token.kind == "keyword" and token.value in ("true", "false"):
            value = token.value == "true"
        elif token.kind == "keyword" and token.value == "null":
            self.fail(token, "expected a value; write 'is null' to find missing values")
        else:
            self.fail(token, "expected a value (a quoted string, a number, true or false)")
        reason = _value_problem(self.attributes, field, op, value)
        if reason:
            self.fail(token, reason)
        return value


def _value_problem(attributes: AttributeSet, field: Field, op: str, value: Value) -> str:
    """Why ``field op value`` cannot be asked, or '' when it can."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if op in ("like", "ilike"):
        if not isinstance(value, str):
            return f"{op} takes a quoted pattern"
        if (len(value) - len(value.rstrip("\\"))) % 2:
            return "a pattern cannot end with a lone backslash (its escape character)"
        return ""
    if isinstance(value, bool):
        if field.kind in ("param", "tag") and op in ("=", "!=", "in"):
            return ""
        return "true and false compare only with params and tags, using = != or in"
    if field.kind == "metric":
        return "" if is_number else f"{field} compares with numbers"
    if field.kind in ("param", "tag"):
        return ""
    attribute = attributes.get(field.key)
    assert attribute is not None
    if attribute.type == "number":
        return "" if is_number else f"{field} compares with numbers"
    if attribute.type == "time":
        if is_number:
            return ""
        if isinstance(value, str) and iso_to_ms(value) is not None:
            return ""
        return (
            f"{field} compares with epoch milliseconds or an ISO date "
            "such as '2024-05-01' or '2024-05-01T12:30:00Z'"
        )
    if not isinstance(value, str):
        return f"{field} compares with a quoted string"
    choices = attribute.choices
    if choices and op in ("=", "!=", "in") and value.lower() not in choices:
        return f"{field} is one of {', '.join(choices)}"
    return ""


def iso_to_ms(text: str) -> int | None:
    """Milliseconds since the epoch of an ISO 8601 date or time (UTC unless it says)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def time_to_ms(value: Value) -> int | float:
    """A time literal that ``parse_query`` accepted, as epoch milliseconds."""
    if isinstance(value, str):
        ms = iso_to_ms(value)
        if ms is None:
            raise Invalid(f"{value!r} is not an ISO date", field="filter")
        return ms
    return value


# ---------------------------------------------------------------------------- entry points


def _check_length(text: str, field: str) -> None:
    limit = LIMITS["search_filter_length"]
    if len(text) > limit:
        raise Invalid(
            f"{field} is {len(text)} characters; the limit (search_filter_length) is {limit}",
            field=field,
            details={"limit": "search_filter_length", "max": limit},
        )


def parse_search(text: str | None, *, attributes: AttributeSet = RUN_ATTRIBUTES) -> Search:
    """Parse a filter with an optional ``order by`` clause; empty text means no filter.

    >>> parse_search("metrics.acc > 0.9 order by metrics.acc desc").order_by[0].descending
    True
    """
    if text is None:
        return Search(None)
    _check_length(text, "filter")
    return _Parser(text, "filter", attributes).search(allow_order=True)


def parse_query(text: str | None, *, attributes: AttributeSet = RUN_ATTRIBUTES) -> Expr | None:
    """Parse a filter condition; None or blank text means no filter.

    >>> format_query(parse_query("metrics.val.acc.max>0.9 AND params.lr='0.01'"))
    "metrics.val.acc.max > 0.9 and params.lr = '0.01'"
    """
    if text is None:
        return None
    _check_length(text, "filter")
    return _Parser(text, "filter", attributes).search(allow_order=False).where


def parse_order_by(
    items: Sequence[str] | str | None, *, attributes: AttributeSet = RUN_ATTRIBUTES
) -> list[OrderKey]:
    """Parse sort keys: ``["metrics.m1 desc", "start_time"]`` or ``"metrics.m1 desc, start_time"``.

    Errors name ``field="order_by"``; ``details["item"]`` is the index of the bad item.
    """
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    _check_length(",".join(items), "order_by")
    keys: list[OrderKey] = []
    for index, item in enumerate(items):
        parser = _Parser(item, "order_by", attributes, item=index)
        if not parser.at("end"):
            keys.extend(parser.order_keys())
    return keys


# ---------------------------------------------------------------------------- printer


def _quote(text: str, quote: str) -> str:
    out = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return quote + out + quote


def _key(key: str, guard_aggregate: bool) -> str:
    plain = PLAIN_KEY.fullmatch(key) is not None
    if plain and guard_aggregate and "." in key and key.rsplit(".", 1)[1] in AGGREGATES:
        plain = False
    return key if plain else _quote(key, "`")


def format_field(field: Field) -> str:
    if field.kind == "attribute":
        return field.key
    if field.kind == "metric":
        suffix = "" if field.aggregate == "last" else f".{field.aggregate}"
        return f"metrics.{_key(field.key, suffix == '')}{suffix}"
    return f"{field.kind}s.{_key(field.key, False)}"


def format_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _quote(value, "'")


def format_order_by(keys: Sequence[OrderKey]) -> str:
    return ", ".join(str(key) for key in keys)


def format_query(expr: Expr) -> str:
    """The canonical text of a tree: ``parse_query(format_query(q)) == q``."""
    if isinstance(expr, Comparison):
        return f"{format_field(expr.field)} {expr.op} {format_value(expr.value)}"
    if isinstance(expr, InList):
        values = ", ".join(format_value(v) for v in expr.values)
        return f"{format_field(expr.field)} {'not in' if expr.negated else 'in'} ({values})"
    if isinstance(expr, IsNull):
        return f"{format_field(expr.field)} is {'not null' if expr.negated else 'null'}"
    if isinstance(expr, Not):
        inner = format_query(expr.operand)
        return f"not {inner}" if isinstance(expr.operand, Leaf) else f"not ({inner})"
    # An And inside an And (or an Or inside an Or) keeps its parentheses so the tree
    # comes back with the same shape.
    nested = (And, Or) if isinstance(expr, And) else (Or,)
    parts = (
        f"({format_query(op)})" if isinstance(op, nested) else format_query(op)
        for op in expr.operands
    )
    return (" and " if isinstance(expr, And) else " or ").join(parts)


def format_search(search: Search) -> str:
    where = format_query(search.where) if search.where is not None else ""
    order = f"order by {format_order_by(search.order_by)}" if search.order_by else ""
    return " ".join(p for p in (where, order) if p)
