"""``cairn serve``: an inference server for a model reference or an endpoint.

    cairn serve iris@production --port 8000
    cairn serve --endpoint churn --uri http://cairn:5000

It follows the registry: when the alias (or the endpoint's variants) changes, the new
version is loaded in the background and swapped in without a restart. Every prediction
is logged to Cairn in batches, off the request path.
"""

from __future__ import annotations

import logging
import os

import click

from cairn.cli.data import project_option
from cairn.cli.output import handle_errors
from cairn.cli.projects import _check_store_exists, uri_option
from cairn.cli.server import NoDelayHttpToolsProtocol
from cairn.domain.errors import Invalid


def _interval() -> float:
    return float(os.environ.get("CAIRN_SERVE_POLL_INTERVAL", "2.0"))


@click.command()
@click.argument("model_ref", required=False)
@click.option("--endpoint", "-e", default=None, help="Serve an endpoint's variants instead.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int)
@project_option
@uri_option
@click.option(
    "--poll-interval",
    default=_interval,
    show_default="$CAIRN_SERVE_POLL_INTERVAL, else 2",
    type=click.FloatRange(0.05, 3600),
    help="Seconds between looks at the registry for a moved alias.",
)
@click.option("--no-log", is_flag=True, help="Do not log predictions to Cairn.")
@click.option(
    "--log-queue",
    default=100_000,
    show_default=True,
    type=click.IntRange(1, 10_000_000),
    help="Predictions kept while Cairn is unreachable (then the oldest are dropped).",
)
@click.option(
    "--loop-budget-ms",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0, 1000),
    help="Short predictions of small bodies run on the event loop, saving a thread hop, "
    "while it has time to spare; probes then wait at most about 3x this. 0: never (for "
    "a model whose calls may block now and then, e.g. on a network lookup).",
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@handle_errors
def serve(
    model_ref: str | None,
    endpoint: str | None,
    host: str,
    port: int,
    project: str | None,
    uri: str,
    poll_interval: float,
    no_log: bool,
    log_queue: int,
    loop_budget_ms: float,
    log_level: str,
) -> None:
    """Serve MODEL_REF (iris@production, iris:3) or --endpoint NAME over HTTP.

    POST /predict takes {"records": [...]}, {"columns": {...}} or {"instances": [...]}
    (plus an optional unit_id and request_id) and answers the predictions with the model
    name, version, semver, request id and variant. /healthz, /readyz and /metrics
    (Prometheus) come with it.

    \b
    Example:
      cairn serve iris@production --port 8000
      curl -d '{"records": [{"x": 1.0}]}' localhost:8000/predict
    """
    if (model_ref is None) == (endpoint is None):
        raise Invalid("give a model reference or --endpoint NAME (one of them)", field="model")
    try:
        import uvicorn
    except ImportError:
        raise click.ClickException(
            "the server needs the extra: pip install 'cairn[server]'"
        ) from None
    from cairn.client.backend import open_backend
    from cairn.client.fluent import Client
    from cairn.serving import InferenceServer, PredictionLog, ServingMetrics, create_serving_app

    _check_store_exists(uri)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("cairn").setLevel(log_level.upper())
    client = Client(uri, project=project)
    name = client._project(project)
    # Fail now, with the registry's own message, on a reference that names nothing.
    if endpoint is not None:
        found = client.get_endpoint(endpoint, name)
        what = f"endpoint {name}/{endpoint} ({', '.join(v.name for v in found.variants)})"
    else:
        assert model_ref is not None
        version = client.get_model_version(model_ref, name)
        what = f"{model_ref} (now {version.ref}, {version.semver})"
    metrics = ServingMetrics()
    prediction_log = None
    if not no_log:
        backend = open_backend(uri)
        prediction_log = PredictionLog(
            lambda p, ref, ep, records: backend.log_predictions(p, ref, records, ep),
            metrics,
            capacity=log_queue,
        )
    server = InferenceServer(
        client,
        project=name,
        model_ref=model_ref,
        endpoint=endpoint,
        log=prediction_log,
        metrics=metrics,
        poll_interval_s=poll_interval,
    )
    click.echo(f"Serving {what} at http://{host}:{port}  (POST /predict, GET /metrics)")
    uvicorn.run(
        create_serving_app(server, loop_budget_s=loop_budget_ms / 1000),
        host=host,
        port=port,
        http=NoDelayHttpToolsProtocol,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    client.close()
