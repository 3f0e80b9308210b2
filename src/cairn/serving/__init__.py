"""``cairn serve``: an inference server that follows the registry.

It loads ``iris@production`` (or an endpoint's variants), answers ``POST /predict``
with the predictions and the model version that made them, moves to a new version when
the alias moves (loaded first, then swapped in: no restart, no failed request), and
logs every prediction to Cairn in the background.

    engine.py          routing, predicting, shadows, following the registry
    slots.py           one model reference followed, swapped atomically
    payload.py         records / columns / instances → model input and logged rows
    prediction_log.py  the bounded queue and the thread that sends it in batches
    metrics.py         Prometheus text exposition
    loop_budget.py     which predictions run on the event loop, which in the pool
    predict_door.py    POST /predict answered in front of the framework
    app.py             the HTTP routes around the engine

This package may import the client (the SDK), the flavors, schemas and domain; never
the API, the store or the services.
"""

from __future__ import annotations

from cairn.serving.app import create_serving_app
from cairn.serving.engine import InferenceServer
from cairn.serving.metrics import ServingMetrics
from cairn.serving.prediction_log import PredictionLog

__all__ = ["InferenceServer", "PredictionLog", "ServingMetrics", "create_serving_app"]
