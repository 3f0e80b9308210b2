"""MLflow side of ``register_and_load``: the steps of ``cairn_registry.py``, through MLflow.

Each repetition uses a fresh SQLite tracking and registry store with a local artifact
root, and runs as two fresh processes: ``register`` (``mlflow.sklearn.log_model`` with
``registered_model_name`` and ``input_example``, then ``set_registered_model_alias``) and
``load`` (``mlflow.pyfunc.load_model("models:/bench-model@production")`` then
``.predict(X)``). Imports, fitting the model, MLflow's migrations and opening both stores
happen before the clock; ``log_model`` keeps its defaults (it infers the signature and the
pip requirements, and checks the input example against the saved model). Run by
``mlflow_workloads.py`` under the MLflow virtualenv; the steps run as

    bench/.venv-mlflow/bin/python bench/mlflow_registry.py --child register --params JSON
"""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
from mlflow import MlflowClient

from common import (
    REGISTRY_ALIAS,
    REGISTRY_ESTIMATOR,
    REGISTRY_MODEL,
    Sizes,
    exit_on_sigterm,
    folder_bytes,
    fresh_dir,
    registry_figures,
    registry_model,
    run_step,
)

SCRIPT = Path(__file__).resolve()
EXPERIMENT = "bench"

# How log_model serializes. MLflow 3's default, skops, refuses to save a random forest until
# its tree type is trusted (the error says to pass exactly this). Pickle, what Cairn's sklearn
# flavor writes, is measured too; loading it needs MLflow's opt-in environment variable.
FORMATS: dict[str, dict[str, Any]] = {
    "skops": {"skops_trusted_types": ["sklearn.tree._tree.Tree"]},
    "pickle": {"serialization_format": "pickle"},
}


def _open(params: dict[str, Any]) -> MlflowClient:
    """A client whose tracking and registry stores are migrated and opened already."""
    mlflow.set_tracking_uri(params["uri"])
    client = MlflowClient()
    client.search_registered_models()  # opens the registry store outside the clock
    return client


def _step_register(params: dict[str, Any]) -> dict[str, Any]:
    model, x = registry_model()
    folder = Path(params["folder"])
    client = _open(params)
    experiment_id = client.create_experiment(
        EXPERIMENT, artifact_location=(folder / "artifacts").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment_id, run_name="register"):
        t0 = time.perf_counter()
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=REGISTRY_MODEL,
            input_example=x[:5],
            **FORMATS[params["format"]],
        )
        t1 = time.perf_counter()
        version = info.registered_model_version
        client.set_registered_model_alias(REGISTRY_MODEL, REGISTRY_ALIAS, version)
        t2 = time.perf_counter()
    return {
        "register_s": t1 - t0,
        "alias_s": t2 - t1,
        "version": int(version),
        "predictions": model.predict(x).tolist(),
    }


def _step_load(params: dict[str, Any]) -> dict[str, Any]:
    if params["format"] == "pickle":
        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    _model, x = registry_model()  # only for X; the model comes from the registry
    _open(params)
    t0 = time.perf_counter()
    loaded = mlflow.pyfunc.load_model(f"models:/{REGISTRY_MODEL}@{REGISTRY_ALIAS}")
    t1 = time.perf_counter()
    predictions = loaded.predict(x)
    t2 = time.perf_counter()
    return {
        "load_s": t2 - t0,
        "predict_s": t2 - t1,
        "loaded_version": _alias_version(),
        "predictions": [int(p) for p in predictions],
    }


def _alias_version() -> int:
    """The version the alias points to, read after the clock for the correctness check."""
    return int(MlflowClient().get_model_version_by_alias(REGISTRY_MODEL, REGISTRY_ALIAS).version)


STEPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "register": _step_register,
    "load": _step_load,
}


def _repetitions(folder: Path, repeats: int, fmt: str) -> dict[str, Any]:
    repetitions = []
    for i in range(repeats):
        store = folder / f"{fmt}-store-{i}"
        store.mkdir()
        uri = f"sqlite:///{store / 'mlflow.db'}"
        params = {"uri": uri, "folder": str(store), "format": fmt}
        registered = run_step(SCRIPT, "register", params)
        loaded = run_step(SCRIPT, "load", params)
        repetitions.append(
            {
                "register_s": registered["register_s"],
                "alias_s": registered["alias_s"],
                "load_s": loaded["load_s"],
                "predict_s": loaded["predict_s"],
                "model_bytes": folder_bytes(store / "artifacts"),
                "peak_rss_mb_register": registered["peak_rss_mb"],
                "peak_rss_mb_load": loaded["peak_rss_mb"],
                "correct": loaded["predictions"] == registered["predictions"]
                and loaded["loaded_version"] == registered["version"],
            }
        )
    return {"log_model": FORMATS[fmt], **registry_figures(repetitions)}


def register_and_load(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    with fresh_dir(workdir, "mlflow-registry") as folder:
        default = _repetitions(folder, sizes.registry_repeats, "skops")
        pickled = _repetitions(folder, sizes.registry_repeats, "pickle")
    return {
        "api": "mlflow.sklearn.log_model(model, name, registered_model_name, "
        "input_example=X[:5]); MlflowClient.set_registered_model_alias(name, "
        '"production", v); mlflow.pyfunc.load_model("models:/bench-model@production")'
        ".predict(X)",
        "model": REGISTRY_ESTIMATOR,
        "store": "SQLite tracking and registry store, local artifact root; register and "
        "load in fresh processes",
        "serialization": "skops (MLflow's default); 'pickle' below: serialization_format='pickle'",
        **default,
        "pickle": pickled,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=sorted(STEPS), required=True)
    parser.add_argument("--params", default="{}")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # MLflow prints run links and notices on stdout; keep stdout for the JSON alone.
    with contextlib.redirect_stdout(sys.stderr):
        result = STEPS[args.child](json.loads(args.params))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
