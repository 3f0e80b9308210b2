"""docs/limits.md tells the truth: each row's number is the constant it names, and a
value just over it is refused with an error that names the limit or the field."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cairn.domain.datasets import DatasetFile, DatasetKind
from cairn.domain.errors import CairnError
from cairn.domain.production import NewPrediction, Variant
from cairn.domain.records import Batch, MetricSeries, RunBatch
from cairn.domain.validation import LIMITS

DOC = Path(__file__).parents[2] / "docs" / "limits.md"
ROW = re.compile(r"^\| (\w+) \| (-?\d+) \| `([\w.]+):([\w.]+)` \|")
ULID = "01JAAAAAAAAAAAAAAAAAAAAAAA"


def rows() -> dict[str, tuple[int, str, str]]:
    found = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            name, value, module, attr = match.groups()
            found[name] = (int(value), module, attr)
    return found


def constant(module: str, attr: str) -> int:
    obj: Any = importlib.import_module(module)
    first, _, rest = attr.partition(".")
    obj = getattr(obj, first)
    if rest:
        if isinstance(obj, dict):
            obj = obj[rest]
        elif isinstance(obj, type):  # a settings dataclass: its default
            obj = getattr(obj(), rest)
        else:
            obj = getattr(obj, rest)
    return int(obj)


# ---------------------------------------------------------------- a value just over each


def _batch(**kwargs: Any) -> Batch:
    return Batch("limits-doc-key", [RunBatch(ULID, **kwargs)])


def over_batch(limit: str) -> Callable[[int], None]:
    from cairn.services.batch_rules import check_batch

    def go(n: int) -> None:
        if limit == "batch_runs":
            check_batch(Batch("limits-doc-key", [RunBatch(ULID)] * (n + 1)))
        elif limit == "batch_points":
            series = MetricSeries([0] * (n + 1), [0] * (n + 1), [0.0] * (n + 1))
            check_batch(_batch(metrics={"loss": series}))
        elif limit == "batch_params":
            check_batch(_batch(params={f"p{i}": "v" for i in range(n + 1)}))
        else:
            check_batch(_batch(tags={f"t{i}": "v" for i in range(n + 1)}))

    return go


def over_text(limit: str, field: str) -> Callable[[int], None]:
    from cairn.domain.validation import check_text

    return lambda n: check_text("x" * (n + 1), field, limit) and None


def over_profile(what: str) -> Callable[[int], None]:
    import pandas as pd

    from cairn.client.profiling import profile_dataframe
    from cairn.domain.profiles import check_profile

    base = profile_dataframe(pd.DataFrame({"x": [1.0, 2.0, 3.0], "s": ["a", "b", "a"]}))
    check_profile(base)  # valid as it is: only the one change below makes it wrong
    numeric, categorical = base["columns"]

    def go(n: int) -> None:
        if what == "columns":
            columns = [categorical | {"name": f"c{i}"} for i in range(n + 1)]
        elif what == "text":
            columns = [categorical | {"name": "c" * (n + 1)}]
        elif what == "top":
            top = [[f"v{i}", 1] for i in range(n + 1)]
            columns = [categorical | {"distinct": n + 1, "top": top}]
        else:
            edges = [1.0 + 2.0 * i / (n + 1) for i in range(n + 2)]
            counts = [0] * (n + 1)
            counts[0] = 3
            columns = [numeric | {"histogram": {"edges": edges, "counts": counts}}]
        check_profile(base | {"columns": columns})

    return go


def over_path(n: int) -> None:
    from cairn.domain.artifact_paths import normalize_artifact_path

    normalize_artifact_path("a" * (n + 1))


def over_media_type(n: int) -> None:
    from cairn.domain.artifact_paths import check_media_type

    check_media_type("text/" + "a" * (n + 1 - len("text/")))


def over_files(n: int) -> None:
    from cairn.domain.datasets import check_files

    check_files([DatasetFile("a", None, 1)] * (n + 1), DatasetKind.REFERENCE)


def over_etag(n: int) -> None:
    from cairn.domain.datasets import check_files

    check_files([DatasetFile("a", None, 1, "e" * (n + 1))], DatasetKind.REFERENCE)


def over_dataset_text(field: str) -> Callable[[int], None]:
    from cairn.domain.datasets import check_optional_text

    return lambda n: check_optional_text("x" * (n + 1), field, n) and None


def over_role(n: int) -> None:
    from cairn.domain.datasets import check_role

    check_role("r" * (n + 1))


def over_variants(n: int) -> None:
    from cairn.domain.production import check_variants

    check_variants([Variant(f"v{i}", "m:1", 1) for i in range(n + 1)])


def over_prediction_batch(n: int) -> None:
    from cairn.services.production import PredictionService

    service = PredictionService(None, None)  # type: ignore[arg-type]  # refused before use
    service.log_predictions("p", "m:1", [NewPrediction(f"r{i}", {}) for i in range(n + 1)])


def over_record_bytes(n: int) -> None:
    from cairn.services.production import _json

    _json("x" * (n + 1), "records[0].inputs")


def over_digests(n: int) -> None:
    from cairn.services.blobs import BlobService

    BlobService(None, object()).missing([f"{i:064x}" for i in range(n + 1)])  # type: ignore[arg-type]


def over_search_filter(n: int) -> None:
    from cairn.domain.query import parse_search

    parse_search("a" * (n + 1))


def over_page_size(n: int) -> None:
    from cairn.store.search import compile_run_search

    compile_run_search(None, None, project_id=1, limit=n + 1, cursor=None)


def over_step(n: int) -> None:
    from cairn.domain.validation import step_value

    step_value(n + 1, "step")


def over_key(n: int) -> None:
    from cairn.domain.validation import check_key

    check_key("k" * (n + 1), "metrics key")


def over_project(n: int) -> None:
    from cairn.domain.validation import check_project_name

    check_project_name("p" * (n + 1))


OVER: dict[str, tuple[Callable[[int], None], str]] = {
    "key_length": (over_key, "key_length"),
    "name_length": (over_text("name_length", "name"), "name_length"),
    "param_value_length": (over_text("param_value_length", "params.lr"), "param_value_length"),
    "tag_value_length": (over_text("tag_value_length", "tags.team"), "tag_value_length"),
    "notes_length": (over_text("notes_length", "notes"), "notes_length"),
    "project_name_length": (over_project, "project_name_length"),
    "batch_points": (over_batch("batch_points"), "batch_points"),
    "batch_params": (over_batch("batch_params"), "batch_params"),
    "batch_tags": (over_batch("batch_tags"), "batch_tags"),
    "batch_runs": (over_batch("batch_runs"), "batch_runs"),
    "search_filter_length": (over_search_filter, "search_filter_length"),
    "artifact_path_length": (over_path, "path"),
    "media_type_length": (over_media_type, "media_type"),
    "dataset_files": (over_files, "files"),
    "dataset_etag_length": (over_etag, "etag"),
    "dataset_source_length": (over_dataset_text("source"), "source"),
    "dataset_batch_length": (over_dataset_text("batch"), "batch"),
    "dataset_message_length": (over_dataset_text("message"), "message"),
    "input_role_length": (over_role, "role"),
    "profile_columns": (over_profile("columns"), "at most 10,000 columns"),
    "profile_histogram_bins": (over_profile("bins"), "1 to 1,000 integers"),
    "profile_top_values": (over_profile("top"), "holds at most 100 values"),
    "profile_text_length": (over_profile("text"), "the limit is 1,000"),
    "endpoint_variants": (over_variants, "variants"),
    "prediction_batch": (over_prediction_batch, "predictions per call"),
    "prediction_record_bytes": (over_record_bytes, "records[0].inputs"),
    "digests_per_query": (over_digests, "digests"),
    "metric_step": (over_step, "step"),
    "page_size": (over_page_size, "page_size"),
}


def test_every_limit_in_the_code_has_a_row() -> None:
    documented = {(module, attr) for _value, module, attr in rows().values()}
    for key in LIMITS:
        assert ("cairn.domain.validation", f"LIMITS.{key}") in documented, key


@pytest.mark.parametrize("name", sorted(rows()))
def test_the_number_is_the_constant(name: str) -> None:
    value, module, attr = rows()[name]
    assert value == constant(module, attr), f"docs/limits.md row {name} says {value}"


@pytest.mark.parametrize("name", sorted(set(rows()) - {"request_body_bytes"}))
def test_just_over_is_refused_naming_the_limit(name: str) -> None:
    value = rows()[name][0]
    trigger, named = OVER[name]
    with pytest.raises(CairnError) as caught:
        trigger(value)
    error = caught.value
    said = f"{error.message} {error.details}"
    assert named in said, f"{name}: the error does not name {named!r}: {said}"


@pytest.mark.parametrize("name", ["key_length", "artifact_path_length", "input_role_length"])
def test_the_limit_itself_is_allowed(name: str) -> None:
    OVER[name][0](rows()[name][0] - 1)  # n - 1 + 1 = exactly the limit: accepted


def test_a_request_body_just_over_the_limit_is_refused(tmp_path: Path) -> None:
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    from cairn.api.app import create_app
    from cairn.settings import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient

    limit = rows()["request_body_bytes"][0]
    app = create_app(Settings(store=str(tmp_path / "store")))
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = http.post("/api/v1/batches", content=b" " * (limit + 1))
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["code"] == "too_large"
    assert error["details"] == {"limit": "max_request_bytes", "max": limit}
