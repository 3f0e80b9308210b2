"""The search language's tokenizer: text to tokens, each with its 1-based column.

Every error is ``Invalid`` naming the column and the token, raised through ``fail``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NoReturn

from cairn.domain.errors import Invalid

Op = Literal["=", "!=", "<", "<=", ">", ">=", "like", "ilike"]

KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "null", "like", "ilike", "true", "false"}
    | {"order", "by", "asc", "desc"}
)
OPS: dict[str, Op] = {"<=": "<=", ">=": ">=", "!=": "!=", "<>": "!=", "=": "=", "<": "<", ">": ">"}


_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEGMENT = re.compile(r"[A-Za-z0-9_]+")
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLAIN = {q: re.compile(r"[^\\" + q + "]+") for q in "'\"`"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`"}
PLAIN_KEY = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")


@dataclass(frozen=True, slots=True)
class Token:
    kind: Literal["path", "string", "number", "op", "keyword", "punct", "end"]
    text: str  # as written
    column: int  # 1-based
    value: object = None  # path: tuple of (text, quoted); string/number: the value


def fail(field: str, token: str, column: int, reason: str, **extra: object) -> NoReturn:
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
    fail(field, quote, start + 1, f"this {quote} is never closed")


def tokenize(text: str, field: str) -> list[Token]:
    nul = text.find("\x00")
    if nul >= 0:  # no database stores one (PostgreSQL refuses them in text)
        fail(field, "\x00", nul + 1, "a filter cannot hold a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # e.g. a lone surrogate from a JSON "\ud800"
        fail(field, text[exc.start], exc.start + 1, "a filter must be valid Unicode text")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        m = _SPACE.match(text, i)
        if m:
            i = m.end()
        if i >= n:
            tokens.append(Token("end", "", n + 1))
            return tokens
        c, col = text[i], i + 1
        if c in "(),":
            tokens.append(Token("punct", c, col))
            i += 1
        elif c in "<>=!":
            op = next((o for o in OPS if text.startswith(o, i)), None)
            if op is None:
                fail(field, c, col, "expected a comparison operator")
            tokens.append(Token("op", op, col, OPS[op]))
            i += len(op)
        elif c in "'\"":
            value, end = _read_quoted(text, i, field)
            tokens.append(Token("string", text[i:end], col, value))
            i = end
        elif c in "-.0123456789":
            i = _number(text, i, field, tokens)
        elif _WORD.match(text, i):
            i = _path(text, i, field, tokens)
        else:
            fail(field, c, col, "expected a field, a value, an operator or a parenthesis")


def _number(text: str, i: int, field: str, tokens: list[Token]) -> int:
    m = _NUMBER.match(text, i)
    end = m.end() if m else i + 1
    while end < len(text) and (text[end].isalnum() or text[end] in "_.`"):
        end += 1
    word = text[i:end]
    if m is None or m.end() != end:
        fail(field, word, i + 1, "expected a number such as 3, -0.5 or 1e-3")
    try:
        value: int | float = int(word) if word.strip("-").isdigit() else float(word)
    except ValueError:  # more digits than int() converts
        fail(field, word, i + 1, "this number is too long")
    if value in (float("inf"), float("-inf")):
        fail(field, word, i + 1, "this number is out of range")
    tokens.append(Token("number", word, i + 1, value))
    return end


def _path(text: str, i: int, field: str, tokens: list[Token]) -> int:
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
            fail(field, text[k : k + 1], k + 1, "expected a key after '.'")
        segments.append((seg.group(), False))
        j = seg.end()
    word = text[i:j]
    if len(segments) == 1 and word.lower() in KEYWORDS:
        tokens.append(Token("keyword", word, i + 1, word.lower()))
    else:
        tokens.append(Token("path", word, i + 1, tuple(segments)))
    return j
