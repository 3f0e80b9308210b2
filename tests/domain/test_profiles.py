"""Profile diffs on known data (the wine table), the drift statistics, and check_profile."""

from __future__ import annotations

import bisect
import copy
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_wine

from cairn.client.profiling import profile_dataframe
from cairn.domain.errors import Invalid
from cairn.domain.profiles import (
    check_profile,
    diff_profiles,
    numeric_ks,
    numeric_psi,
    profile_columns,
)

CULTIVARS = {0: "barolo", 1: "grignolino", 2: "barbera"}


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    frame: pd.DataFrame = load_wine(as_frame=True).frame
    return frame


@pytest.fixture(scope="module")
def wine_profile(wine: pd.DataFrame) -> dict[str, Any]:
    return profile_dataframe(wine)


def by_column(diff: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["column"]: c for c in diff["columns"]}


# ---------------------------------------------------------------------------------------
# the diff on the wine table


def test_an_unchanged_copy_has_no_drift(wine: pd.DataFrame, wine_profile: dict[str, Any]) -> None:
    diff = diff_profiles(wine_profile, profile_dataframe(wine.copy()))

    assert diff["rows"] == {"old": 178, "new": 178, "change": 0}
    assert diff["schema"] == {"added": [], "removed": [], "changed": []}
    assert [c["column"] for c in diff["columns"]] == list(wine.columns)
    for column in diff["columns"]:
        assert column["psi"] == 0.0
        assert column["ks"] == 0.0
        assert column["drifted"] is False
        assert column["null_rate"] == {"old": 0.0, "new": 0.0}
        assert column["mean"]["old"] == column["mean"]["new"]


def test_rows_added_from_the_same_table_is_a_small_shift(
    wine: pd.DataFrame, wine_profile: dict[str, Any]
) -> None:
    grown = pd.concat([wine, wine.sample(30, random_state=7)], ignore_index=True)

    diff = diff_profiles(wine_profile, profile_dataframe(grown))

    assert diff["rows"] == {"old": 178, "new": 208, "change": 30}
    assert diff["schema"] == {"added": [], "removed": [], "changed": []}
    for column in diff["columns"]:
        assert 0.0 <= column["psi"] < 0.1, column
        assert 0.0 <= column["ks"] < 0.08, column
        assert column["drifted"] is False
    assert any(column["psi"] > 0 for column in diff["columns"])


def test_one_column_scaled_tenfold_is_the_only_one_drifted(
    wine: pd.DataFrame, wine_profile: dict[str, Any]
) -> None:
    scaled = wine.copy()
    scaled["proline"] = scaled["proline"] * 10

    columns = by_column(diff_profiles(wine_profile, profile_dataframe(scaled)))

    proline = columns.pop("proline")
    assert proline["drifted"] is True
    assert proline["psi"] > 5
    assert proline["ks"] == pytest.approx(1.0)
    assert proline["mean"]["new"] == pytest.approx(10 * proline["mean"]["old"])
    assert all(not c["drifted"] and c["psi"] == 0.0 for c in columns.values())


def test_a_small_shift_is_measured_but_not_drifted(
    wine: pd.DataFrame, wine_profile: dict[str, Any]
) -> None:
    nudged = wine.copy()
    nudged["alcohol"] = nudged["alcohol"] + 0.01 * nudged["alcohol"].std()

    alcohol = by_column(diff_profiles(wine_profile, profile_dataframe(nudged)))["alcohol"]

    assert 0 < alcohol["psi"] < 0.2
    assert 0 < alcohol["ks"] < 0.1
    assert alcohol["drifted"] is False


def test_schema_changes_are_named(wine: pd.DataFrame, wine_profile: dict[str, Any]) -> None:
    changed = wine.drop(columns=["hue"]).assign(vintage=2024)
    changed["magnesium"] = changed["magnesium"].astype("int64")

    diff = diff_profiles(wine_profile, profile_dataframe(changed))

    assert diff["schema"] == {
        "added": ["vintage"],
        "removed": ["hue"],
        "changed": [{"column": "magnesium", "old_dtype": "float64", "new_dtype": "int64"}],
    }
    names = [c["column"] for c in diff["columns"]]
    assert "hue" not in names and "vintage" not in names
    assert names == [c for c in changed.columns if c != "vintage"]
    # The values did not change, only their type: no drift.
    assert by_column(diff)["magnesium"]["psi"] == 0.0


