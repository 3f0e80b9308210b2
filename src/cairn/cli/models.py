"""``cairn models``: the model registry from a terminal.

List models and versions, read a version's model card, approve or reject it, move its
aliases (with every move kept, and a look back at where an alias pointed at a given
time), roll an alias back, protect it, and compare two versions side by side.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from cairn.cli.artifacts import _size
from cairn.cli.data import project_option
from cairn.cli.output import format_value, handle_errors, print_json, print_table
from cairn.cli.projects import json_option, open_client, uri_option
from cairn.cli.runs import _git_pairs, _pairs
from cairn.domain.models import AliasMove, ModelVersion, RegisteredModel


@click.group()
def models() -> None:
    """Registered models: versions, approvals, aliases and their history."""


# -- ls -----------------------------------------------------------------------------


@models.command("ls")
@project_option
@uri_option
@json_option
@handle_errors
def ls(project: str | None, uri: str, as_json: bool) -> None:
    """List registered models: versions, the latest, aliases and protected aliases.

    \b
    Example:
      cairn models ls --project cellar
    """
    with open_client(uri) as client:
        found = client.list_models(project)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no models yet")
        return
    print_table(
        ["name", "versions", "latest", "aliases", "protected"],
        [
            [
                m.name,
                m.version_count,
                m.latest_version,
                _aliases(m) or None,
                ", ".join(sorted(m.protected_aliases)) or None,
            ]
            for m in found
        ],
        max_width=60,
    )


def _aliases(model: RegisteredModel) -> str:
    return ", ".join(f"{alias}→{version}" for alias, version in sorted(model.aliases.items()))


# -- show ---------------------------------------------------------------------------


@models.command("show")
@click.argument("ref")
@project_option
@uri_option
@json_option
@handle_errors
def show(ref: str, project: str | None, uri: str, as_json: bool) -> None:
    """Show a version's model card: REF is iris@production, iris:3, iris@1.2.0 or iris
    (the latest).

    The card holds the semver and why it was picked, the flavor and algorithm, the
    approval, the aliases, the source run with its params and final metrics, the
    training data (dataset versions and batches), the git commit, the signature and the
    files.

    \b
    Example:
      cairn models show iris@production
    """
    with open_client(uri) as client:
        card = client.model_card(ref, project)
    if as_json:
        print_json(card)
        return
    _print_card(card)


def _print_card(card: dict[str, Any]) -> None:
    approval = card["approval"]
    click.echo(f"model {card['project']}/{card['model']}:{card['version']}")
    _pairs(
        None,
        [
            ("semver", f"{card['semver']} ({card['bump_reason']})"),
            ("flavor", card["flavor"]),
            ("algorithm", card["algorithm"]),
            ("approval", _approval_text(approval)),
            ("aliases", ", ".join(card["aliases"]) or None),
            ("author", card.get("author")),
            ("created", _parse_time(card.get("created_at"))),
            ("description", card.get("description") or None),
        ],
    )
    if card.get("tags"):
        _pairs("tags", sorted(card["tags"].items()))
    _print_run(card.get("run"))
    _print_training_data(card.get("training_data") or [])
    _print_signature(card.get("signature"))
    click.echo("files")
    print_table(
        ["path", "size", "digest"],
        [[f["path"], _size(f["size"]), f["digest"][:12]] for f in card["files"]],
        max_width=60,
    )


def _approval_text(approval: dict[str, Any]) -> str:
    text = str(approval["state"])
    if approval.get("by"):
        text += f" by {approval['by']}"
    if approval.get("at"):
        text += f" at {format_value(_parse_time(approval['at']))}"
    if approval.get("comment"):
        text += f": {approval['comment']}"
    return text


def _print_run(run: dict[str, Any] | None) -> None:
    if run is None:
        click.echo("run: none (registered outside a run, or the run is gone)")
        return
    named = f"  ({run['name']})" if run.get("name") else ""
    click.echo(f"run {run['id']}{named}, {run['status']}")
    if run.get("git"):
        _pairs("git", _git_pairs(run["git"]))
    _pairs("params", sorted(run.get("params", {}).items()))
    _pairs("metrics (final)", sorted(run.get("metrics", {}).items()))


def _print_training_data(inputs: list[dict[str, Any]]) -> None:
    if not inputs:
        click.echo("training data: none recorded")
        return
    click.echo("training data")
    print_table(
        ["dataset", "role", "batch", "digest"],
        [[i["dataset"], i["role"], i.get("batch"), (i.get("digest") or "")[:12]] for i in inputs],
        max_width=60,
    )


def _print_signature(signature: dict[str, Any] | None) -> None:
    if not signature:
        click.echo("signature: none (register with input_example= to record one)")
        return
    click.echo("signature")
    rows = {
        **_schema_rows("inputs", signature.get("inputs")),
        **_schema_rows("outputs", signature.get("outputs")),
    }
    width = max(len(key) for key in rows)
    for key, value in rows.items():
        click.echo(f"  {key.ljust(width)}  {format_value(value)}")


def _schema_rows(prefix: str, schema: Any) -> dict[str, str | None]:
    """A signature schema as rows: one per column, or one for a tensor."""
    if schema is None:
        return {prefix: None}
    if isinstance(schema, dict) and "tensor" in schema:
        tensor = schema["tensor"]
        return {prefix: f"tensor {tensor.get('dtype')} {tensor.get('shape')}"}
    if isinstance(schema, list):
        return {f"{prefix}.{c.get('name')}": str(c.get("type")) for c in schema}
    return {prefix: str(schema)}


# -- versions -----------------------------------------------------------------------


@models.command("versions")
@click.argument("name")
@project_option
@uri_option
@json_option
@handle_errors
def versions(name: str, project: str | None, uri: str, as_json: bool) -> None:
    """List a model's versions, newest first: semver and why, approval, aliases, run.

    \b
    Example:
      cairn models versions iris
    """
    with open_client(uri) as client:
        found = client.list_model_versions(name, project)
    if as_json:
        print_json(found)
        return
    print_table(
        ["version", "semver", "bump reason", "approval", "aliases", "run", "created"],
        [
            [
                v.version,
                v.semver,
                v.bump_reason,
                v.approval.value,
                ", ".join(v.aliases) or None,
                v.run_id,
                v.created_at,
            ]
            for v in found
        ],
    )


# -- approvals ----------------------------------------------------------------------


@models.command("approve")
@click.argument("ref")
@click.option("--message", "-m", "comment", default=None, help="Why, for the record.")
@project_option
@uri_option
@json_option
@handle_errors
def approve(ref: str, comment: str | None, project: str | None, uri: str, as_json: bool) -> None:
    """Approve a version: a protected alias may then point to it.

    \b
    Example:
      cairn models approve iris:3 -m "validated on the holdout set"
    """
    with open_client(uri) as client:
        version = client.approve(ref, comment, project)
    _print_decision(version, as_json)


@models.command("reject")
@click.argument("ref")
@click.option("--message", "-m", "comment", default=None, help="Why, for the record.")
@project_option
@uri_option
@json_option
@handle_errors
def reject(ref: str, comment: str | None, project: str | None, uri: str, as_json: bool) -> None:
    """Reject a version: no protected alias may point to it.

    \b
    Example:
      cairn models reject iris:4 -m "worse recall on the minority class"
    """
    with open_client(uri) as client:
        version = client.reject(ref, comment, project)
    _print_decision(version, as_json)


def _print_decision(version: ModelVersion, as_json: bool) -> None:
    if as_json:
        print_json(version)
        return
    by = f" by {version.approval_actor}" if version.approval_actor else ""
    note = f": {version.approval_comment}" if version.approval_comment else ""
    click.echo(f"{version} ({version.semver}) {version.approval.value}{by}{note}")


# -- aliases ------------------------------------------------------------------------


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--to", "alias", required=True, help="The alias to point at VERSION.")
@click.option("--reason", default=None, help="Why, kept with the move.")
@project_option
@uri_option
@json_option
@handle_errors
def promote(
    name: str,
    version: str,
    alias: str,
    reason: str | None,
    project: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """Point alias --to at VERSION of NAME: a number (3), a semver (1.2.0) or another
    alias (staging). A protected alias refuses a version that is not approved.

    \b
    Examples:
      cairn models promote iris 3 --to production --reason "beats v2 on holdout"
      cairn models promote iris staging --to production
    """
    with open_client(uri) as client:
        moved = client.set_alias(name, alias, _version_arg(name, version), reason, project)
    _print_move(name, alias, moved, as_json)


def _version_arg(name: str, version: str) -> int | str:
    """3 is a number; 1.2.0 or staging becomes iris@1.2.0; a full reference stays."""
    if version.isdigit():
        return int(version)
    if ":" in version or "@" in version:
        return version
    return f"{name}@{version}"


def _print_move(name: str, alias: str, version: ModelVersion, as_json: bool) -> None:
    if as_json:
        print_json({"model": name, "alias": alias, "version": version})
        return
    click.echo(f"{name}@{alias} → {version} ({version.semver}, {version.approval.value})")


@models.command("rollback")
@click.argument("name")
@click.option("--alias", required=True, help="The alias to move back.")
@click.option("--reason", default=None, help="Why, kept with the move.")
@project_option
@uri_option
@json_option
@handle_errors
def rollback(
    name: str, alias: str, reason: str | None, project: str | None, uri: str, as_json: bool
) -> None:
    """Move an alias back to the version it pointed to before its last move; the
    rollback is a move like any other, kept in the history.

    \b
    Example:
      cairn models rollback iris --alias production --reason "latency regression"
    """
    with open_client(uri) as client:
        moved = client.rollback(name, alias, reason, project)
    _print_move(name, alias, moved, as_json)


@models.command("protect")
@click.argument("name")
@click.argument("alias")
@click.option("--off", is_flag=True, help="Stop protecting the alias.")
@project_option
@uri_option
@json_option
@handle_errors
def protect(name: str, alias: str, off: bool, project: str | None, uri: str, as_json: bool) -> None:
    """Protect ALIAS of NAME: from now on it may point only to approved versions.

    \b
    Examples:
      cairn models protect iris production
      cairn models protect iris production --off
    """
    with open_client(uri) as client:
        model = client.protect_alias(name, alias, not off, project)
    if as_json:
        print_json(model)
        return
    if off:
        click.echo(f"{name}@{alias} is not protected: it may point to any version")
    else:
        click.echo(f"{name}@{alias} is protected: it may point only to approved versions")


@models.command("history")
@click.argument("name")
@click.option("--alias", default=None, help="Only this alias's moves.")
@click.option(
    "--at",
    "at_text",
    default=None,
    metavar="ISO-TIME",
    help="With --alias: the version it pointed to at this time (no offset means UTC, "
    "as history prints times).",
)
@project_option
@uri_option
@json_option
@handle_errors
def history(
    name: str,
    alias: str | None,
    at_text: str | None,
    project: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """Every move of a model's aliases, oldest first: time, alias, from → to, actor,
    reason. With --at and --alias: which version the alias pointed to then.

    \b
    Examples:
      cairn models history iris --alias production
      cairn models history iris --alias production --at 2026-03-03T12:00
    """
    if at_text is not None:
        if alias is None:
            raise click.UsageError("--at needs --alias: which alias to look back at")
        _print_pointed(name, alias, _parse_at(at_text), project, uri, as_json)
        return
    with open_client(uri) as client:
        moves = client.alias_history(name, alias, project)
    if as_json:
        print_json(moves)
        return
    if not moves:
        click.echo(f"no alias of {name} has moved yet")
        return
    print_table(
        ["time", "alias", "from → to", "actor", "reason"],
        [[m.at, m.alias, _move_text(m), m.actor, m.reason] for m in moves],
        max_width=60,
    )


def _move_text(move: AliasMove) -> str:
    def side(version: int | None) -> str:
        return "-" if version is None else str(version)

    deleted = " (removed)" if move.to_version is None else ""
    return f"{side(move.from_version)} → {side(move.to_version)}{deleted}"


def _parse_at(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time such as 2026-03-03T12:00 or "
            "2026-03-03T12:00:00+01:00",
            param_hint="--at",
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _print_pointed(
    name: str, alias: str, at: datetime, project: str | None, uri: str, as_json: bool
) -> None:
    with open_client(uri) as client:
        version = client.resolve_alias(name, alias, at, project)
    if as_json:
        print_json({"model": name, "alias": alias, "at": at, "version": version})
        return
    when = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if version is None:
        click.echo(f"{name}@{alias} pointed to no version at {when}")
        return
    click.echo(f"{name}@{alias} pointed to {version} ({version.semver}) at {when}")


# -- compare ------------------------------------------------------------------------


@models.command("compare")
@click.argument("a")
@click.argument("b")
@project_option
@uri_option
@json_option
@handle_errors
def compare(a: str, b: str, project: str | None, uri: str, as_json: bool) -> None:
    """Compare two versions side by side: semver, flavor, params, final metrics,
    training data and signature. Rows that differ are marked with '*'.

    \b
    Examples:
      cairn models compare iris:2 iris:3
      cairn models compare iris@staging iris@production --json
    """
    with open_client(uri) as client:
        found = client.compare_models(a, b, project)
    if as_json:
        print_json(found)
        return
    click.echo(f"{found['a']} vs {found['b']} (* differs)")
    headers = ["", "key", found["a"], found["b"]]
    sections = [
        ("model", _pair_rows({k: found[k] for k in ("semver", "flavor", "algorithm")})),
        ("params", _keyed_rows(found["params"])),
        ("metrics (final)", _keyed_rows(found["metrics"])),
        ("training data", _data_rows(found["training_data"])),
        ("signature", _signature_rows(found["signature"])),
    ]
    for title, rows in sections:
        click.echo(f"\n{title}")
        if rows:
            print_table(headers, [["*" if a != b else "", k, a, b] for k, a, b in rows])
        else:
            click.echo("  none on either side")


Row = tuple[str, Any, Any]


def _pair_rows(pairs: dict[str, dict[str, Any]]) -> list[Row]:
    return [(key, pair["a"], pair["b"]) for key, pair in pairs.items()]


def _keyed_rows(compared: dict[str, dict[str, Any]]) -> list[Row]:
    return [(key, v.get("a"), v.get("b")) for key, v in sorted(compared.items())]


def _data_rows(data: dict[str, list[str]]) -> list[Row]:
    """One row per dataset: the version each side trained on (``-`` where it did not)."""

    def by_dataset(refs: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for ref in refs:
            dataset, _, version = ref.rpartition(":")
            out[dataset or ref] = ", ".join(filter(None, [out.get(dataset or ref), version]))
        return out

    left, right = by_dataset(data.get("a") or []), by_dataset(data.get("b") or [])
    return [(k, left.get(k), right.get(k)) for k in sorted(set(left) | set(right))]


def _signature_rows(signature: dict[str, Any]) -> list[Row]:
    sides = [signature.get("a") or {}, signature.get("b") or {}]
    left, right = (
        {**_schema_rows("inputs", s.get("inputs")), **_schema_rows("outputs", s.get("outputs"))}
        if s
        else {}
        for s in sides
    )
    keys = list(dict.fromkeys([*left, *right]))
    return [(k, left.get(k), right.get(k)) for k in keys]


def _parse_time(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value
