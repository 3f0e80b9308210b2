"""Cairn side of ``register_and_load``: register a fitted model, alias it, load it by alias.

Each repetition uses a fresh embedded store and a fresh local cache, and runs as two fresh
processes, as training and serving would: ``register`` (``run.register_model`` then
``cairn.set_alias``) and ``load`` (``cairn.load_model("bench-model@production")`` then
``.predict(X)``). Imports, fitting the model and opening the store happen before the clock.
``cairn_workloads.py`` runs the workload; the steps run as

    .venv/bin/python bench/cairn_registry.py --child register --params JSON
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    REGISTRY_ALIAS,
    REGISTRY_ESTIMATOR,
    REGISTRY_MODEL,
    Sizes,
    exit_on_sigterm,
    fresh_dir,
    registry_figures,
    registry_model,
    run_step,
)

SCRIPT = Path(__file__).resolve()
PROJECT = "bench"


def _open(params: dict[str, Any]) -> Any:
    """The configured SDK module, its store opened (and created) outside the clock."""
    # Before cairn reads it: a fresh cache, so load_model downloads and verifies the files.
    os.environ["CAIRN_CACHE_DIR"] = params["cache"]
    import cairn

    cairn.set_tracking_uri(params["store"])
    cairn.set_project(PROJECT)
    with contextlib.suppress(cairn.NotFound):
        cairn.list_models()
    return cairn


def _step_register(params: dict[str, Any]) -> dict[str, Any]:
    model, x = registry_model()
    cairn = _open(params)
    # capture=True is the SDK default, as elsewhere in the benchmark (cairn_workloads.CAPTURE).
    with cairn.start_run(name="register", capture=True) as run:
        run.flush()  # the run is stored before the clock, as mlflow.start_run's row is
        t0 = time.perf_counter()
        version = run.register_model(REGISTRY_MODEL, model, input_example=x[:5])
        t1 = time.perf_counter()
        cairn.set_alias(REGISTRY_MODEL, REGISTRY_ALIAS, version.version)
        t2 = time.perf_counter()
    return {
        "register_s": t1 - t0,
        "alias_s": t2 - t1,
        "version": version.version,
        "bytes": version.size,
        "predictions": model.predict(x).tolist(),
    }


def _step_load(params: dict[str, Any]) -> dict[str, Any]:
    _model, x = registry_model()  # only for X; the model comes from the registry
    cairn = _open(params)
    t0 = time.perf_counter()
    loaded = cairn.load_model(f"{REGISTRY_MODEL}@{REGISTRY_ALIAS}")
    t1 = time.perf_counter()
    predictions = loaded.predict(x)
    t2 = time.perf_counter()
    return {
        "load_s": t2 - t0,
        "predict_s": t2 - t1,
        "loaded_version": loaded.version.version,
        "predictions": [int(p) for p in predictions],
    }


STEPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "register": _step_register,
    "load": _step_load,
}


def register_and_load(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    repetitions = []
    with fresh_dir(workdir, "cairn-registry") as folder:
        for i in range(sizes.registry_repeats):
            params = {"store": str(folder / f"store-{i}"), "cache": str(folder / f"cache-{i}")}
            registered = run_step(SCRIPT, "register", params)
            loaded = run_step(SCRIPT, "load", params)
            repetitions.append(
                {
                    "register_s": registered["register_s"],
                    "alias_s": registered["alias_s"],
                    "load_s": loaded["load_s"],
                    "predict_s": loaded["predict_s"],
                    "model_bytes": registered["bytes"],
                    "peak_rss_mb_register": registered["peak_rss_mb"],
                    "peak_rss_mb_load": loaded["peak_rss_mb"],
                    "correct": loaded["predictions"] == registered["predictions"]
                    and loaded["loaded_version"] == registered["version"],
                }
            )
    return {
        "api": "run.register_model(name, model, input_example=X[:5]); cairn.set_alias(name, "
        '"production", v); cairn.load_model("bench-model@production").predict(X)',
        "model": REGISTRY_ESTIMATOR,
        "store": "embedded folder (SQLite + local blobs); register and load in fresh processes",
        **registry_figures(repetitions),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=sorted(STEPS), required=True)
    parser.add_argument("--params", default="{}")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    print(json.dumps(STEPS[args.child](json.loads(args.params))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