def test_a_shifted_category_mix_drifts(wine: pd.DataFrame) -> None:
    labelled = wine.assign(cultivar=wine["target"].map(CULTIVARS))
    barolo = labelled[labelled["cultivar"] == "barolo"]
    more_barolo = pd.concat([labelled, barolo, barolo], ignore_index=True)

    diff = diff_profiles(profile_dataframe(labelled), profile_dataframe(more_barolo))

    cultivar = by_column(diff)["cultivar"]
    assert cultivar["psi"] > 0.2
    assert cultivar["ks"] is None
    assert cultivar["drifted"] is True
    assert "mean" not in cultivar
    same = diff_profiles(profile_dataframe(labelled), profile_dataframe(labelled.copy()))
    assert by_column(same)["cultivar"] == {
        "column": "cultivar",
        "psi": 0.0,
        "ks": None,
        "drifted": False,
        "null_rate": {"old": 0.0, "new": 0.0},
    }


def test_a_boolean_column_that_flips_drifts(wine: pd.DataFrame) -> None:
    old = wine.assign(strong=wine["alcohol"] > 13)
    new = wine.assign(strong=wine["alcohol"] > 12)

    strong = by_column(diff_profiles(profile_dataframe(old), profile_dataframe(new)))["strong"]

    assert strong["psi"] > 0.2 and strong["drifted"] is True


def test_values_beyond_the_top_list_do_not_read_as_drift() -> None:
    # 30 values, only 20 in each top list: the 20th and 21st trade places between two
    # samples of the same distribution, which must not look like a shift.
    rng = np.random.default_rng(1)
    values = [f"v{i:02d}" for i in range(30)]
    weights = np.linspace(2, 1, 30) / np.linspace(2, 1, 30).sum()
    old = profile_dataframe(pd.DataFrame({"c": rng.choice(values, 20_000, p=weights)}))
    new = profile_dataframe(pd.DataFrame({"c": rng.choice(values, 20_000, p=weights)}))
    assert {v for v, _ in old["columns"][0]["top"]} != {v for v, _ in new["columns"][0]["top"]}

    column = diff_profiles(old, new)["columns"][0]

    assert column["psi"] < 0.05 and column["drifted"] is False


