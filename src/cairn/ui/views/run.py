"""``/runs/{id}``: one run (params, metrics as charts, artifacts, inputs, git,
environment) and ``/runs/{id}/diff``, the uncommitted diff it started from."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cairn.auth import On, guard
from cairn.domain.access import Role
from cairn.domain.records import ArtifactEntry, Run, RunStatus
from cairn.ui.columns import SYSTEM_PREFIX
from cairn.ui.render import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_ARTIFACT_ROWS = 2000


@dataclass(frozen=True)
class TreeRow:
    """One line of the artifacts browser: a folder, or a file with its entry."""

    depth: int
    name: str
    entry: ArtifactEntry | None


def artifact_tree(entries: list[ArtifactEntry]) -> list[TreeRow]:
    """Files under their folders, folders first-seen once: ``a/b.txt`` gives ``a/``, ``b.txt``."""
    rows: list[TreeRow] = []
    opened: list[str] = []
    for entry in sorted(entries, key=lambda e: e.path.split("/")):
        *folders, name = entry.path.split("/")
        common = 0
        while common < min(len(opened), len(folders)) and opened[common] == folders[common]:
            common += 1
        opened = opened[:common]
        for folder in folders[common:]:
            rows.append(TreeRow(len(opened), folder, None))
            opened.append(folder)
        rows.append(TreeRow(len(folders), name, entry))
    return rows


def _preview_kind(entry: ArtifactEntry) -> str:
    """How the browser previews a file: image, csv, json, text, or none."""
    media = entry.media_type.split(";")[0].strip().lower()
    path = entry.path.lower()
    if media.startswith("image/"):
        return "image"
    if media in ("text/csv", "text/tab-separated-values") or path.endswith((".csv", ".tsv")):
        return "csv"
    if media == "application/json" or path.endswith((".json", ".jsonl")):
        return "json"
    text_suffixes = (".txt", ".md", ".log", ".yaml", ".yml", ".py", ".toml", ".ini", ".cfg")
    if media.startswith("text/") or path.endswith(text_suffixes):
        return "text"
    return "none"


def _metric_groups(run: Run) -> tuple[list[str], list[str]]:
    keys = sorted(run.metrics)
    return (
        [k for k in keys if not k.startswith(SYSTEM_PREFIX)],
        [k for k in keys if k.startswith(SYSTEM_PREFIX)],
    )


@router.get(
    "/runs/{run_id}", response_class=HTMLResponse, dependencies=[guard(On.RUN, Role.VIEWER)]
)
def run_page(request: Request, run_id: str) -> HTMLResponse:
    state = request.app.state
    run: Run = state.tracking.get_run(run_id)
    entries = state.artifacts.list_artifacts(run_id)
    inputs = state.data.run_inputs(run_id)
    children = state.tracking.child_runs(run_id)
    metrics, system = _metric_groups(run)
    rows = artifact_tree(entries[:MAX_ARTIFACT_ROWS])
    title = run.name or run.id
    return render(
        request,
        "run.html",
        project=run.project,
        crumbs=[
            (run.project, f"/projects/{run.project}/runs"),
            ("Runs", f"/projects/{run.project}/runs"),
            (title, None),
        ],
        twin=f"/api/v1/runs/{run.id}",
        run=run,
        title=title,
        live=run.status is RunStatus.RUNNING,
        metric_keys=metrics,
        system_keys=system,
        artifacts=rows,
        artifact_count=len(entries),
        artifacts_cut=len(entries) > MAX_ARTIFACT_ROWS,
        preview_kind=_preview_kind,
        inputs=inputs,
        children=children,
        environment=run.environment or {},
    )


@router.get(
    "/runs/{run_id}/diff", response_class=HTMLResponse, dependencies=[guard(On.RUN, Role.VIEWER)]
)
def run_diff_page(request: Request, run_id: str) -> HTMLResponse:
    tracking = request.app.state.tracking
    run: Run = tracking.get_run(run_id)
    diff: str | None = tracking.get_git_diff(run_id)
    title = run.name or run.id
    lines = [(_diff_class(line), line) for line in (diff or "").splitlines()]
    return render(
        request,
        "diff.html",
        project=run.project,
        crumbs=[
            (run.project, f"/projects/{run.project}/runs"),
            ("Runs", f"/projects/{run.project}/runs"),
            (title, f"/runs/{run.id}"),
            ("Diff", None),
        ],
        twin=f"/api/v1/runs/{run.id}/git-diff",
        run=run,
        lines=lines,
    )


def _diff_class(line: str) -> str:
    if line.startswith(("+++", "---", "diff ", "index ")):
        return "meta"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return ""
