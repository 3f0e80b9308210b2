"""``cairn runs``: list, show and compare runs, on a local store or a server."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

import click

from cairn.cli.output import format_value, handle_errors, print_json, print_table
from cairn.cli.projects import json_option, open_client, uri_option
from cairn.client.fluent import Client
from cairn.domain.errors import Invalid
from cairn.domain.records import MetricSummary, Run
from cairn.domain.refs import parse_ref

_ATTRIBUTES = ("author", "end_time", "experiment", "parent_id", "project")
_DEFAULT_KEYS = 3  # params and metrics shown when --columns is not given
T = TypeVar("T")


@click.group()
def runs() -> None:
    """Runs: list, show and compare them."""


# -- ls -----------------------------------------------------------------------------


@runs.command("ls")
@click.option("--project", "-p", default=None, help="Only this project's runs (default: all).")
@click.option(
    "--filter",
    "filter_",
    default=None,
    metavar="EXPR",
    help="Search language, e.g. \"metrics.loss < 0.5 and params.lr = '0.01'\".",
)
@click.option(
    "--order-by",
    multiple=True,
    metavar="KEY",
    help="Sort key, e.g. 'metrics.loss' or 'start_time desc'; repeat for ties.",
)
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(min=1), help="Runs per page."
)
@click.option("--cursor", default=None, help="Go on from where an earlier page ended.")
@click.option("--all", "follow", is_flag=True, help="Follow the cursor through every page.")
@click.option(
    "--columns",
    default=None,
    metavar="COLS",
    help="Comma-separated extra columns: params.KEY, metrics.KEY (last value), "
    "tags.KEY, " + ", ".join(_ATTRIBUTES) + ".",
)
@uri_option
@json_option
@handle_errors
def ls(
    project: str | None,
    filter_: str | None,
    order_by: tuple[str, ...],
    limit: int,
    cursor: str | None,
    follow: bool,
    columns: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """List runs, newest first unless --order-by says otherwise.

    Without --columns the table shows the first few params and metrics it meets.
    When more runs match than one page holds, the cursor for the next page is
    printed on stderr (with --json it is the "next_cursor" field).

    \b
    Examples:
      cairn runs ls --project iris --filter "metrics.acc > 0.9" --order-by "metrics.acc desc"
      cairn runs ls --columns params.lr,metrics.loss --all
    """
    chosen = _parse_columns(columns) if columns else None
    with open_client(uri) as client:
        found, next_cursor = _search(
            client, project, filter_, list(order_by), limit, cursor, follow
        )
    if as_json:
        print_json({"runs": [_run_json(r) for r in found], "next_cursor": next_cursor})
        return
    if not found:
        click.echo("no runs match")
    else:
        _print_runs(found, chosen if chosen is not None else _default_columns(found))
    if next_cursor:
        click.echo(f"more runs: add --cursor {next_cursor} (or --all)", err=True)


def _search(
    client: Client,
    project: str | None,
    filter_: str | None,
    order_by: list[str],
    limit: int,
    cursor: str | None,
    follow: bool,
) -> tuple[list[Run], str | None]:
    found: list[Run] = []
    while True:
        page = client.search_runs(
            filter_, order_by or None, project=project, limit=limit, cursor=cursor
        )
        found.extend(page)
        if not follow:
            return found, page.next_cursor
        if not page.next_cursor or page.next_cursor == cursor:
            return found, None
        cursor = page.next_cursor


def _parse_columns(text: str) -> list[str]:
    columns = [c.strip() for c in text.split(",") if c.strip()]
    for column in columns:
        kind, dot, key = column.partition(".")
        if (
            not (dot and key and kind in ("params", "metrics", "tags"))
            and column not in _ATTRIBUTES
        ):
            raise Invalid(
                f"unknown column {column!r}: use params.KEY, metrics.KEY, tags.KEY "
                f"or one of {', '.join(_ATTRIBUTES)}",
                field="columns",
            )
    return columns


def _default_columns(found: Sequence[Run]) -> list[str]:
    params: dict[str, None] = {}
    metrics: dict[str, None] = {}
    for run in found:
        params.update(dict.fromkeys(run.params))
        metrics.update(dict.fromkeys(k for k in run.metrics if not k.startswith("system/")))
    return [f"params.{k}" for k in list(params)[:_DEFAULT_KEYS]] + [
        f"metrics.{k}" for k in list(metrics)[:_DEFAULT_KEYS]
    ]


def _cell(run: Run, column: str) -> Any:
    kind, _, key = column.partition(".")
    if kind == "params":
        return run.params.get(key)
    if kind == "metrics":
        summary = run.metrics.get(key)
        return summary.last if summary else None
    if kind == "tags":
        return run.tags.get(key)
    return getattr(run, column)


def _print_runs(found: Sequence[Run], columns: list[str]) -> None:
    print_table(
        ["id", "name", "status", "start", "duration", *columns],
        [
            [
                r.id,
                r.name,
                r.status.value,
                r.start_time,
                _duration(r.duration_s),
                *(_cell(r, c) for c in columns),
            ]
            for r in found
        ],
    )


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _run_json(run: Run) -> dict[str, Any]:
    return {**asdict(run), "duration_s": run.duration_s}


def _run_id(text: str) -> str:
    """A bare run id, or the id inside a ``runs/<id>`` reference."""
    text = text.strip()
    return parse_ref(text).name if text.startswith("runs/") else text


# -- show ---------------------------------------------------------------------------


@runs.command("show")
@click.argument("run_ref", metavar="RUN_ID")
@uri_option
@json_option
@handle_errors
def show(run_ref: str, uri: str, as_json: bool) -> None:
    """Show one run: attributes, git, command, environment, params, tags, metrics, notes.

    RUN_ID is a run id or a reference such as runs/01JD2…

    \b
    Example:
      cairn runs show 01JD2Q0M5Y8C3T7H9K1V6W4X2Z --json
    """
    with open_client(uri) as client:
        run = client.get_run(_run_id(run_ref))
    if as_json:
        print_json(_run_json(run))
        return
    click.echo(f"run {run.id}" + (f"  ({run.name})" if run.name else ""))
    _pairs(
        None,
        [
            ("project", run.project),
            ("experiment", run.experiment),
            ("status", run.status.value),
            ("parent", run.parent_id),
            ("author", run.author),
            ("start", run.start_time),
            ("end", run.end_time),
            ("duration", _duration(run.duration_s)),
        ],
    )
    if run.git:
        _pairs("git", _git_pairs(run.git))
    _text("command", run.command)
    if run.environment:
        _pairs("environment", _environment_pairs(run.environment))
    _pairs("params", sorted(run.params.items()))
    _pairs("tags", sorted(run.tags.items()))
    if run.metrics:
        click.echo("metrics")
        print_table(
            ["key", "last", "step", "min", "max", "count"],
            [
                [m.key, m.last, m.last_step, m.min, m.max, m.count]
                for _, m in sorted(run.metrics.items())
            ],
        )
    _text("notes", run.notes)
    _text("error", run.error)


def _pairs(title: str | None, pairs: Sequence[tuple[str, Any]]) -> None:
    if not pairs:
        return
    if title:
        click.echo(title)
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        click.echo(f"  {key.ljust(width)}  {format_value(value)}".rstrip())


def _text(title: str, text: str | None) -> None:
    if text:
        click.echo(title)
        for line in text.splitlines():
            click.echo(f"  {line}".rstrip())


def _git_pairs(git: dict[str, Any]) -> list[tuple[str, Any]]:
    dirty = git.get("dirty")
    return [
        ("branch", git.get("branch")),
        ("commit", git.get("commit")),
        ("dirty", None if dirty is None else ("yes" if dirty else "no")),
        ("remote", git.get("remote_url")),
    ]


def _environment_pairs(env: dict[str, Any]) -> list[tuple[str, Any]]:
    python = " ".join(
        str(env[k]) for k in ("python_version", "python_implementation") if env.get(k)
    )
    plat = env.get("platform")
    if isinstance(plat, dict):
        plat = " ".join(str(plat[k]) for k in ("system", "release", "machine") if plat.get(k))
    gpus = [g.get("name", "?") for g in env.get("gpus") or [] if isinstance(g, dict)]
    return [
        ("python", python or None),
        ("platform", plat or None),
        ("host", env.get("hostname")),
        ("cpus", env.get("cpu_count")),
        ("gpus", ", ".join(gpus) or "none"),
        ("packages", len(env.get("packages") or {})),
    ]


# -- compare ------------------------------------------------------------------------


@runs.command("compare")
@click.argument("run_refs", metavar="RUN_ID RUN_ID...", nargs=-1, required=True)
@uri_option
@json_option
@handle_errors
def compare(run_refs: tuple[str, ...], uri: str, as_json: bool) -> None:
    """Compare runs side by side: params, then metrics (last value, min..max).

    Rows where the runs differ are marked with '*' (in --json, "differs": true). A key a
    run lacks counts as a difference. In --json, "values" follow the order of "runs".

    \b
    Example:
      cairn runs compare runs/01JD2Q0M5Y8C3T7H9K1V6W4X2Z 01JD2Q1B7N0D4R8J2M5P9S3T6V
    """
    if len(run_refs) < 2:
        raise click.UsageError("compare needs at least two runs")
    ids = [_run_id(r) for r in run_refs]
    with open_client(uri) as client:
        found = [client.get_run(run_id) for run_id in ids]
    params = _side_by_side([r.params for r in found], str)
    metrics = _side_by_side([r.metrics for r in found], lambda m: m.last)
    if as_json:
        print_json(
            {
                "runs": [
                    {
                        "id": r.id,
                        "name": r.name,
                        "project": r.project,
                        "status": r.status.value,
                        "duration_s": r.duration_s,
                    }
                    for r in found
                ],
                "params": [{"key": k, "values": v, "differs": d} for k, v, d in params],
                "metrics": [{"key": k, "values": v, "differs": d} for k, v, d in metrics],
            }
        )
        return
    print_table(
        ["id", "name", "status", "duration"],
        [[r.id, r.name, r.status.value, _duration(r.duration_s)] for r in found],
    )
    headers = ["", "key", *(r.id for r in found)]
    click.echo("\nparams (* differs)")
    print_table(headers, [["*" if d else "", k, *v] for k, v, d in params])
    click.echo("\nmetrics: last (min..max)")
    print_table(
        headers, [["*" if d else "", k, *(_summary_cell(m) for m in v)] for k, v, d in metrics]
    )


def _side_by_side(
    maps: Sequence[dict[str, T]],
    compared: Callable[[T], object],
) -> list[tuple[str, list[T | None], bool]]:
    """One row per key in any run: the runs' values, and whether they differ."""
    rows = []
    for key in sorted({k for m in maps for k in m}):
        values = [m.get(key) for m in maps]
        seen = {None if v is None else compared(v) for v in values}
        rows.append((key, values, len(seen) > 1))
    return rows


def _summary_cell(summary: MetricSummary | None) -> str | None:
    if summary is None:
        return None
    return (
        f"{format_value(summary.last)} ({format_value(summary.min)}..{format_value(summary.max)})"
    )
