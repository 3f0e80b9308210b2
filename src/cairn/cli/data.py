"""``cairn data``: version datasets, look at their profiles, diff and download them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click

from cairn.cli.artifacts import _size
from cairn.cli.output import format_value, handle_errors, print_json, print_table
from cairn.cli.progress import transfer_progress
from cairn.cli.projects import json_option, open_client, uri_option
from cairn.client.fluent import Client
from cairn.domain.datasets import DatasetDiff, DatasetFile, DatasetKind, DatasetVersion
from cairn.domain.errors import NotFound

F = TypeVar("F", bound=Callable[..., Any])
_TOP_SHOWN = 3  # top values shown per categorical column in `data show`


def project_option(func: F) -> F:
    """``--project``: whose datasets; the SDK's default when not given."""
    return click.option(
        "--project",
        "-p",
        default=None,
        help="The project (default: $CAIRN_PROJECT, else 'default').",
    )(func)


@click.group()
def data() -> None:
    """Datasets: versioned by content, profiled, compared for drift."""


# -- add ----------------------------------------------------------------------------


@data.command("add")
@click.argument("name")
@click.argument("source")
@click.option("--batch", default=None, help="A label for this version, e.g. 2026-11.")
@click.option("--message", "-m", default=None, help="What this version is or changes.")
@project_option
@uri_option
@json_option
@handle_errors
def add(
    name: str,
    source: str,
    batch: str | None,
    message: str | None,
    project: str | None,
    uri: str,
    as_json: bool,
) -> None:
    """Version SOURCE as dataset NAME: a file, a folder, or a URI kept by reference
    (file://, http(s)://, s3://). Content Cairn already has as a version of NAME is not
    versioned again: that version is printed.

    \b
    Examples:
      cairn data add wine data/wine.csv --batch 2026-11 -m "November's harvest"
      cairn data add images s3://ml-bucket/images/
    """
    with _writing_client(uri) as client:
        before = _version_numbers(client, name, project)
        with transfer_progress(lambda: _local_size(source), f"hashing {name}") as progress:
            version = client.log_dataset(name, source, batch, message, project, progress=progress)
    created = version.version not in before
    if as_json:
        print_json({**asdict(version), "created": created})
        return
    if created:
        click.echo(f"{version} created ({_summary(version)})")
        return
    latest = max(before)
    note = "" if version.version == latest else f"; the latest is {name}:{latest}"
    click.echo(f"{version} unchanged (content matches {version}{note})")
    if (batch is not None and batch != version.batch) or (
        message is not None and message != version.message
    ):
        click.echo(
            f"note: {version} already holds this content; --batch and --message were not recorded",
            err=True,
        )


@contextmanager
def _writing_client(uri: str) -> Iterator[Client]:
    """Unlike reads, a first ``data add`` may create the store, as the SDK would."""
    client = Client(uri)
    try:
        yield client
    finally:
        client.close()


def _version_numbers(client: Client, name: str, project: str | None) -> set[int]:
    try:
        return {v.version for v in client.list_dataset_versions(name, project)}
    except NotFound:
        return set()


def _local_size(source: str) -> int:
    """The bytes ``log_dataset`` will hash: none for a URI kept by reference."""
    if "://" in source:
        return 0
    path = Path(source)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def _summary(version: DatasetVersion) -> str:
    files = f"{version.file_count} file{'' if version.file_count == 1 else 's'}"
    where = f", by reference to {version.source}" if version.kind is DatasetKind.REFERENCE else ""
    return f"digest {version.digest[:12]}, {files}, {_size(version.size)}{where}"


# -- ls -----------------------------------------------------------------------------


@data.command("ls")
@click.argument("name", required=False)
@project_option
@uri_option
@json_option
@handle_errors
def ls(name: str | None, project: str | None, uri: str, as_json: bool) -> None:
    """List datasets or, given NAME, its versions (newest first).

    \b
    Examples:
      cairn data ls
      cairn data ls wine --project cellar
    """
    if name is not None:
        _ls_versions(name, project, uri, as_json)
        return
    with open_client(uri) as client:
        found = client.list_datasets(project)
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("no datasets yet")
        return
    print_table(
        ["name", "versions", "latest", "created"],
        [[d.name, d.version_count, d.latest_version, d.created_at] for d in found],
    )


def _ls_versions(name: str, project: str | None, uri: str, as_json: bool) -> None:
    with open_client(uri) as client:
        versions = client.list_dataset_versions(name, project)
    if as_json:
        print_json(versions)
        return
    print_table(
        ["version", "batch", "files", "size", "author", "created", "message"],
        [
            [v.version, v.batch, v.file_count, _size(v.size), v.author, v.created_at, v.message]
            for v in versions
        ],
    )


# -- show ---------------------------------------------------------------------------


@data.command("show")
@click.argument("ref")
@click.option("--files", "with_files", is_flag=True, help="List the version's files too.")
@project_option
@uri_option
@json_option
@handle_errors
def show(ref: str, with_files: bool, project: str | None, uri: str, as_json: bool) -> None:
    """Show a dataset version and its profile: REF is wine (the latest), wine:2 or
    wine@BATCH.

    \b
    Examples:
      cairn data show wine:2 --files
    """
    files: list[DatasetFile] | None = None
    with open_client(uri) as client:
        version = client.get_dataset_version(ref, project)
        if with_files:
            _listed, files = client.list_dataset_files(version.ref)
    if as_json:
        out = asdict(version)
        if files is not None:
            out["files"] = files
        print_json(out)
        return
    _print_header(version)
    click.echo()
    _print_profile(version.profile)
    if files is not None:
        click.echo()
        _print_files(files)


