"""Signatures: inferred from DataFrames, arrays and lists of dicts, JSON-able and deterministic,
and used on predict to put columns in order."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cairn.domain.errors import Invalid
from cairn.flavors import infer_signature
from cairn.flavors.signature import conform

RECORDS = [
    {"age": 31, "income": 52_000.5, "city": "Oslo", "member": True},
    {"age": 47, "income": 61_250.0, "city": "Lyon", "member": False},
]
COLUMNS = [
    {"name": "age", "type": "int64"},
    {"name": "income", "type": "float64"},
    {"name": "city", "type": "string"},
    {"name": "member", "type": "bool"},
]


def test_dataframe_columns() -> None:
    frame = pd.DataFrame(RECORDS).assign(
        when=pd.to_datetime(["2024-01-01", "2024-02-01"]),
        size=pd.Categorical(["s", "m"]),
        small=np.array([1, 2], dtype=np.int32),
        maybe=pd.array([1, None], dtype="Int64"),
        label=pd.Series(["a", "b"], dtype=object),
        mixed=pd.Series([1, "b"], dtype=object),
    )
    signature = infer_signature(frame)
    assert signature["inputs"] == [
        *COLUMNS,
        {"name": "when", "type": "datetime"},
        {"name": "size", "type": "category"},
        {"name": "small", "type": "int32"},
        {"name": "maybe", "type": "int64"},
        {"name": "label", "type": "string"},
        {"name": "mixed", "type": "object"},
    ]
    assert signature["outputs"] is None


def test_records_match_the_dataframe_of_the_same_rows() -> None:
    assert infer_signature(RECORDS)["inputs"] == COLUMNS
    assert infer_signature(pd.DataFrame(RECORDS)) == infer_signature(RECORDS)
    ragged = [{"a": 1}, {"a": 2.5, "b": None}, {"b": "x"}]
    assert infer_signature(ragged)["inputs"] == [
        {"name": "a", "type": "float64"},
        {"name": "b", "type": "string"},
    ]


@pytest.mark.parametrize(
    ("example", "tensor"),
    [
        (np.zeros((3, 4), dtype=np.float32), {"dtype": "float32", "shape": [-1, 4]}),
        (np.arange(5), {"dtype": "int64", "shape": [-1]}),
        (np.zeros((2, 3, 8), dtype=np.uint8), {"dtype": "uint8", "shape": [-1, 3, 8]}),
        (np.array(["a", "bc"]), {"dtype": "string", "shape": [-1]}),
        ([[1.0, 2.0], [3.0, 4.0]], {"dtype": "float64", "shape": [-1, 2]}),
    ],
)
def test_arrays_give_tensors(example: Any, tensor: dict[str, Any]) -> None:
    assert infer_signature(example) == {"inputs": {"tensor": tensor}, "outputs": None}


def test_outputs() -> None:
    signature = infer_signature(np.zeros((2, 4)), np.array([0, 1]))
    assert signature["outputs"] == {"tensor": {"dtype": "int64", "shape": [-1]}}
    frame_out = infer_signature(RECORDS, pd.DataFrame({"p": [0.1, 0.9]}))
    assert frame_out["outputs"] == [{"name": "p", "type": "float64"}]


def test_deterministic_and_json_able() -> None:
    def build() -> list[dict[str, Any]]:
        return [
            infer_signature(pd.DataFrame(RECORDS), np.array([1, 0])),
            infer_signature([dict(row) for row in RECORDS]),
            infer_signature(np.ones((4, 2), dtype=np.float32), np.ones(4)),
        ]

    first, second = build(), build()
    assert first == second
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert json.loads(json.dumps(first)) == first


@pytest.mark.parametrize("example", [3.5, np.float32(1.0), {"a": [1, 2]}, object()])
def test_what_has_no_signature(example: Any) -> None:
    with pytest.raises(Invalid) as caught:
        infer_signature(example)
    assert caught.value.field == "input_example"


def test_conform_orders_and_selects_columns() -> None:
    signature = infer_signature(RECORDS)
    frame = pd.DataFrame(RECORDS)
    shuffled = frame[["member", "city", "income", "age"]].assign(extra=0)
    assert list(conform(shuffled, signature).columns) == ["age", "income", "city", "member"]
    reversed_rows = [dict(reversed(list(row.items()))) for row in RECORDS]
    pd.testing.assert_frame_equal(conform(reversed_rows, signature), frame)

    with pytest.raises(Invalid) as caught:
        conform(frame.drop(columns=["city"]), signature)
    assert caught.value.field == "data"
    assert caught.value.details["missing"] == ["city"]
    with pytest.raises(Invalid) as caught:
        conform([{"age": 3}], signature)
    assert caught.value.details["missing"] == ["income", "city", "member"]
    with pytest.raises(Invalid, match="4"):
        conform(np.zeros((2, 3)), signature)


def test_conform_checks_tensor_shapes() -> None:
    signature = infer_signature(np.zeros((1, 4)))
    assert conform(np.zeros((7, 4)), signature).shape == (7, 4)
    assert conform([[1, 2, 3, 4]], signature).shape == (1, 4)
    for bad in (np.zeros((2, 5)), np.zeros(4), pd.DataFrame(np.zeros((2, 3)))):
        with pytest.raises(Invalid) as caught:
            conform(bad, signature)
        assert caught.value.field == "data"
    assert conform(np.zeros((2, 9)), None).shape == (2, 9)
