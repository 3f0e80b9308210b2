"""The model registry through the SDK, embedded and over HTTP (a real server): models
trained for real on scikit-learn's bundled data sets (and a PyTorch MLP, and an ONNX
model from skl2onnx) come back from ``cairn.load_model`` predicting exactly the same;
semvers follow the rule; approvals, protected aliases, history, point-in-time lookups
and rollback; model cards and comparisons."""

from __future__ import annotations

import getpass
import itertools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import cairn
from cairn.blobs import LocalBlobStore

LOGREG = "sklearn.linear_model.LogisticRegression"
FOREST = "sklearn.ensemble.RandomForestClassifier"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache per test, so every load_model really fetches over its transport."""
    monkeypatch.setenv("CAIRN_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any, LogisticRegression]:
    x, y = load_iris(return_X_y=True)
    return x, y, LogisticRegression(max_iter=500).fit(x, y)


@pytest.fixture(scope="module")
def trained(iris: tuple[Any, Any, LogisticRegression]) -> dict[str, tuple[Any, Any]]:
    """name: (features, fitted model), on iris, wine (a DataFrame) and breast cancer."""
    wine = load_wine(as_frame=True)
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("forest", RandomForestClassifier(30, random_state=0))]
    )
    cancer_x, cancer_y = load_breast_cancer(return_X_y=True)
    boosted = GradientBoostingClassifier(n_estimators=30, random_state=0)
    return {
        "iris": (iris[0], iris[2]),
        "wine": (wine.data, pipeline.fit(wine.data, wine.target)),
        "cancer": (cancer_x, boosted.fit(cancer_x, cancer_y)),
    }


@pytest.fixture(scope="module")
def mlp() -> tuple[Any, Any]:
    """A small MLP trained briefly on standardised iris."""
    import torch

    torch.manual_seed(0)
    x, y = load_iris(return_X_y=True)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(60):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), targets).backward()
        optimiser.step()
    net.eval()
    return x, net


@pytest.fixture(scope="module")
def onnx_model(iris: tuple[Any, Any, LogisticRegression]) -> Any:
    from skl2onnx import to_onnx

    x, _, model = iris
    return to_onnx(model, x[:1].astype(np.float32), target_opset=17)


def blob_count(uri: str) -> int | None:
    """How many blobs an embedded store holds (None over HTTP)."""
    if uri.startswith("http"):
        return None
    return len(list(LocalBlobStore(Path(uri) / "artifacts").digests()))


def release(name: str, version: int) -> None:
    cairn.approve(f"{name}:{version}", "validated on the holdout set")
    cairn.set_alias(name, "production", version, reason="release")


def loads_the_same(
    name: str, expected: Callable[[Any], Any], data: Any, compare: Callable[[Any, Any], None]
) -> None:
    """Every way to name the released version (and the latest one) predicts the same."""
    refs = {f"{name}@production": 1, f"{name}:1": 1, f"{name}@1.0.0": 1, name: 2}
    for ref, version in refs.items():
        loaded = cairn.load_model(ref)
        assert loaded.version.version == version, ref
        compare(loaded.predict(data), expected(data))


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", ["iris", "wine", "cancer"])
def test_sklearn_models_come_back_predicting_the_same(
    sdk_uri: str, trained: dict[str, tuple[Any, Any]], name: str
) -> None:
    x, model = trained[name]
    with cairn.start_run(params={"model": type(model).__name__}) as run:
        first = run.register_model(name, model, input_example=x[:5])
    assert (first.version, first.semver, first.run_id) == (1, "1.0.0", run.id)
    assert first.flavor == "sklearn" and first.approval is cairn.Approval.PENDING
    blobs = blob_count(sdk_uri)
    again = cairn.client().register_model(name, model, input_example=x[:5])
    assert (again.version, again.semver, again.digest) == (2, "1.0.1", first.digest)
    assert blob_count(sdk_uri) == blobs  # identical bytes are stored once
    release(name, 1)

    loads_the_same(name, model.predict, x, np.testing.assert_array_equal)
    loaded = cairn.load_model(f"{name}@production")
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    if isinstance(x, pd.DataFrame):
        assert loaded.signature is not None
        assert [c["name"] for c in loaded.signature["inputs"]] == list(x.columns)
        rows = x[list(reversed(x.columns))].head(10)  # columns matched by name
        np.testing.assert_array_equal(loaded.predict(rows), model.predict(x.head(10)))
        records = x.head(10).to_dict("records")
        np.testing.assert_array_equal(loaded.predict(records), model.predict(x.head(10)))


def test_a_pytorch_mlp_comes_back_predicting_the_same(sdk_uri: str, mlp: tuple[Any, Any]) -> None:
    import torch

    x, net = mlp

    def forward(data: Any) -> Any:
        with torch.no_grad():
            return net(torch.from_numpy(data)).numpy()

    with cairn.start_run() as run:
        first = run.register_model("mlp", net, input_example=x[:4])
    assert (first.flavor, first.algorithm, first.semver) == (
        "pytorch",
        "torch.nn.Sequential",
        "1.0.0",
    )
    cairn.client().register_model("mlp", net, input_example=x[:4])
    release("mlp", 1)

    def same(got: Any, want: Any) -> None:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(got.argmax(axis=1), want.argmax(axis=1))

    loads_the_same("mlp", forward, x, same)


def test_an_onnx_model_comes_back_predicting_the_same(
    sdk_uri: str, iris: tuple[Any, Any, LogisticRegression], onnx_model: Any
) -> None:
    x, _, model = iris
    example = x[:3].astype(np.float32)
    first = cairn.client().register_model("iris-onnx", onnx_model, input_example=example)
    assert (first.flavor, first.algorithm) == ("onnx", "onnx")
    blobs = blob_count(sdk_uri)
    again = cairn.client().register_model("iris-onnx", onnx_model, input_example=example)
    assert again.digest == first.digest and blob_count(sdk_uri) == blobs
    release("iris-onnx", 1)
    loads_the_same("iris-onnx", model.predict, x, np.testing.assert_array_equal)


# ---------------------------------------------------------------------------- semver rule


def test_the_semver_rule_through_register_model(
    sdk_uri: str, iris: tuple[Any, Any, LogisticRegression]
) -> None:
    x, y, logreg = iris
    frame = pd.DataFrame(x, columns=["sl", "sw", "pl", "pw"])
    cairn.log_dataset("d", frame.assign(y=y))
    cairn.log_dataset("d", frame.assign(y=y).head(100))
    project = cairn.client().project
    tuned = LogisticRegression(C=0.5, max_iter=500).fit(x, y)
    forest = RandomForestClassifier(10, random_state=0).fit(x, y)
    by_name = LogisticRegression(max_iter=500).fit(frame, y)

    with cairn.start_run() as on_d1:
        on_d1.use_dataset("d:1")
        steps = [
            (on_d1.register_model("m", logreg, input_example=x[:5]), "1.0.0", "first version"),
            (on_d1.register_model("m", logreg, input_example=x[:5]), "1.0.1", "same signature"),
            (on_d1.register_model("m", tuned, input_example=x[:5]), "1.0.2", "same signature"),
            (
                on_d1.register_model("m", forest, input_example=x[:5]),
                "1.1.0",
                f"algorithm {LOGREG} -> {FOREST}",
            ),
        ]
    with cairn.start_run() as on_d2:
        on_d2.use_dataset("d:2", role="train")
        on_d2.use_dataset("d:1", role="validation")
        steps += [
            (
                on_d2.register_model("m", forest, input_example=x[:5]),
                "1.2.0",
                f"training data {project}/d:1 -> {project}/d:2",
            ),
            (
                on_d2.register_model("m", by_name, input_example=frame[:5]),
                "2.0.0",
                "the input/output signature changed",
            ),
            (
                on_d2.register_model("m", by_name, input_example=frame[:5], bump="minor"),
                "2.1.0",
                "minor bump asked for",
            ),
            (
                on_d2.register_model("m", by_name, input_example=frame[:5], semver="3.0.0"),
                "3.0.0",
                "set explicitly",
            ),
        ]
    for number, (version, semver, reason) in enumerate(steps, start=1):
        assert (version.version, version.semver) == (number, semver)
        assert version.bump_reason.startswith(reason), version.bump_reason
    assert steps[0][0].training_data == [f"{project}/d:1"]
    assert steps[4][0].training_data == [f"{project}/d:2"]

    with pytest.raises(cairn.Invalid) as invalid:
        cairn.client().register_model("m", logreg, bump="minor", semver="4.0.0")
    assert invalid.value.field == "bump"
    with pytest.raises(cairn.Conflict) as conflict:
        cairn.client().register_model("m", logreg, semver="3.0.0")
    assert "3.0.0" in conflict.value.message
    assert [v.semver for v in cairn.client().list_model_versions("m")][:2] == ["3.0.0", "2.1.0"]
    assert cairn.get_model_version("m@2.0.0").signature == steps[5][0].signature


# ---------------------------------------------------------------------------- approvals


def _as(sdk_uri: str, actor: str) -> str:
    """The name approvals are recorded under: the OS user embedded, the header over HTTP."""
    if sdk_uri.startswith("http"):
        cairn.client().backend.http.headers["X-Cairn-Actor"] = actor  # type: ignore[attr-defined]
        return actor
    return getpass.getuser()


def test_approvals_and_the_protected_alias(
    sdk_uri: str, iris: tuple[Any, Any, LogisticRegression]
) -> None:
    model = iris[2]
    actor = _as(sdk_uri, "lee")
    client = cairn.client()
    for _ in range(3):
        assert client.register_model("iris", model).approval is cairn.Approval.PENDING
    before = datetime.now(UTC) - timedelta(seconds=1)
    approved = cairn.approve("iris:1", "holdout accuracy 0.97")
    assert (approved.approval, approved.approval_comment, approved.approval_actor) == (
        cairn.Approval.APPROVED,
        "holdout accuracy 0.97",
        actor,
    )
    assert approved.approval_at is not None
    assert before <= approved.approval_at <= datetime.now(UTC) + timedelta(seconds=1)
    rejected = cairn.reject("iris@1.0.2", "leaks the test set")
    assert (rejected.version, rejected.approval, rejected.approval_actor) == (
        3,
        cairn.Approval.REJECTED,
        actor,
    )

    model_record = cairn.protect_alias("iris", "production")
    assert model_record.protected_aliases == ["production"]
    for version, state in ((2, "pending"), (3, "rejected")):
        with pytest.raises(cairn.Conflict) as refused:
            cairn.set_alias("iris", "production", version)
        assert "'production'" in refused.value.message and state in refused.value.message
        assert refused.value.details["approval"] == state
    assert cairn.alias_history("iris", "production") == []
    assert cairn.set_alias("iris", "production", 1).aliases == ["production"]
    with pytest.raises(cairn.Conflict, match="production"):
        cairn.reject("iris:1", "too late")
    assert cairn.get_model_version("iris:1").approval is cairn.Approval.APPROVED
    assert cairn.client().get_model("iris").aliases == {"production": 1}
    unprotected = cairn.protect_alias("iris", "production", protect=False)
    assert unprotected.protected_aliases == []
    assert cairn.set_alias("iris", "production", 2).version == 2


def test_the_sdk_over_http_says_who_approved(
    server: str, tmp_path: Path, iris: tuple[Any, Any, LogisticRegression]
) -> None:
    cairn.set_tracking_uri(server)
    cairn.set_project(f"who-{uuid.uuid4().hex[:8]}")
    try:
        version = cairn.client().register_model("iris", iris[2])
        approved = cairn.approve(str(version), "fine")
        assert approved.approval_actor == getpass.getuser()
    finally:
        cairn.set_tracking_uri(tmp_path / "unused")


# ---------------------------------------------------------------------------- aliases


def test_alias_history_point_in_time_and_rollback(
    sdk_uri: str, iris: tuple[Any, Any, LogisticRegression]
) -> None:
    model = iris[2]
    actor = _as(sdk_uri, "ana")
    client = cairn.client()
    for _ in range(3):
        client.register_model("iris", model)
    client.register_model("other", model)

    cairn.set_alias("iris", "staging", 1, reason="first")
    time.sleep(0.005)
    cairn.set_alias("iris", "staging", "iris@1.0.1")
    time.sleep(0.005)
    cairn.set_alias("iris", "staging", 3, reason="newest")
    time.sleep(0.005)
    cairn.delete_alias("iris", "staging", reason="retired")

    moves = cairn.alias_history("iris", "staging")
    assert [(m.from_version, m.to_version, m.reason) for m in moves] == [
        (None, 1, "first"),
        (1, 2, None),
        (2, 3, "newest"),
        (3, None, "retired"),
    ]
    assert {(m.model, m.alias, m.actor) for m in moves} == {("iris", "staging", actor)}
    assert all(isinstance(m, cairn.AliasMove) and m.at.tzinfo is not None for m in moves)
    assert all(a.at < b.at for a, b in itertools.pairwise(moves))

    def at(when: datetime) -> int | None:
        found = cairn.resolve_alias("iris", "staging", at=when)
        return None if found is None else found.version

    ms = timedelta(milliseconds=1)
    assert at(moves[0].at - ms) is None  # before the first move
    assert at(moves[0].at) == 1
    assert at(moves[1].at - ms) == 1  # between moves
    assert at(moves[1].at + ms) == 2
    assert at(moves[1].at.astimezone(timezone(timedelta(hours=2)))) == 2  # "+02:00" travels
    assert at(moves[3].at - ms) == 3
    assert at(moves[3].at) is None  # after the delete
    assert cairn.resolve_alias("iris", "staging") is None
    with pytest.raises(cairn.NotFound):
        cairn.load_model("iris@staging")

    cairn.set_alias("iris", "production", 1)
    with pytest.raises(cairn.Conflict, match="no earlier target"):
        cairn.rollback("iris", "production")
    time.sleep(0.005)
    cairn.set_alias("iris", "production", 2)
    time.sleep(0.005)
    back = cairn.rollback("iris", "production", reason="2 is slower")
    assert back.version == 1 and cairn.resolve_alias("iris", "production") == back
    last = cairn.alias_history("iris", "production")[-1]
    assert (last.from_version, last.to_version, last.reason, last.actor) == (
        2,
        1,
        "2 is slower",
        actor,
    )
    assert len(cairn.alias_history("iris")) == 7
    assert cairn.load_model("iris@production").version.version == 1

    with pytest.raises(cairn.Conflict, match="another model"):
        cairn.set_alias("iris", "production", "other:1")
    for bad in ("1abc", "latest", "a b"):
        with pytest.raises(cairn.Invalid) as caught:
            cairn.set_alias("iris", bad, 1)
        assert caught.value.field == "alias" and "alias" in caught.value.message
    with pytest.raises(cairn.NotFound):
        cairn.set_alias("iris", "production", 9)
    assert cairn.resolve_alias("iris", "production") == back  # nothing moved


# ---------------------------------------------------------------------------- cards


def test_model_card_compare_and_use(
    sdk_uri: str, iris: tuple[Any, Any, LogisticRegression]
) -> None:
    x, y, _ = iris
    frame = pd.DataFrame(x, columns=["sl", "sw", "pl", "pw"]).assign(y=y)
    made = []
    for c, acc in ((1.0, 0.97), (0.1, 0.91)):
        model = LogisticRegression(C=c, max_iter=500).fit(x, y)
        with cairn.start_run(params={"C": c, "max_iter": 500}) as run:
            run.log({"accuracy": acc})
            run.log_dataset("iris-data", frame, batch="2024-03")
            made.append((run.id, run.register_model("clf", model, input_example=x[:5])))
    (first_run, first), (_, second) = made
    assert second.semver == "1.0.1"

    card = cairn.model_card("clf:1")
    assert (card["model"], card["version"], card["semver"]) == ("clf", 1, "1.0.0")
    assert (card["flavor"], card["algorithm"]) == ("sklearn", LOGREG)
    assert card["signature"] == first.signature and card["signature"] is not None
    assert card["run"]["id"] == first_run
    assert card["run"]["params"] == {"C": "1.0", "max_iter": "500"}
    assert card["run"]["metrics"] == {"accuracy": 0.97}
    assert card["run"]["git"] == cairn.get_run(first_run).git  # as captured, if at all
    [used] = card["training_data"]
    assert (used["role"], used["batch"]) == ("train", "2024-03")
    assert used["dataset"].endswith("/iris-data:1")
    assert {f["path"] for f in card["files"]} == {"cairn-model.json", "model.pkl"}
    assert sum(f["size"] for f in card["files"]) == first.size
    assert card["approval"]["state"] == "pending"

    diff = cairn.compare_models("clf:1", "clf@1.0.1")
    assert diff["params"]["C"] == {"a": "1.0", "b": "0.1", "differs": True}
    assert diff["params"]["max_iter"] == {"a": "500", "b": "500", "differs": False}
    assert diff["metrics"]["accuracy"] == {"a": 0.97, "b": 0.91, "differs": True}
    assert diff["training_data"]["a"] == diff["training_data"]["b"] == [used["dataset"]]
    assert diff["signature"]["differs"] is False

    cairn.set_alias("clf", "staging", 2)
    with cairn.start_run() as evaluation:
        assert evaluation.use_model("clf@staging").version == 2
        assert evaluation.use_model("clf:2").version == 2  # recorded once
        with pytest.raises(cairn.NotFound):
            evaluation.use_model("clf:9")
