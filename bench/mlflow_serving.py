"""MLflow side of ``serving_overhead``: ``mlflow models serve`` of the same model, the same
one-row requests, the same client.

The wine forest of ``register_and_load`` is logged with ``mlflow.sklearn.log_model``
(pickle, as Cairn's sklearn flavor writes; loading it needs MLflow's opt-in variable) and
served with ``mlflow models serve --env-manager local`` (the virtualenv's own packages:
no environment is built). 2,000 ``POST /invocations`` of one row over one keep-alive
httpx connection after 200 warm-up calls, each paired with a bare ``model.predict`` of
that row in this process just before it (``common.serving_figures``). MLflow's
server logs no predictions; Cairn's does (in the background).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn

from common import Sizes, free_port, fresh_dir, registry_model, server_process, serving_figures

WARMUP, CALLS = 200, 2_000


def serving_overhead(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    import httpx

    calls = 200 if sizes.quick else CALLS
    with fresh_dir(workdir, "mlflow-serving") as folder:
        model, x = registry_model()
        row = x[:1]
        tracking = f"sqlite:///{folder / 'mlflow.db'}"
        mlflow.set_tracking_uri(tracking)
        mlflow.set_experiment("bench-serving")
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model, name="model", serialization_format="pickle", input_example=x[:5]
            )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = [
            sys.executable, "-m", "mlflow", "models", "serve", "-m", info.model_uri,
            "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        env = {
            **os.environ,
            # mlflow models serve execs `uvicorn` by name: this virtualenv's.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": tracking,
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        }
        body = json.dumps({"inputs": row.tolist()}).encode()
        headers = {"content-type": "application/json"}

        def invoke() -> Any:
            response = http.post("/invocations", content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
            return response.json()

        with (
            server_process(argv, f"{base}/ping", folder / "serve.log", 180, env),
            httpx.Client(base_url=base, timeout=30) as http,
        ):
            figures, answer = serving_figures(lambda: model.predict(row), invoke, WARMUP, calls)
        return {
            **figures,
            "correct": answer.get("predictions") == model.predict(row).tolist(),
            "model": "RandomForestClassifier(100 trees) on wine, one row",
            "server": "mlflow models serve --env-manager local (pickle), httpx keep-alive",
        }
