"""``cairn monitor`` and ``cairn ab``: production behaviour and A/B tests from a terminal.

``cairn monitor churn --since 24h --window 1h`` prints, per window, one line per model
version (and variant): volume, errors, latency percentiles, the outputs, quality from
feedback, and drift from the training data; then the alerts and any rollback.
``cairn ab report churn --metric accuracy`` compares an endpoint's variants, and
``cairn ab promote churn challenger`` (also ``cairn endpoints promote``) moves the
champion's alias to the challenger's version.
"""

from __future__ import annotations

import click

from cairn.cli.data import project_option
from cairn.cli.output import format_value, handle_errors, print_json, print_table
from cairn.cli.projects import json_option, open_client, uri_option
from cairn.domain.experiments import ABReport, Promotion, VariantOutcome
from cairn.domain.monitoring import GroupStats, MonitoringReport, Window


@click.command("monitor")
@click.argument("target", metavar="ENDPOINT_OR_MODEL")
@click.option("--since", default="24h", show_default=True, help="A duration back or a time.")
@click.option("--until", default=None, help="A duration back or an ISO 8601 time (now).")
@click.option("--window", default="1h", show_default=True, help="The length of a window.")
@project_option
@uri_option
@json_option
@handle_errors
def monitor(
    target: str,
    since: str,
    until: str | None,
    window: str,
    project: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """How an endpoint's (or a model's) versions behave, window by window.

    \b
    Examples:
      cairn monitor churn --since 24h --window 1h
      cairn monitor iris@production --since 7d --window 1d --json
    """
    with open_client(uri) as client:
        report = client.monitoring_report(
            target, since=since, until=until, window=window, project=project
        )
    if as_json:
        print_json(report)
        return
    print_report(report)


def print_report(report: MonitoringReport) -> None:
    subject = f"endpoint {report.endpoint}" if report.endpoint else f"model {report.model}"
    click.echo(
        f"{subject} · {_time(report.since)} → {_time(report.until)} UTC · "
        f"windows of {_duration(report.window_s)}"
    )
    empty = 0
    for window in report.windows:
        if not window.groups:
            empty += 1
            continue
        click.echo("")
        _print_window(window, by_variant=report.endpoint is not None)
    if empty == len(report.windows):
        click.echo("no predictions in this time")
    elif empty:
        click.echo(f"\n({empty} window(s) without predictions)")
    if report.alerts:
        click.echo("\nalerts:")
        for a in report.alerts:
            where = f"{a.model}:{a.version}" + (f" ({a.variant})" if a.variant else "")
            what = f"{a.metric} {a.feature}" if a.feature else a.metric
            sign = ">" if a.bound == "max" else "<"
            new = "  new" if a.new else ""
            click.echo(
                f"  {_time(a.window_start)}  {where}  {what} {a.value:.4g} {sign} "
                f"{a.threshold:g}{new}"
            )
    for r in report.rollbacks:
        verb = f"moved back to {r.to_version}" if r.moved else "could not move back"
        click.echo(f"\nrollback: {r.model}@{r.alias} {r.from_version} {verb}: {r.reason}")


def _print_window(window: Window, *, by_variant: bool) -> None:
    truncated = "  (truncated: too many predictions)" if window.truncated else ""
    click.echo(f"{_time(window.start)} → {window.end.strftime('%H:%M')}{truncated}")
    headers = ["version", "n", "errors", "p50 ms", "p95 ms", "p99 ms", "outputs", "quality"]
    headers.append("drift")
    if by_variant:
        headers.insert(0, "variant")
    rows = []
    for g in window.groups:
        row = [
            f"{g.model}:{g.version}",
            g.volume,
            f"{100 * g.error_rate:.1f}%",
            g.latency.p50 if g.latency else None,
            g.latency.p95 if g.latency else None,
            g.latency.p99 if g.latency else None,
            _outputs(g),
            _quality(g),
            _drift(g),
        ]
        if by_variant:
            row.insert(0, g.variant + (" (shadow)" if g.shadow else ""))
        rows.append(row)
    print_table(headers, rows, max_width=48)


def _outputs(g: GroupStats) -> str | None:
    if g.outputs is None:
        return None
    if g.outputs.numeric is not None:
        n = g.outputs.numeric
        return f"mean {n.mean:.4g} ± {n.std:.3g}"
    classes = g.outputs.classes or {}
    return " ".join(f"{label}:{count}" for label, count in list(classes.items())[:4])


def _quality(g: GroupStats) -> str | None:
    q = g.quality
    if q is None:
        return None
    if q.task == "regression":
        if q.mae is None or q.rmse is None:
            return None
        return f"mae {q.mae:.4g} rmse {q.rmse:.4g} (n={q.labeled})"
    if q.accuracy is None or q.f1 is None:
        return None
    return f"acc {q.accuracy:.3f} f1 {q.f1:.3f} (n={q.labeled})"


def _drift(g: GroupStats) -> str | None:
    d = g.drift
    if d is None:
        return None
    if d.drifted:
        return "drift: " + ", ".join(d.drifted)
    if not d.features:
        return "-" if d.note is None else "n/a"
    return "ok"


def _time(value: object) -> str:
    text = format_value(value)
    return text[:-3] if text.endswith(":00") and len(text) == 19 else text


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


# -- cairn ab ---------------------------------------------------------------------------


@click.group()
def ab() -> None:
    """A/B tests on endpoints: compare variants, promote the winner."""


@ab.command("report")
@click.argument("endpoint")
@click.option(
    "--metric",
    default="accuracy",
    show_default=True,
    help="accuracy, error_rate, conversion, latency, absolute_error, squared_error, outcome",
)
@click.option("--since", default=None, help="A duration back (7d) or an ISO 8601 time.")
@click.option("--until", default=None, help="A duration back or an ISO 8601 time.")
@click.option("--baseline", default=None, help="The variant to compare with (champion).")
@click.option("--mde", type=float, default=None, help="The effect to detect, in metric units.")
@project_option
@uri_option
@json_option
@handle_errors
def ab_report(
    endpoint: str,
    metric: str,
    since: str | None,
    until: str | None,
    baseline: str | None,
    mde: float | None,
    project: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """Each variant's outcome with a 95% interval, and whether it differs from the
    baseline significantly (z-test for rates, Welch's t-test for means).

    \b
    Example:
      cairn ab report churn --metric accuracy --since 7d
    """
    with open_client(uri) as client:
        report = client.ab_report(
            endpoint,
            metric=metric,
            since=since,
            until=until,
            baseline=baseline,
            mde=mde,
            project=project,
        )
    if as_json:
        print_json(report)
        return
    print_ab(report)


def print_ab(report: ABReport) -> None:
    better = "higher" if report.direction == "higher" else "lower"
    click.echo(
        f"endpoint {report.endpoint} · {report.metric} ({better} is better) · "
        f"baseline {report.baseline} · alpha {report.alpha:g}, power {report.power:g}"
        + (f", mde {report.mde:.4g}" if report.mde is not None else "")
    )
    print_table(
        [
            "variant",
            "target",
            "versions",
            "n",
            report.metric,
            "95% CI",
            "diff",
            "p",
            "verdict",
            "needed/variant",
        ],
        [_ab_row(o) for o in report.variants],
        max_width=40,
    )
    if report.truncated:
        click.echo("(truncated: the oldest predictions only; narrow --since/--until)")
    click.echo(f"winner: {report.winner}" if report.winner else "no winner yet")


def _ab_row(o: VariantOutcome) -> list[object]:
    interval = f"[{o.interval.low:.4g}, {o.interval.high:.4g}]" if o.interval else None
    verdict = None
    if o.p_value is not None:
        verdict = "significant" if o.significant else "not significant"
        if o.significant and o.better is not None:
            verdict += ", better" if o.better else ", worse"
    needed = None
    if o.needed is not None:
        needed = f"{o.needed} ({o.more_needed} more)" if o.more_needed else str(o.needed)
    return [
        o.variant + (" (shadow)" if o.shadow else ""),
        o.target,
        ", ".join(map(str, o.versions)) or None,
        o.n,
        o.value,
        interval,
        f"{o.difference:+.4g}" if o.difference is not None else None,
        f"{o.p_value:.3g}" if o.p_value is not None else None,
        verdict,
        needed,
    ]


@ab.command("promote")
@click.argument("endpoint")
@click.argument("variant")
@click.option("--reason", default=None, help="Why; kept with the alias move, with the A/B result.")
@click.option("--metric", default="accuracy", show_default=True, help="The A/B metric to quote.")
@project_option
@uri_option
@json_option
@handle_errors
def promote(
    endpoint: str,
    variant: str,
    reason: str | None,
    metric: str,
    project: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """Move the alias the champion variant serves (iris@production) to the version
    VARIANT serves; the audit log keeps the move with the A/B result.

    \b
    Example:
      cairn ab promote churn challenger --reason "two weeks of A/B"
    """
    with open_client(uri) as client:
        done = client.promote(endpoint, variant, reason=reason, metric=metric, project=project)
    if as_json:
        print_json(done)
        return
    print_promotion(done)


def print_promotion(done: Promotion) -> None:
    before = done.from_version if done.from_version is not None else "(unset)"
    click.echo(f"{done.model}@{done.alias}: {before} → {done.to_version}")
    click.echo(f"reason: {done.reason}")
