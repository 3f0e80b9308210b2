"""Profiles computed from frames, arrays and files: the statistics, odd values, the format."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from cairn.client.profiling import (
    is_tabular_file,
    profile_array,
    profile_dataframe,
    profile_table_file,
)
from cairn.domain.errors import Invalid
from cairn.domain.profiles import check_profile, diff_profiles, profile_columns


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    frame: pd.DataFrame = load_wine(as_frame=True).frame
    return frame


def column(profile: dict[str, Any], name: str) -> dict[str, Any]:
    return profile_columns(profile)[name]


def test_numeric_statistics_match_numpy(wine: pd.DataFrame) -> None:
    profile = profile_dataframe(wine)

    assert profile["format"] == 1 and profile["rows"] == 178
    assert [c["name"] for c in profile["columns"]] == list(wine.columns)
    for name in wine.columns:
        values = wine[name].to_numpy(dtype=float)
        stats = column(profile, name)
        assert stats["kind"] == "numeric"
        assert stats["dtype"] == str(wine[name].dtype)
        assert (stats["count"], stats["nulls"]) == (178, 0)
        assert stats["min"] == values.min() and stats["max"] == values.max()
        assert stats["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert stats["std"] == pytest.approx(values.std(), rel=1e-12)
        assert stats["quantiles"] == np.quantile(values, np.linspace(0, 1, 101)).tolist()
        counts, edges = np.histogram(values, bins=20)
        assert stats["histogram"] == {"edges": edges.tolist(), "counts": counts.tolist()}
        assert "infinities" not in stats
    assert check_profile(profile) == profile


def test_infinities_are_counted_but_kept_out_of_the_statistics() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, np.inf, -np.inf, 3.0]})

    x = column(profile_dataframe(frame), "x")

    assert (x["count"], x["nulls"], x["infinities"]) == (4, 1, 2)
    assert (x["min"], x["max"], x["mean"]) == (1.0, 3.0, 2.0)
    assert x["quantiles"][0] == 1.0 and x["quantiles"][50] == 2.0 and x["quantiles"][100] == 3.0
    assert sum(x["histogram"]["counts"]) == 2


def test_a_constant_column_has_one_bin() -> None:
    x = column(profile_dataframe(pd.DataFrame({"x": [4, 4, 4]})), "x")
    assert x["histogram"] == {"edges": [4.0, 4.0], "counts": [3]}
    assert x["std"] == 0.0 and x["quantiles"] == [4.0] * 101


ODD_FRAME = {
    "nan_and_inf": [1.0, np.nan, np.inf, -np.inf],
    "all_null": [np.nan] * 4,
    "all_inf": [np.inf, -np.inf, np.inf, np.inf],
    "none_objects": [None] * 4,
    "flag": [True, False, True, True],
    "nullable_flag": pd.array([True, None, False, None], dtype="boolean"),
    "nullable_int": pd.array([1, None, 3, 4], dtype="Int64"),
    "when": pd.to_datetime(["2024-01-01", None, "2024-03-01", "2024-02-01"]),
    "when_utc": pd.to_datetime(["2024-01-01", None, None, None]).tz_localize("UTC"),
    "never": pd.to_datetime([None] * 4),
    "category": pd.Categorical(["a", None, "a", "b"], categories=["a", "b", "unused"]),
    "text": ["x", None, "y", "x"],
    "mixed": [1, "1", 2.5, None],
    "unhashable": [[1], [1], {"a": 1}, None],
    "huge": [1e308, -1e308, 1.7e308, -1.7e308],
    "duration": pd.to_timedelta([1, 2, 3, None], unit="s"),
}


@pytest.mark.parametrize("rows", [4, 0])
def test_odd_values_make_plain_json_that_passes_check_profile(rows: int) -> None:
    frame = pd.DataFrame(ODD_FRAME).iloc[:rows]

    profile = profile_dataframe(frame)

    text = json.dumps(profile, allow_nan=False)
    assert check_profile(json.loads(text)) == profile
    assert [c["name"] for c in profile["columns"]] == list(ODD_FRAME)
    assert profile["rows"] == rows
    assert diff_profiles(profile, profile)["columns"]  # the diff copes with all of them


def test_odd_values_are_profiled_as_documented() -> None:
    profile = profile_dataframe(pd.DataFrame(ODD_FRAME))
    kinds = {c["name"]: c["kind"] for c in profile["columns"]}

    assert kinds == {
        "nan_and_inf": "numeric",
        "all_null": "numeric",
        "all_inf": "numeric",
        "none_objects": "categorical",
        "flag": "boolean",
        "nullable_flag": "boolean",
        "nullable_int": "numeric",
        "when": "datetime",
        "when_utc": "datetime",
        "never": "datetime",
        "category": "categorical",
        "text": "categorical",
        "mixed": "categorical",
        "unhashable": "categorical",
        "huge": "numeric",
        "duration": "categorical",
    }
    all_null = column(profile, "all_null")
    assert all_null["count"] == 0 and all_null["nulls"] == 4
    assert all_null["mean"] is None and all_null["quantiles"] is None
    assert all_null["histogram"] is None
    assert column(profile, "all_inf")["infinities"] == 4
    assert column(profile, "all_inf")["quantiles"] is None
    assert column(profile, "flag")["top"] == [["True", 3], ["False", 1]]
    assert column(profile, "nullable_flag")["nulls"] == 2
    assert column(profile, "nullable_int")["mean"] == pytest.approx(8 / 3)
    when = column(profile, "when")
    assert (when["min"], when["max"], when["nulls"]) == (
        "2024-01-01T00:00:00",
        "2024-03-01T00:00:00",
        1,
    )
    assert "histogram" not in when
    assert column(profile, "when_utc")["max"] == "2024-01-01T00:00:00+00:00"
    assert column(profile, "never")["min"] is None
    category = column(profile, "category")
    assert category["distinct"] == 2 and category["top"] == [["a", 2], ["b", 1]]
    assert column(profile, "mixed")["top"] == [["1", 2], ["2.5", 1]]  # 1 and "1" read alike
    assert column(profile, "unhashable")["top"] == [["[1]", 2], ["{'a': 1}", 1]]
    huge = column(profile, "huge")
    assert huge["min"] == -1.7e308 and huge["max"] == 1.7e308
    assert huge["mean"] is None  # the sum overflows
    assert len(huge["histogram"]["edges"]) == 21 and sum(huge["histogram"]["counts"]) == 4


def test_top_values_are_the_most_frequent_then_by_value() -> None:
    values = [f"v{i:03d}" for i in range(100)] * 2 + ["z"] * 5 + ["y"] * 5 + ["a"] * 3
    profile = profile_dataframe(pd.DataFrame({"c": values}))

    c = column(profile, "c")

    assert c["distinct"] == 103
    assert c["top"][:3] == [["y", 5], ["z", 5], ["a", 3]]
    assert c["top"][3:] == [[f"v{i:03d}", 2] for i in range(17)]
    assert len(c["top"]) == 20


def test_long_values_and_names_are_cut_to_the_limit() -> None:
    long = "x" * 5000
    frame = pd.DataFrame({long: [long + "a", long + "b", "c"]})

    profile = profile_dataframe(frame)

    c = profile["columns"][0]
    assert c["name"] == "x" * 1000
    assert c["top"] == [["x" * 1000, 2], ["c", 1]]  # equal once cut: one value
    check_profile(profile)


def test_repeated_column_names_are_numbered() -> None:
    frame = pd.DataFrame([[1, 2, 3]], columns=["a", "a", "a.1"])
    names = [c["name"] for c in profile_dataframe(frame)["columns"]]
    assert names == ["a", "a.1", "a.1.1"]


def test_a_series_is_one_column() -> None:
    assert profile_dataframe(pd.Series([1, 2], name="y"))["columns"][0]["name"] == "y"
    assert profile_dataframe(pd.Series([1, 2]))["columns"][0]["name"] == "value"


def test_profile_dataframe_refuses_what_is_not_a_frame() -> None:
    with pytest.raises(Invalid, match="expected a pandas DataFrame, got list") as caught:
        profile_dataframe([1, 2, 3])
    assert caught.value.field == "source"


def test_too_many_columns_are_refused() -> None:
    with pytest.raises(Invalid, match="at most 10,000 columns; this table has 10,001"):
        profile_dataframe(pd.DataFrame(np.zeros((1, 10_001))))


def test_arrays() -> None:
    assert [c["name"] for c in profile_array(np.arange(10))["columns"]] == ["value"]
    two_d = profile_array(np.arange(12.0).reshape(4, 3))
    assert [c["name"] for c in two_d["columns"]] == ["0", "1", "2"]
    assert two_d["rows"] == 4 and column(two_d, "2")["mean"] == 6.5
    records = np.array(
        [(1, 2.5, True), (2, 3.5, False)], dtype=[("a", "i4"), ("b", "f8"), ("c", "?")]
    )
    structured = profile_array(records)
    assert [(c["name"], c["kind"]) for c in structured["columns"]] == [
        ("a", "numeric"),
        ("b", "numeric"),
        ("c", "boolean"),
    ]
    assert profile_array([1.0, 2.0])["rows"] == 2
    with pytest.raises(Invalid, match="not 3-D"):
        profile_array(np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("train.csv", True),
        ("train.TSV", True),
        ("dir/part-0.parquet", True),
        ("model.pkl", False),
        ("train.csv.gz", False),
        ("csv", False),
    ],
)
def test_is_tabular_file(name: str, expected: bool) -> None:
    assert is_tabular_file(name) is expected
    assert is_tabular_file(Path(name)) is expected


def test_table_files_profile_like_the_frame(wine: pd.DataFrame, tmp_path: Path) -> None:
    expected = profile_dataframe(wine)
    wine.to_csv(tmp_path / "wine.csv", index=False)
    wine.to_csv(tmp_path / "wine.tsv", index=False, sep="\t")
    wine.to_parquet(tmp_path / "wine.parquet", index=False)

    assert profile_table_file(tmp_path / "wine.parquet") == expected
    for name in ("wine.csv", "wine.tsv"):
        from_text = profile_table_file(str(tmp_path / name))
        assert from_text is not None
        assert from_text["rows"] == expected["rows"]
        assert [(c["name"], c["dtype"], c["count"]) for c in from_text["columns"]] == [
            (c["name"], c["dtype"], c["count"]) for c in expected["columns"]
        ]
        for got, want in zip(from_text["columns"], expected["columns"], strict=True):
            assert got["quantiles"] == pytest.approx(want["quantiles"])
        assert not any(c["drifted"] for c in diff_profiles(expected, from_text)["columns"])


def test_other_files_have_no_profile(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a,b\n1,2\n")
    assert profile_table_file(tmp_path / "notes.txt") is None


def test_an_empty_csv_is_an_empty_table(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("a,b\n")
    assert profile_table_file(tmp_path / "empty.csv") == {"format": 1, "rows": 0, "columns": []}
    header_only = profile_table_file(tmp_path / "header.csv")
    assert header_only is not None
    assert header_only["rows"] == 0 and len(header_only["columns"]) == 2


def test_an_unreadable_table_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "bad.csv").write_bytes(b"a,b\n1,2\n3,4,5,6\n")
    for name in ("bad.parquet", "bad.csv"):
        with pytest.raises(Invalid, match="as a table") as caught:
            profile_table_file(tmp_path / name)
        assert caught.value.field == "source"
    with pytest.raises(FileNotFoundError):
        profile_table_file(tmp_path / "missing.csv")


@pytest.mark.parametrize("missing", ["numpy", "pandas"])
def test_without_numpy_or_pandas_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # makes the import fail
    with pytest.raises(Invalid, match="pip install numpy pandas") as caught:
        profile_array([1, 2])
    assert caught.value.field == "source"


def test_without_pyarrow_parquet_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(Invalid, match="pip install pyarrow"):
        profile_table_file(tmp_path / "x.parquet")


def test_a_million_rows_by_twenty_columns_is_quick() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(1_000_000, 20)), columns=[f"c{i}" for i in range(20)])
    frame["c1"] = rng.integers(0, 1000, size=len(frame))
    frame["c2"] = np.where(frame["c2"] > 0, "yes", "no")

    started = time.perf_counter()
    profile = profile_dataframe(frame)
    elapsed = time.perf_counter() - started

    assert profile["rows"] == 1_000_000
    assert column(profile, "c2")["distinct"] == 2
    assert elapsed < 15, f"profiling took {elapsed:.1f} s"
