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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NoReturn

from cairn.domain.errors import Invalid
from cairn.domain.validation import LIMITS

FieldKind = Literal["metric", "param", "tag", "attribute"]
Aggregate = Literal["last", "min", "max", "count"]
Op = Literal["=", "!=", "<", "<=", ">", ">=", "like", "ilike"]
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
_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "null", "like", "ilike", "true", "false"}
    | {"order", "by", "asc", "desc"}
)
_OPS: dict[str, Op] = {"<=": "<=", ">=": ">=", "!=": "!=", "<>": "!=", "=": "=", "<": "<", ">": ">"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ---------------------------------------------------------------------------- tokens

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEGMENT = re.compile(r"[A-Za-z0-9_]+")
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLAIN = {q: re.compile(r"[^\\" + q + "]+") for q in "'\"`"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`"}
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["path", "string", "number", "op", "keyword", "punct", "end"]
    text: str  # as written
    column: int  # 1-based
    value: object = None  # path: tuple of (text, quoted); string/number: the value


def _fail(field: str, token: str, column: int, reason: str, **extra: object) -> NoReturn:
    if not token:
        shown = f"end of {field.replace('_', ' ')}"
    elif not token.isprintable():
        shown = repr(_clip(token))
    else:  # a string literal shows as written; anything else in single quotes
        shown = _clip(token) if token[0] in "'\"" else f"'{_clip(token)}'"
    raise Invalid(
        f"unexpected {shown} at column {column}: {reason}",
        field=field,
        details={"column": column, "token": token, **extra},
    )


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _read_quoted(text: str, start: int, field: str) -> tuple[str, int]:
    quote, plain, parts, i, n = text[start], _PLAIN[text[start]], [], start + 1, len(text)
    while i < n:
        m = plain.match(text, i)
        if m:
            parts.append(m.group())
            i = m.end()
            continue
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            esc = text[i + 1]
            parts.append(_ESCAPES.get(esc, "\\" + esc))
            i += 2
        elif i + 1 < n and text[i + 1] == quote:  # SQL's doubled quote
            parts.append(quote)
            i += 2
        else:
            return "".join(parts), i + 1
    _fail(field, quote, start + 1, f"this {quote} is never closed")


def _tokenize(text: str, field: str) -> list[_Token]:
    nul = text.find("\x00")
    if nul >= 0:  # no database stores one (PostgreSQL refuses them in text)
        _fail(field, "\x00", nul + 1, "a filter cannot hold a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # e.g. a lone surrogate from a JSON "\ud800"
        _fail(field, text[exc.start], exc.start + 1, "a filter must be valid Unicode text")
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while True:
        m = _SPACE.match(text, i)
        if m:
            i = m.end()
        if i >= n:
            tokens.append(_Token("end", "", n + 1))
            return tokens
        c, col = text[i], i + 1
        if c in "(),":
            tokens.append(_Token("punct", c, col))
            i += 1
        elif c in "<>=!":
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            if op is None:
                _fail(field, c, col, "expected a comparison operator")
            tokens.append(_Token("op", op, col, _OPS[op]))
            i += len(op)
        elif c in "'\"":
            value, end = _read_quoted(text, i, field)
            tokens.append(_Token("string", text[i:end], col, value))
            i = end
        elif c in "-.0123456789":
            i = _number(text, i, field, tokens)
        elif _WORD.match(text, i):
            i = _path(text, i, field, tokens)
        else:
            _fail(field, c, col, "expected a field, a value, an operator or a parenthesis")


def _number(text: str, i: int, field: str, tokens: list[_Token]) -> int:
    m = _NUMBER.match(text, i)
    end = m.end() if m else i + 1
    while end < len(text) and (text[end].isalnum() or text[end] in "_.`"):
        end += 1
    word = text[i:end]
    if m is None or m.end() != end:
        _fail(field, word, i + 1, "expected a number such as 3, -0.5 or 1e-3")
    try:
        value: int | float = int(word) if word.strip("-").isdigit() else float(word)
    except ValueError:  # more digits than int() converts
        _fail(field, word, i + 1, "this number is too long")
    if value in (float("inf"), float("-inf")):
        _fail(field, word, i + 1, "this number is out of range")
    tokens.append(_Token("number", word, i + 1, value))
    return end


def _path(text: str, i: int, field: str, tokens: list[_Token]) -> int:
    m = _WORD.match(text, i)
    assert m is not None
    segments = [(m.group(), False)]
    j, n = m.end(), len(text)
    while j < n and text[j] == ".":
        k = j + 1
        if k < n and text[k] in '`"':
            key, j = _read_quoted(text, k, field)
            segments.append((key, True))
            continue
        seg = _SEGMENT.match(text, k)
        if seg is None:
            _fail(field, text[k : k + 1], k + 1, "expected a key after '.'")
        segments.append((seg.group(), False))
        j = seg.end()
    word = text[i:j]
    if len(segments) == 1 and word.lower() in _KEYWORDS:
        tokens.append(_Token("keyword", word, i + 1, word.lower()))
    else:
        tokens.append(_Token("path", word, i + 1, tuple(segments)))
    return j


# ---------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, field: str, attributes: AttributeSet, **extra: object) -> None:
        self.field = field
        self.extra = extra
        self.attributes = attributes
        self.tokens = _tokenize(text, field)
        self.pos = 0

    def fail(self, token: _Token, reason: str) -> NoReturn:
        _fail(self.field, token.text, token.column, reason, **self.extra)

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
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
            op = _OPS[token.text]
        elif token.kind == "keyword" and token.value in ("like", "ilike"):
            op = "like" if token.value == "like" else "ilike"
            if self.value_type(field) in ("number", "time"):
                self.fail(token, f"{op} matches text, and {field} is not text")
        else:
            self.fail(token, "expected a comparison operator (= != < <= > >= like ilike in is)")
        return Comparison(field, op, self.value(field, op, self.take()))

    def field_of(self, token: _Token) -> Field:
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

    def attribute(self, token: _Token, name: str) -> Field:
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

    def value(self, field: Field, op: str, token: _Token) -> Value:
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
    plain = _PLAIN_KEY.fullmatch(key) is not None
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