def test_nulls_appear_in_the_null_rate(wine: pd.DataFrame, wine_profile: dict[str, Any]) -> None:
    holed = wine.copy()
    holed.loc[: 177 // 2, "ash"] = np.nan

    ash = by_column(diff_profiles(wine_profile, profile_dataframe(holed)))["ash"]

    assert ash["null_rate"] == {"old": 0.0, "new": pytest.approx(89 / 178)}


def test_a_column_that_becomes_empty_or_changes_kind_is_drifted(wine: pd.DataFrame) -> None:
    old = profile_dataframe(wine)
    new = profile_dataframe(wine.assign(ash=np.nan, hue=wine["hue"].astype(str)))

    columns = by_column(diff_profiles(old, new))

    assert columns["ash"]["psi"] is None and columns["ash"]["drifted"] is True
    assert columns["hue"]["psi"] is None and columns["hue"]["drifted"] is True
    assert "mean" not in columns["hue"]


def test_thresholds_are_parameters(wine: pd.DataFrame, wine_profile: dict[str, Any]) -> None:
    nudged = profile_dataframe(wine.assign(alcohol=wine["alcohol"] + 0.05))

    strict = by_column(diff_profiles(wine_profile, nudged, psi_threshold=0.0001))["alcohol"]
    lax = by_column(diff_profiles(wine_profile, nudged, psi_threshold=9, ks_threshold=1.1))

    assert strict["drifted"] is True
    assert lax["alcohol"]["drifted"] is False


def test_a_side_that_is_not_a_table(wine_profile: dict[str, Any]) -> None:
    assert diff_profiles(None, wine_profile) == {
        "rows": {"old": None, "new": 178, "change": None},
        "schema": None,
        "columns": [],
    }
    assert diff_profiles(wine_profile, None)["rows"] == {"old": 178, "new": None, "change": None}
    assert diff_profiles(None, None)["columns"] == []


def test_the_diff_is_plain_json(wine: pd.DataFrame, wine_profile: dict[str, Any]) -> None:
    odd = wine.assign(ash=np.nan, hue=np.inf, when=pd.Timestamp("2024-01-01"))
    diff = diff_profiles(wine_profile, profile_dataframe(odd))
    json.dumps(diff, allow_nan=False)


def test_profile_columns_keeps_the_order(wine_profile: dict[str, Any]) -> None:
    columns = profile_columns(wine_profile)
    assert list(columns) == [c["name"] for c in wine_profile["columns"]]
    assert columns["proline"]["kind"] == "numeric"


# ---------------------------------------------------------------------------------------
# the statistics on hand-made quantiles

UNIFORM = [i / 100 for i in range(101)]


def test_psi_and_ks_of_identical_sketches_are_exactly_zero() -> None:
    for quantiles in (UNIFORM, [0.0] * 101, [0.0] * 50 + [1.0] * 51, [-1e308] + [1e308] * 100):
        assert numeric_psi(quantiles, quantiles) == 0.0
        assert numeric_ks(quantiles, quantiles) == 0.0


def test_ks_of_disjoint_sketches_is_one() -> None:
    shifted = [q + 2 for q in UNIFORM]
    assert numeric_ks(UNIFORM, shifted) == 1.0
    assert numeric_ks([0.0] * 101, [1.0] * 101) == 1.0


def test_ks_sees_the_gap_just_below_a_point_mass() -> None:
    # The old CDF reaches 1 at x = 1; the new one jumps from 0 to 1 there, so the gap
    # approaches 1 from the left although both CDFs equal 1 at x = 1 itself.
    assert numeric_ks(UNIFORM, [1.0] * 101) == 1.0


def test_ks_of_a_half_shift() -> None:
    half = [q + 0.5 for q in UNIFORM]
    assert numeric_ks(UNIFORM, half) == pytest.approx(0.5)


def _cdf_by_definition(quantiles: list[float], x: float, *, strictly_below: bool) -> float:
    """P(X <= x) (or P(X < x)) on the piecewise-linear CDF through (q[i], i / (n - 1)),
    read off by bisection, point by point."""
    last = len(quantiles) - 1
    if strictly_below:
        i = bisect.bisect_left(quantiles, x)
        if i == 0:
            return 0.0
        if i > last:
            return 1.0
        if quantiles[i] == x:
            return i / last
        low, high, i = quantiles[i - 1], quantiles[i], i - 1
    else:
        i = bisect.bisect_right(quantiles, x) - 1
        if i < 0:
            return 0.0
        if i == last:
            return 1.0
        if quantiles[i] == x:
            return i / last
        low, high = quantiles[i], quantiles[i + 1]
    return (i + min(1.0, (x - low) / (high - low))) / last


sketches = st.lists(
    st.sampled_from([-3.0, -1.5, 0.0, 0.25, 1.0, 2.5, 7.0]) | st.floats(-10, 10),
    min_size=11,
    max_size=11,
).map(sorted)


@given(sketches, sketches)
def test_ks_is_the_largest_gap_at_and_just_below_every_quantile(
    old: list[float], new: list[float]
) -> None:
    expected = max(
        abs(
            _cdf_by_definition(old, x, strictly_below=below)
            - _cdf_by_definition(new, x, strictly_below=below)
        )
        for x in {*old, *new}
        for below in (False, True)
    )
    assert numeric_ks(old, new) == expected


def test_psi_of_a_known_shift() -> None:
    # All of the new mass lies above the old 90th percentile: the last bin holds it all.
    expected = 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + 0.9 * math.log(1 / 0.1)
    assert numeric_psi(UNIFORM, [q + 5 for q in UNIFORM]) == pytest.approx(expected)


def test_psi_with_a_point_mass_in_the_old_deciles() -> None:
    # Half the old values are 0: the deciles 10..50 merge into one edge.
    old = [0.0] * 51 + [i / 50 for i in range(1, 51)]
    assert numeric_psi(old, old) == 0.0
    assert numeric_psi(old, UNIFORM) > 0.2
    assert numeric_psi(old, [0.0] * 52 + [i / 49 for i in range(1, 50)]) < 0.01


# ---------------------------------------------------------------------------------------
# check_profile


def test_a_profile_from_profile_dataframe_passes(wine_profile: dict[str, Any]) -> None:
    assert check_profile(wine_profile) == wine_profile
    assert check_profile(json.loads(json.dumps(wine_profile))) == wine_profile


def test_check_profile_returns_a_clean_copy(wine_profile: dict[str, Any]) -> None:
    received = copy.deepcopy(wine_profile)
    received["columns"][0]["mean"] = 13  # an integer where a float is expected

    checked = check_profile(received)

    assert checked["columns"][0]["mean"] == 13.0
    assert type(checked["columns"][0]["mean"]) is float
    assert checked is not received


def _spoil(profile: dict[str, Any], column: str, key: str, value: Any) -> dict[str, Any]:
    spoiled = copy.deepcopy(profile)
    target = next(c for c in spoiled["columns"] if c["name"] == column)
    if value is ...:
        del target[key]
    else:
        target[key] = value
    return spoiled


@pytest.fixture(scope="module")
def mixed_profile(wine: pd.DataFrame) -> dict[str, Any]:
    return profile_dataframe(wine.assign(cultivar=wine["target"].map(CULTIVARS)))


@pytest.mark.parametrize(
    ("column", "key", "value", "message"),
    [
        ("alcohol", "quantiles", [1.0] * 5, "quantiles must be a list of exactly 101 numbers"),
        ("alcohol", "quantiles", [1.0] * 100 + [float("nan")], "quantiles[100] must be a finite"),
        ("alcohol", "quantiles", [2.0] + [1.0] * 100, "quantiles must not decrease"),
        (
            "alcohol",
            "quantiles",
            "1,2,3",
            "quantiles must be a list of exactly 101 numbers, got str",
        ),
        ("alcohol", "mean", float("inf"), "mean must be a finite number"),
        ("alcohol", "mean", "13", "mean must be a number, got str"),
        ("alcohol", "std", -1.0, "std must not be negative"),
        ("alcohol", "min", 99.0, "min is greater than max"),
        ("alcohol", "count", -1, "count must be a non-negative integer"),
        ("alcohol", "count", True, "count must be a non-negative integer"),
        ("alcohol", "nulls", 3, "count + nulls is 181, not rows (178)"),
        ("alcohol", "kind", "text", "kind must be one of numeric, boolean, datetime, categorical"),
        ("alcohol", "histogram", {"edges": [0.0], "counts": []}, "histogram counts must be"),
        (
            "alcohol",
            "histogram",
            {"edges": [0.0] * 1002, "counts": [0] * 1001},
            "counts must be a list of 1 to 1,000 integers",
        ),
        ("alcohol", "histogram", {"edges": [0.0, 1.0], "counts": [1, 2]}, "edges must be a list"),
        ("alcohol", "quantiles", ..., "missing quantiles"),
        ("alcohol", "colour", "red", "unknown key(s) 'colour'"),
        ("alcohol", "infinities", 1000, "infinities (1,000) exceed count (178)"),
        ("alcohol", "name", "x" * 1001, "name is 1,001 characters; the limit is 1,000"),
        ("alcohol", "name", 7, "name must be a string, got int"),
        ("alcohol", "name", "hue", "the name 'hue' appears twice"),
        ("alcohol", "dtype", None, "dtype must be a string, got null"),
        ("cultivar", "top", [["barolo", 59]] * 2, "the value 'barolo' appears twice"),
        ("cultivar", "top", [["x", 1]] * 101, "top holds at most 100 values"),
        ("cultivar", "top", [["barolo", 500]], "the counts add up to 500, more than count (178)"),
        ("cultivar", "top", [["barolo"]], "top[0] must be a [value, count] pair"),
        ("cultivar", "top", [[7, 1]], "top[0] value must be a string, got int"),
        ("cultivar", "top", [["y" * 1001, 1]], "top[0] value is 1,001 characters"),
        ("cultivar", "distinct", 1, "distinct must lie between"),
        ("cultivar", "quantiles", [0.0] * 101, "unknown key(s) 'quantiles'"),
    ],
)
def test_check_profile_names_what_is_wrong(
    mixed_profile: dict[str, Any], column: str, key: str, value: Any, message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        check_profile(_spoil(mixed_profile, column, key, value))
    assert message in caught.value.message
    assert f"({column!r})" in caught.value.message or key == "name"
    assert caught.value.field == "profile"


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ([], "a profile must be an object, got list"),
        ({"format": 2, "rows": 0, "columns": []}, "profile format must be 1, got 2"),
        ({"format": "1", "rows": 0, "columns": []}, "profile format must be 1, got '1'"),
        ({"rows": 0, "columns": []}, "profile: missing format"),
        ({"format": 1, "rows": 0, "columns": [], "x": 1}, "unknown key(s) 'x'"),
        ({"format": 1, "rows": 1.5, "columns": []}, "profile rows must be a non-negative integer"),
        (
            {"format": 1, "rows": 2**64, "columns": []},
            "profile rows must be a non-negative integer",
        ),
        ({"format": 1, "rows": 0, "columns": {}}, "profile columns must be a list, got dict"),
        ({"format": 1, "rows": 0, "columns": [[]]}, "profile column 0 must be an object"),
        (
            {"format": 1, "rows": 0, "columns": [{"name": str(i)} for i in range(10_001)]},
            "a profile holds at most 10,000 columns; this one has 10,001",
        ),
    ],
)
def test_check_profile_refuses_malformed_profiles(profile: Any, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        check_profile(profile)
    assert message in caught.value.message
    assert caught.value.field == "profile"


def test_check_profile_refuses_numbers_too_large_for_a_float(
    wine_profile: dict[str, Any],
) -> None:
    with pytest.raises(Invalid, match="mean must be a finite number"):
        check_profile(_spoil(wine_profile, "alcohol", "mean", 10**400))
