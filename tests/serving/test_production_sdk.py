"""The SDK's production calls, embedded and over HTTP (the same test, both transports):
predictions from a DataFrame, arrays or dicts with request ids made here, stamped with
the version their reference named, resends that store nothing twice, feedback joined by
request id, and endpoints made from specs, dicts or ``Variant``s."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import cairn
from cairn.domain.ids import is_ulid


@pytest.fixture
def iris(sdk_uri: str) -> tuple[pd.DataFrame, LogisticRegression]:
    """iris:1 (approved, ``production``) and iris:2 (``staging``) in a fresh project."""
    x, y = load_iris(return_X_y=True, as_frame=True)
    client = cairn.client()
    models = []
    for c in (1.0, 0.05):
        model = LogisticRegression(C=c, max_iter=300).fit(x, y)
        client.register_model("iris", model, input_example=x[:3])
        models.append(model)
    cairn.approve("iris:1")
    cairn.set_alias("iris", "production", 1)
    cairn.set_alias("iris", "staging", 2)
    return x, models[0]


def test_predictions_from_a_dataframe_with_feedback(
    iris: tuple[pd.DataFrame, LogisticRegression],
) -> None:
    x, model = iris
    rows = x.iloc[:5]
    answers = model.predict(rows)
    ids = cairn.log_predictions("iris@production", rows, answers, latencies_ms=2.5)
    assert len(ids) == 5 and all(is_ulid(i) for i in ids) and len(set(ids)) == 5

    cairn.set_alias("iris", "production", 2)
    again = cairn.log_predictions(
        "iris@production", rows, answers, request_ids=ids, unit_ids=list("abcde")
    )
    assert again == ids  # a resend: stored once, still stamped version 1
    assert cairn.log_feedback(ids[:3], np.array([0, 0, 1])) == 3
    assert cairn.log_feedback(ids[4], 2) == 1

    found = cairn.list_predictions("iris")
    assert [p.request_id for p in found] == ids
    assert {p.version for p in found} == {1}
    first = found[0]
    assert first.model == "iris" and first.inputs == rows.iloc[0].to_dict()
    assert first.outputs == int(answers[0]) and first.latency_ms == 2.5
    assert first.unit_id is None and first.variant == "" and not first.shadow
    assert [p.actual for p in found] == [0, 0, 1, None, 2]
    assert first.at.tzinfo is not None


def test_arrays_dicts_and_the_window(iris: tuple[pd.DataFrame, LogisticRegression]) -> None:
    x, model = iris
    array = x.to_numpy()[:3]
    past = datetime(2026, 1, 1, tzinfo=UTC)
    probabilities = model.predict_proba(x.iloc[:3])
    old = cairn.log_predictions("iris:2", array, probabilities, at=past)
    dicts = [{"a": 1.0, "b": math.nan}, {"a": np.float32(2.5), "b": None}]
    new = cairn.log_predictions(
        "iris:2", dicts, pd.Series([0, 1]), request_ids=["x-1", "x-2"], unit_ids=["u1", None]
    )
    assert new == ["x-1", "x-2"]
    found = {p.request_id: p for p in cairn.list_predictions("iris")}
    assert found[old[0]].inputs == pytest.approx(array[0].tolist())
    assert found[old[0]].outputs == pytest.approx(probabilities[0].tolist())
    assert found[old[0]].at == past
    assert found["x-1"].inputs == {"a": 1.0, "b": None}  # a missing number is null
    assert found["x-2"].inputs == {"a": 2.5, "b": None} and found["x-1"].unit_id == "u1"
    recent = cairn.list_predictions("iris", since=past + timedelta(days=1))
    assert [p.request_id for p in recent] == ["x-1", "x-2"]
    assert [p.request_id for p in cairn.list_predictions("iris", until=past + timedelta(1))] == (
        old
    )
    assert len(cairn.list_predictions("iris", limit=2)) == 2


def test_refusals(iris: tuple[pd.DataFrame, LogisticRegression]) -> None:
    with pytest.raises(cairn.Invalid, match="outputs has 1 rows; inputs has 2"):
        cairn.log_predictions("iris:1", [{"a": 1}, {"a": 2}], [0])
    with pytest.raises(cairn.Invalid, match="request_ids has 1 items"):
        cairn.log_predictions("iris:1", [{"a": 1}, {"a": 2}], [0, 1], request_ids=["r"])
    with pytest.raises(cairn.Invalid) as raised:
        cairn.log_predictions("iris:1", {"a": [1]}, [0])
    assert raised.value.field == "inputs"
    with pytest.raises(cairn.NotFound):
        cairn.log_predictions("iris:9", [{"a": 1}], [0])
    with pytest.raises(cairn.NotFound):
        cairn.log_predictions("iris:1", [{"a": 1}], [0], endpoint="nope")
    with pytest.raises(cairn.Invalid, match="actuals has 1 values"):
        cairn.log_feedback(["a", "b"], [1])
    assert cairn.list_predictions("iris") == []


def test_endpoints(iris: tuple[pd.DataFrame, LogisticRegression]) -> None:
    created = cairn.create_endpoint(
        "churn",
        [
            "champion=iris@production:90",
            {"name": "challenger", "target": "iris@staging", "weight": 10},
            cairn.Variant("next", "iris:2", 0, shadow=True),
        ],
        description="retention",
        settings={"psi": 0.2},
    )
    assert isinstance(created, cairn.Endpoint)
    assert {v.name: (v.target, v.weight, v.shadow) for v in created.variants} == {
        "champion": ("iris@production", 90, False),
        "challenger": ("iris@staging", 10, False),
        "next": ("iris:2", 0, True),
    }
    assert cairn.get_endpoint("churn") == created
    assert [e.name for e in cairn.client().list_endpoints()] == ["churn"]
    changed = cairn.client().set_endpoint_variants("churn", ["champion=iris:1:1"])
    assert [v.name for v in changed.variants] == ["champion"]
    merged = cairn.client().update_endpoint_settings("churn", {"error_rate": 0.1})
    assert merged.settings == {"psi": 0.2, "error_rate": 0.1}

    ids = cairn.log_predictions("iris:1", [{"a": 1}], [0], endpoint="churn", variant="champion")
    found = cairn.list_predictions(endpoint="churn")
    assert [(p.request_id, p.endpoint, p.variant) for p in found] == [(ids[0], "churn", "champion")]
    with pytest.raises(cairn.AlreadyExists):
        cairn.create_endpoint("churn", ["a=iris:1:1"])
    with pytest.raises(cairn.Invalid) as raised:
        cairn.create_endpoint("other", ["a=iris:7:1"])
    assert raised.value.field == "variants[0].target"
    with pytest.raises(cairn.Invalid, match="NAME=MODEL_REF:WEIGHT"):
        cairn.create_endpoint("other", ["iris:1"])
    with pytest.raises(cairn.Invalid, match="lacks 'weight'"):
        cairn.create_endpoint("other", [{"name": "a", "target": "iris:1"}])
    with pytest.raises(cairn.NotFound):
        cairn.get_endpoint("nope")
