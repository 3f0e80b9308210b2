"""The search language: parsing, errors that point at a column, the printer, properties."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.domain.errors import Invalid
from cairn.domain.query import (
    AGGREGATES,
    And,
    Comparison,
    Expr,
    Field,
    InList,
    IsNull,
    Not,
    Or,
    OrderKey,
    Search,
    format_field,
    format_order_by,
    format_query,
    format_search,
    iso_to_ms,
    parse_order_by,
    parse_query,
    parse_search,
    time_to_ms,
)
from cairn.domain.validation import LIMITS


def metric(key: str, aggregate: str = "last") -> Field:
    return Field("metric", key, aggregate)  # type: ignore[arg-type]


def param(key: str) -> Field:
    return Field("param", key)


def tag(key: str) -> Field:
    return Field("tag", key)


def attr(name: str) -> Field:
    return Field("attribute", name)


def error(text: str) -> Invalid:
    with pytest.raises(Invalid) as caught:
        parse_query(text)
    return caught.value


# ---------------------------------------------------------------------------- parsing


def test_blank_filter_means_no_filter() -> None:
    assert parse_query(None) is None
    assert parse_query("") is None
    assert parse_query("  \n\t ") is None
    assert parse_search("   ") == Search(None, ())


def test_mlflow_filter_from_the_design() -> None:
    text = (
        "metrics.acc > 0.9 and params.lr = '0.01' and "
        "(tags.team = 'nlp' or attributes.status = 'finished')"
    )
    assert parse_query(text) == And(
        (
            Comparison(metric("acc"), ">", 0.9),
            Comparison(param("lr"), "=", "0.01"),
            Or(
                (
                    Comparison(tag("team"), "=", "nlp"),
                    Comparison(attr("status"), "=", "finished"),
                )
            ),
        )
    )


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (Comparison(metric(k), "=", 1) for k in "abc")
    assert parse_query("metrics.a = 1 or metrics.b = 1 and metrics.c = 1") == Or((a, And((b, c))))
    assert parse_query("metrics.a = 1 and metrics.b = 1 or metrics.c = 1") == Or((And((a, b)), c))
    assert parse_query("(metrics.a = 1 or metrics.b = 1) and metrics.c = 1") == And((Or((a, b)), c))
    assert parse_query("not metrics.a = 1 and metrics.b = 1") == And((Not(a), b))
    assert parse_query("not (metrics.a = 1 and metrics.b = 1)") == Not(And((a, b)))


def test_parentheses_keep_their_shape() -> None:
    a, b, c = (Comparison(metric(k), "=", 1) for k in "abc")
    assert parse_query("((metrics.a = 1))") == a
    assert parse_query("(metrics.a = 1 and metrics.b = 1) and metrics.c = 1") == And(
        (And((a, b)), c)
    )
    assert parse_query("metrics.a = 1 and metrics.b = 1 and metrics.c = 1") == And((a, b, c))


def test_keywords_and_prefixes_ignore_case() -> None:
    assert parse_query("METRICS.acc >= 1 AND Params.lr LIKE 'a%' Or TAGS.t IS NOT NULL") == Or(
        (
            And((Comparison(metric("acc"), ">=", 1), Comparison(param("lr"), "like", "a%"))),
            IsNull(tag("t"), negated=True),
        )
    )
    assert parse_query("Status = 'FINISHED'") == Comparison(attr("status"), "=", "FINISHED")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("metrics.acc", metric("acc")),
        ("metrics.acc.min", metric("acc", "min")),
        ("metrics.acc.max", metric("acc", "max")),
        ("metrics.acc.last", metric("acc")),
        ("metrics.acc.count", metric("acc", "count")),
        ("metrics.val.acc", metric("val.acc")),
        ("metrics.val.acc.max", metric("val.acc", "max")),
        ("metrics.min", metric("min")),
        ("metrics.min.max", metric("min", "max")),
        ("metrics.acc.MAX", metric("acc.MAX")),
        ("metrics.`val loss`", metric("val loss")),
        ("metrics.`val loss`.min", metric("val loss", "min")),
        ('metrics."a/b"', metric("a/b")),
        ("metrics.`acc.min`", metric("acc.min")),
        ("metrics.acc.`min`", metric("acc.min")),
        ("metrics.layer.0.grad", metric("layer.0.grad")),
        ("metric.acc", metric("acc")),
        ("params.optimizer.lr", param("optimizer.lr")),
        ("params.lr.min", param("lr.min")),
        ("param.`my param`", param("my param")),
        ("tags.`mlflow.user`", tag("mlflow.user")),
        ("tag.team", tag("team")),
        ("attributes.status", attr("status")),
        ("attribute.run_name", attr("name")),
        ("run_id", attr("id")),
        ("RUN_NAME", attr("name")),
        ("parent_id", attr("parent_id")),
        ("attributes.`duration`", attr("duration")),
    ],
)
def test_fields(text: str, field: Field) -> None:
    assert parse_query(f"{text} is null") == IsNull(field)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("'it''s'", "it's"),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'tab\\tnew\\nline\\r'", "tab\tnew\nline\r"),
        ("'back\\\\slash'", "back\\slash"),
        ("'50\\%'", "50\\%"),
        ("''", ""),
        ('""', ""),
        ("'ünïcødé ✓'", "ünïcødé ✓"),
        ("3", 3),
        ("-3", -3),
        ("0.5", 0.5),
        (".5", 0.5),
        ("-.5", -0.5),
        ("1e-3", 0.001),
        ("1E+3", 1000.0),
        ("2.", 2.0),
        ("true", True),
        ("FALSE", False),
    ],
)
def test_values(text: str, value: object) -> None:
    parsed = parse_query(f"params.p = {text}")
    assert isinstance(parsed, Comparison)
    assert parsed.value == value
    assert type(parsed.value) is type(value)


def test_in_not_in_and_null() -> None:
    assert parse_query("params.opt in ('adam', 'sgd')") == InList(param("opt"), ("adam", "sgd"))
    assert parse_query("params.opt NOT IN ('adam')") == InList(param("opt"), ("adam",), True)
    assert parse_query("not params.opt in ('adam')") == Not(InList(param("opt"), ("adam",)))
    assert parse_query("metrics.acc in (1, 2.5, -3)") == InList(metric("acc"), (1, 2.5, -3))
    assert parse_query("end_time is null") == IsNull(attr("end_time"))
    assert parse_query("tags.t is not null") == IsNull(tag("t"), negated=True)


def test_operators() -> None:
    for written, op in [
        ("=", "="),
        ("!=", "!="),
        ("<>", "!="),
        ("<", "<"),
        ("<=", "<="),
        (">", ">"),
        (">=", ">="),
    ]:
        assert parse_query(f"metrics.a{written}1") == Comparison(metric("a"), op, 1)  # type: ignore[arg-type]
    assert parse_query("name ilike '%Sweep%'") == Comparison(attr("name"), "ilike", "%Sweep%")


def test_times_and_statuses() -> None:
    assert parse_query("start_time >= '2024-05-01'") == Comparison(
        attr("start_time"), ">=", "2024-05-01"
    )
    assert iso_to_ms("1970-01-01T00:00:01Z") == 1000
    assert iso_to_ms("2024-05-01") == 1_714_521_600_000
    assert iso_to_ms("2024-05-01T02:00:00+02:00") == 1_714_521_600_000
    assert iso_to_ms("nope") is None
    assert time_to_ms("2024-05-01") == 1_714_521_600_000
    assert time_to_ms(5) == 5
    assert parse_query("status in ('RUNNING', 'killed')") == InList(
        attr("status"), ("RUNNING", "killed")
    )


def test_order_by_clause_in_a_filter() -> None:
    search = parse_search("metrics.acc > 0.9 order by metrics.acc desc, start_time")
    assert search.where == Comparison(metric("acc"), ">", 0.9)
    assert search.order_by == (
        OrderKey(metric("acc"), descending=True),
        OrderKey(attr("start_time")),
    )
    assert parse_search("ORDER BY params.p ASC") == Search(None, (OrderKey(param("p")),))


def test_parse_order_by() -> None:
    expected = [
        OrderKey(metric("m1"), True),
        OrderKey(attr("start_time")),
        OrderKey(param("p1")),
    ]
    assert parse_order_by(["metrics.m1 desc", "start_time", "params.p1 asc"]) == expected
    assert parse_order_by("metrics.m1 DESC, start_time,params.p1 asc") == expected
    assert parse_order_by(["metrics.m1 desc, start_time", "", "params.p1"]) == expected
    assert parse_order_by(None) == []
    assert parse_order_by([]) == []
    assert parse_order_by(["metrics.`val loss`.min desc"]) == [
        OrderKey(metric("val loss", "min"), True)
    ]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "column", "token", "reason"),
    [
        ("metrics.acc xyz 0.9", 13, "xyz", "expected a comparison operator"),
        ("metrics.acc > 0.9 and params.lr xyz '1'", 33, "xyz", "comparison operator"),
        ("metrics.acc >", 14, "", "expected a value"),
        ("metrics.acc > 0.9 and", 22, "", "expected a field"),
        ("metrics.acc > 0.9 metrics.b > 1", 19, "metrics.b", "expected 'and', 'or'"),
        ("(metrics.acc > 0.9", 19, "", "expected ')'"),
        ("metrics.acc > 0.9)", 18, ")", "expected 'and', 'or'"),
        ("metrics.acc > 'high'", 15, "'high'", "compares with numbers"),
        ("metrics.acc like 'a%'", 13, "like", "matches text"),
        ("params.lr = 'abc", 13, "'", "never closed"),
        ("params.lr = null", 13, "null", "is null"),
        ("params.lr in 'a'", 14, "'a'", "expected '('"),
        ("params.lr in ('a' 'b')", 19, "'b'", "expected ',' or ')'"),
        ("params.lr in ()", 15, ")", "expected a value"),
        ("params.lr is nul", 14, "nul", "'null'"),
        ("params.lr not like 'a'", 15, "like", "expected 'in'"),
        ("params. = 1", 8, " ", "expected a key"),
        ("params.lr # 1", 11, "#", ""),
        ("params.lr ! 1", 11, "!", "comparison operator"),
        ("params.lr = 1abc", 13, "1abc", "expected a number"),
        ("params.lr = -", 13, "-", "expected a number"),
        ("params.lr < true", 13, "true", "true and false"),
        ("params.lr like 5", 16, "5", "quoted pattern"),
        ("params.lr like 'a\\\\'", 16, "'a\\\\'", "lone backslash"),
        ("status = 'done'", 10, "'done'", "status is one of"),
        ("name = 3", 8, "3", "quoted string"),
        ("start_time > '2024-13-45'", 14, "'2024-13-45'", "ISO date"),
        ("duration > '5'", 12, "'5'", "compares with numbers"),
        ("metrics.`` > 1", 1, "metrics.``", "key is empty"),
        ("foo.bar = 1", 1, "foo.bar", "unknown field"),
        ("`status` = 'x'", 1, "`", ""),
        ("params.p = 'a' order by start_time", 16, "order", "expected 'and', 'or'"),
        ("params.p = " + "9" * 5000, 12, "9" * 5000, "too long"),
        ("params.p = 1e999", 12, "1e999", "out of range"),
        ("not not params.p = 1", 5, "not", "expected a field"),
        ("params.p = 'a\x00'", 14, "\x00", "NUL"),
        ("params.p = '\ud800'", 13, "\ud800", "valid Unicode"),
    ],
)
def test_errors_point_at_the_column(text: str, column: int, token: str, reason: str) -> None:
    exc = error(text)
    assert exc.field == "filter"
    assert exc.details["column"] == column, exc.message
    assert exc.details["token"] == token
    assert reason in exc.message
    shown = "end of filter" if not token else repr(token) if not token.isprintable() else token[:20]
    assert f"at column {column}" in exc.message and shown in exc.message


def test_error_message_shape() -> None:
    exc = error("metrics.acc > 0.9 and xyz")
    assert exc.message.startswith("unexpected 'xyz' at column 23: unknown attribute 'xyz'")
    assert "start_time" in exc.message and "status" in exc.message  # lists valid ones
    assert exc.to_dict()["details"] == {"column": 23, "token": "xyz", "field": "filter"}


def test_unknown_attribute_names_it_and_lists_valid_ones() -> None:
    exc = error("attributes.colour = 'red'")
    assert "unknown attribute 'colour'" in exc.message
    for name in ("author", "duration", "end_time", "experiment", "id", "name", "parent_id"):
        assert name in exc.message


def test_nesting_is_limited() -> None:
    exc = error("(" * 200 + "metrics.a = 1" + ")" * 200)
    assert "nest deeper" in exc.message
    assert parse_query("(" * 60 + "metrics.a = 1" + ")" * 60) == Comparison(metric("a"), "=", 1)


def test_filter_length_limit() -> None:
    limit = LIMITS["search_filter_length"]
    exc = error("metrics.a = 1 or " * (limit // 10))
    assert exc.field == "filter"
    assert exc.details["limit"] == "search_filter_length"
    text = " or ".join(["metrics.a = 1"] * 500)
    assert len(text) < limit and isinstance(parse_query(text), Or)


def test_order_by_errors() -> None:
    with pytest.raises(Invalid) as caught:
        parse_order_by(["start_time", "metrics.acc sideways"])
    exc = caught.value
    assert exc.field == "order_by"
    assert exc.details == {"column": 13, "token": "sideways", "item": 1, "field": "order_by"}
    assert "expected 'asc', 'desc'" in exc.message
    with pytest.raises(Invalid) as caught:
        parse_order_by("start_time desc, colour")
    assert caught.value.details["column"] == 18
    assert "unknown attribute 'colour'" in caught.value.message
    with pytest.raises(Invalid) as caught:
        parse_order_by("start_time,")
    assert "end of order by" in caught.value.message
    with pytest.raises(Invalid) as caught:
        parse_search("metrics.a > 1 order by")
    assert caught.value.field == "filter" and caught.value.details["column"] == 23
    with pytest.raises(Invalid) as caught:
        parse_search("metrics.a > 1 order metrics.a")
    assert "expected 'by'" in caught.value.message


# ---------------------------------------------------------------------------- printer


@pytest.mark.parametrize(
    "text",
    [
        "metrics.acc > 0.9 and params.lr = '0.01' and (tags.team = 'nlp' or status = 'finished')",
        "metrics.`acc.min` < 1 or metrics.acc.min < 1",
        "metrics.`val loss`.count >= 3",
        "not (metrics.a = 1 or metrics.b != -2.5e-07)",
        "(metrics.a = 1 and metrics.b = 2) and metrics.c = 3",
        "params.p not in ('a', 1, true) and tags.t is not null",
        "params.`it's` = 'it\\'s \\\\ \\n'",
        "start_time >= '2024-05-01T00:00:00Z' and duration < 60",
    ],
)
def test_round_trip_of_text(text: str) -> None:
    expr = parse_query(text)
    assert expr is not None
    printed = format_query(expr)
    assert parse_query(printed) == expr
    assert format_query(parse_query(printed)) == printed  # type: ignore[arg-type]


def test_printer_is_canonical() -> None:
    text = 'METRICS.a.last<>1 AND NOT params.`p`="x" or metric.`a b`.max in (1,2)'
    assert format_query(parse_query(text)) == (  # type: ignore[arg-type]
        "metrics.a != 1 and not params.p = 'x' or metrics.`a b`.max in (1, 2)"
    )
    assert format_field(metric("x.max")) == "metrics.`x.max`"
    assert format_field(metric("x.max", "min")) == "metrics.x.max.min"
    assert format_field(param("x.max")) == "params.x.max"
    keys = parse_order_by("metrics.a desc, start_time asc")
    assert format_order_by(keys) == "metrics.a desc, start_time"
    search = parse_search("metrics.a > 1 order by metrics.a desc")
    assert parse_search(format_search(search)) == search


def test_metric_fields_default_to_last() -> None:
    assert Field("metric", "acc") == Field("metric", "acc", "last")
    with pytest.raises(ValueError):
        Field("param", "p", "max")


# ---------------------------------------------------------------------------- properties

TOKENS = [
    *("and", "or", "not", "in", "is", "null", "like", "ilike", "true", "false"),
    *("order", "by", "asc", "desc", "AND", "Or", "NOT"),
    *("=", "!=", "<>", "<", "<=", ">", ">=", "(", ")", ",", ".", "-", "`", "'", '"', "\\"),
    *("#", "!", ";", "*", "%"),
    "metrics.acc",
    "metrics.val.acc.min",
    "metrics.`val loss`",
    'metrics."a/b".max',
    "metrics.",
    "params.lr",
    "tags.team",
    "attributes.status",
    "attributes.nope",
    "status",
    "start_time",
    "duration",
    "name",
    "foo",
    "'x'",
    "'it''s'",
    "'2024-05-01'",
    "'finished'",
    "'unterminated",
    '"dq"',
    "0",
    "-1.5",
    "1e10",
    "1e999",
    ".5",
    "3abc",
]
SEPARATORS = st.sampled_from([" ", " ", "", "\n"])
token_soup = st.lists(st.tuples(st.sampled_from(TOKENS), SEPARATORS), max_size=25).map(
    lambda parts: "".join(t + s for t, s in parts)
)


def check_only_invalid(text: str) -> None:
    for parse, field in ((parse_search, "filter"), (parse_order_by, "order_by")):
        try:
            parse(text)  # type: ignore[operator]
        except Invalid as exc:
            assert exc.field == field
            column = exc.details.get("column")
            if column is not None:
                assert 1 <= column <= len(text) + 1
                assert isinstance(exc.details["token"], str)
                assert f"at column {column}" in exc.message


@settings(deadline=None, max_examples=300)
@given(st.text())
def test_arbitrary_text_raises_only_invalid(text: str) -> None:
    check_only_invalid(text)


@settings(deadline=None, max_examples=100)
@given(st.text(st.characters(codec=None)))  # lone surrogates too, as JSON can carry
def test_text_that_is_not_unicode_is_invalid(text: str) -> None:
    check_only_invalid(text)
    check_only_invalid("params.p = '" + text + "'")


@settings(deadline=None, max_examples=300)
@given(token_soup)
def test_token_soup_raises_only_invalid(text: str) -> None:
    check_only_invalid(text)


plain_keys = st.from_regex(r"[A-Za-z0-9_]{1,4}(\.[A-Za-z0-9_]{1,4}){0,2}", fullmatch=True)
keys = st.one_of(
    plain_keys,
    st.sampled_from(["val.acc", "a.min", "min", "x.max.last", "val loss", "a/b", "`q`", "\\"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8),
)
numbers = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=10)
patterns = texts.filter(lambda s: (len(s) - len(s.rstrip("\\"))) % 2 == 0)
ORDERING = ["=", "!=", "<", "<=", ">", ">="]
statuses = st.sampled_from(["running", "finished", "failed", "killed"]).flatmap(
    lambda s: st.sampled_from([s, s.upper(), s.title()])
)
offsets = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
iso_times = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes(timezones=offsets).map(lambda d: d.isoformat()),
)


def comparisons(
    fields: st.SearchStrategy[Field], ops: list[str], values: st.SearchStrategy[object]
) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.builds(Comparison, fields, st.sampled_from(ops), values),
        st.builds(
            InList, fields, st.lists(values, min_size=1, max_size=3).map(tuple), st.booleans()
        ),
    )


metric_fields = st.builds(Field, st.just("metric"), keys, st.sampled_from(AGGREGATES))
pt_fields = st.builds(Field, st.sampled_from(["param", "tag"]), keys)
text_attrs = st.sampled_from(["id", "name", "experiment", "author", "parent_id"]).map(attr)
time_attrs = st.sampled_from(["start_time", "end_time"]).map(attr)
any_field = st.one_of(
    metric_fields,
    pt_fields,
    text_attrs,
    time_attrs,
    st.just(attr("status")),
    st.just(attr("duration")),
)
leaves = st.one_of(
    comparisons(metric_fields, ORDERING, numbers),
    comparisons(pt_fields, ["=", "!="], st.one_of(texts, numbers, st.booleans())),
    comparisons(pt_fields, ORDERING, st.one_of(texts, numbers)),
    comparisons(text_attrs, ORDERING, texts),
    comparisons(st.just(attr("status")), ["=", "!="], statuses),
    comparisons(time_attrs, ORDERING, st.one_of(numbers, iso_times)),
    comparisons(st.just(attr("duration")), ORDERING, numbers),
    st.builds(
        Comparison,
        st.one_of(pt_fields, text_attrs, st.just(attr("status"))),
        st.sampled_from(["like", "ilike"]),
        patterns,
    ),
    st.builds(IsNull, any_field, st.booleans()),
)
expressions: st.SearchStrategy[Expr] = st.recursive(
    leaves,
    lambda children: st.one_of(
        children.map(Not),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    ),
    max_leaves=8,
)


@settings(deadline=None, max_examples=300)
@given(expressions)
def test_printed_trees_parse_back_to_themselves(expr: Expr) -> None:
    printed = format_query(expr)
    parsed = parse_query(printed)
    assert parsed == expr, printed
    assert repr(parsed) == repr(expr), printed  # also tells 1 from 1.0 and True


@settings(deadline=None, max_examples=300)
@given(st.lists(st.builds(OrderKey, any_field, st.booleans()), max_size=4))
def test_printed_order_by_parses_back(keys: list[OrderKey]) -> None:
    assert parse_order_by(format_order_by(keys)) == keys
    if keys:
        assert parse_search("order by " + format_order_by(keys)).order_by == tuple(keys)
