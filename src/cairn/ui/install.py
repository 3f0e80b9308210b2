"""Mount the UI on an app built by ``cairn.api.app.create_app``."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from cairn.auth import check_guarded
from cairn.ui import vendor
from cairn.ui.render import UiState, build_environment
from cairn.ui.views import (
    account,
    compare,
    datasets,
    endpoints,
    lineage,
    models,
    projects,
    run,
    runs,
)


def install_ui(app: FastAPI, status_for: Callable[[str], int]) -> None:
    """Pages at ``/``; ``status_for`` maps an error code to its HTTP status (the API's)."""
    static = files("cairn.ui") / "static"
    app.state.ui = UiState(build_environment(), status_for, vendor.PlotlyAsset.find())
    app.mount("/ui/static", StaticFiles(directory=str(static)), name="ui-static")
    pages = (projects, runs, run, compare, models, datasets, lineage, endpoints, account)
    check_guarded([vendor.router, *(m.router for m in pages)])
    app.include_router(vendor.router)
    for module in pages:
        app.include_router(module.router)