def _print_header(version: DatasetVersion) -> None:
    parent = f"{version.name}:{version.parent_version}" if version.parent_version else None
    fields = [
        ("version", version.ref),
        ("digest", version.digest),
        ("kind", version.kind.value),
        ("files", version.file_count),
        ("size", _size(version.size)),
        ("batch", version.batch),
        ("author", version.author),
        ("created", version.created_at),
        ("parent", parent),
        ("source", version.source),
        ("message", version.message),
    ]
    width = max(len(key) for key, _value in fields)
    for key, value in fields:
        click.echo(f"{key.ljust(width)}  {format_value(value)}")


def _print_profile(profile: dict[str, Any] | None) -> None:
    if profile is None:
        click.echo("no profile (not a table Cairn could read)")
        return
    columns = profile["columns"]
    click.echo(f"profile: {profile['rows']:,} rows, {len(columns)} columns")
    print_table(
        ["column", "kind", "nulls", "min", "max", "mean", "top values"],
        [
            [
                c["name"],
                c["kind"],
                c["nulls"],
                c.get("min"),
                c.get("max"),
                c.get("mean"),
                _top(c.get("top")),
            ]
            for c in columns
        ],
    )


def _top(top: list[list[Any]] | None) -> str | None:
    if not top:
        return None
    shown = ", ".join(f"{value} ({count})" for value, count in top[:_TOP_SHOWN])
    return shown + (", …" if len(top) > _TOP_SHOWN else "")


def _print_files(files: list[DatasetFile]) -> None:
    print_table(
        ["path", "size", "digest"],
        [[f.path, _size(f.size), f.digest[:12] if f.digest else f.etag] for f in files],
        max_width=60,
    )


# -- diff ---------------------------------------------------------------------------


@data.command("diff")
@click.argument("old")
@click.argument("new")
@project_option
@uri_option
@json_option
@handle_errors
def diff(old: str, new: str, project: str | None, uri: str, as_json: bool) -> None:
    """Compare two versions: files added, removed and changed, the schema, and per
    column the drift (PSI and KS). Exits 0 whether or not they differ.

    \b
    Examples:
      cairn data diff wine:1 wine:2
      cairn data diff wine@2026-10 wine@2026-11 --json
    """
    with open_client(uri) as client:
        found = client.diff_datasets(old, new, project)
    if as_json:
        print_json({**asdict(found), "unchanged": found.unchanged})
        return
    if found.unchanged:
        click.echo(f"{found.old} -> {found.new}: no differences")
        return
    click.echo(f"{found.old} -> {found.new}")
    _print_file_changes(found)
    _print_schema_changes(found.profile)
    _print_drift(found.profile.get("columns") or [])


def _print_file_changes(found: DatasetDiff) -> None:
    counts = f"{len(found.added)} added, {len(found.removed)} removed, {len(found.changed)} changed"
    click.echo(f"files: {counts}")
    for path in found.added:
        click.echo(f"  + {path}")
    for path in found.removed:
        click.echo(f"  - {path}")
    for change in found.changed:
        click.echo(f"  ~ {change.path} ({_size(change.old_size)} -> {_size(change.new_size)})")


def _print_schema_changes(profile: dict[str, Any]) -> None:
    rows = profile.get("rows") or {}
    if rows.get("change") is not None:
        click.echo(f"rows: {rows['old']:,} -> {rows['new']:,} ({rows['change']:+,})")
    schema = profile.get("schema")
    if schema is None:
        return
    lines = [f"  + {name}" for name in schema["added"]]
    lines += [f"  - {name}" for name in schema["removed"]]
    lines += [f"  ~ {c['column']}: {c['old_dtype']} -> {c['new_dtype']}" for c in schema["changed"]]
    click.echo("schema: " + ("unchanged" if not lines else f"{len(lines)} change(s)"))
    for line in lines:
        click.echo(line)


def _print_drift(columns: list[dict[str, Any]]) -> None:
    if not columns:
        return
    click.echo()
    print_table(
        ["column", "psi", "ks", "null rate", "mean", "drift"],
        [
            [
                c["column"],
                _stat(c.get("psi")),
                _stat(c.get("ks")),
                _change(c.get("null_rate")),
                _change(c.get("mean")),
                "DRIFT" if c.get("drifted") else "",
            ]
            for c in columns
        ],
    )


def _stat(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _change(pair: dict[str, Any] | None) -> str:
    if pair is None:
        return "-"
    old, new = format_value(pair.get("old")), format_value(pair.get("new"))
    return old if old == new else f"{old} -> {new}"


# -- get ----------------------------------------------------------------------------


@data.command("get")
@click.argument("ref")
@click.option("--dest", default=".", show_default=True, help="Folder to write into.")
@project_option
@uri_option
@handle_errors
def get(ref: str, dest: str, project: str | None, uri: str) -> None:
    """Download a version's files into DEST; prints the folder.

    Each file is written atomically and checked against its digest; files already
    there with the right bytes are left as they are.

    \b
    Example:
      cairn data get wine:2 --dest data/wine
    """
    with open_client(uri) as client:

        def total() -> int:
            return client.get_dataset_version(ref, project).size

        with transfer_progress(total, f"downloading {ref}") as progress:
            local = client.get_dataset(ref, dest, project, progress=progress)
    click.echo(os.fspath(local))
