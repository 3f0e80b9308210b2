"""Export a project to a tar file and import it into a store: the backup story.

The tar holds ``cairn-export/meta.json`` (format, version, project, row counts, blob
digests), ``cairn-export/records.jsonl`` (one ``{"t": table, "r": row}`` a line, tables in
dependency order, rows streamed from the database in chunks) and ``cairn-export/blobs/<sha256>``
(every blob the project's artifacts, dataset files and model files name, streamed from
the blob store and checked against its digest).

Import checks every blob in the tar against its name before it writes anything, refuses
a project name that exists (import under ``--project NEW``), puts the blobs the target
lacks, then inserts every row in one transaction: the same run ids, version numbers,
semvers, aliases and histories; surrogate keys are the target store's own. Run ids are
unique across a store, so a copy imported beside its original (same store, new name)
gets new run ids (made at the same start times); the report counts them.
Not exported: webhooks (their secrets belong to the store they call from) and the
logging batches' idempotency keys (a resend to the new store is a new batch).

    export_project(db, blobs, "translate", "backup.tar")
    import_project(other_db, other_blobs, "backup.tar", project="translate_copy")
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from cairn.blobs.base import BlobStore, is_digest
from cairn.domain.errors import Conflict, CorruptBlob, Invalid
from cairn.domain.ids import new_ulid, ulid_time_ms
from cairn.domain.validation import is_project_name
from cairn.store.database import Database
from cairn.store.repositories.events import EventRepository, NewEvent
from cairn.store.repositories.portability import (
    CHUNK,
    PLAN,
    PLANS,
    REFERENCED,
    PortabilityRepository,
)
from cairn.store.repositories.projects import ProjectRepository

FORMAT = "cairn-export"
VERSION = 1
ROOT = "cairn-export"
_READ = 1 << 20


@dataclass(frozen=True)
class PortabilityReport:
    project: str
    rows: dict[str, int]
    blobs: int
    blobs_written: int = 0
    runs_renamed: int = 0


class _Hashing:
    """Reads through, hashing what passes."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.hash.update(data)
        return data


def export_project(
    db: Database, blobs: BlobStore, project: str, out: str | Path
) -> PortabilityReport:
    """Write the whole of ``project`` (rows and blobs) to the tar file ``out``.

    >>> export_project(db, blobs, "translate", "translate.tar").rows["runs"]  # doctest: +SKIP
    12
    """
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="cairn-export-") as tmp:
        records = Path(tmp) / "records.jsonl"
        with db.read() as conn, records.open("w", encoding="utf-8") as sink:
            found = ProjectRepository(conn).get(project)
            repo = PortabilityRepository(conn)
            counts["texts"] = _write(sink, "texts", repo.texts(found.id))
            for plan in PLAN:
                counts[plan.name] = _write(sink, plan.name, repo.rows(plan, found.id))
            digests = list(repo.blob_digests(found.id))
        meta = {"format": FORMAT, "version": VERSION, "project": project, "rows": counts}
        meta["blobs"] = digests
        partial = Path(f"{out}.partial")  # a failed export leaves no tar that looks whole
        try:
            with tarfile.open(partial, "w") as tar:
                _add_bytes(tar, f"{ROOT}/meta.json", json.dumps(meta, indent=1).encode())
                tar.add(records, arcname=f"{ROOT}/records.jsonl")
                for digest in digests:
                    _add_blob(tar, blobs, digest)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    return PortabilityReport(project, counts, len(digests))


def _write(sink: IO[str], name: str, rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    for row in rows:
        sink.write(json.dumps({"t": name, "r": row}, separators=(",", ":")) + "\n")
        count += 1
    return count


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_blob(tar: tarfile.TarFile, blobs: BlobStore, digest: str) -> None:
    info = tarfile.TarInfo(f"{ROOT}/blobs/{digest}")
    info.size = blobs.size(digest)
    with blobs.open(digest) as stream:
        reader = _Hashing(stream)
        try:
            tar.addfile(info, reader)
        except OSError:  # fewer bytes than the store says it holds
            reader.hash = hashlib.sha256(b"short")
    if reader.hash.hexdigest() != digest:
        raise CorruptBlob(
            f"blob {digest} in the store no longer matches its digest: export stopped",
            details={"digest": digest},
        )


def import_project(
    db: Database,
    blobs: BlobStore,
    source: str | Path,
    *,
    project: str | None = None,
    actor: str | None = None,
) -> PortabilityReport:
    """Recreate the project in ``source`` (a tar from ``export_project``) in this store.

    >>> import_project(db, blobs, "translate.tar", project="translate_copy")  # doctest: +SKIP
    """
    with tarfile.open(source, "r:*") as tar:
        meta = _read_meta(tar)
        name = project or str(meta["project"])
        if not is_project_name(name):
            raise Invalid(f"{name!r} is not a valid project name", field="project")
        listed = [str(d) for d in meta.get("blobs", [])]
        members = _verify_blobs(tar, listed)
        with db.read() as conn:
            if ProjectRepository(conn).find(name) is not None:
                raise Conflict(
                    f"project {name!r} already exists in this store: import it under "
                    "another name (--project NEW_NAME)",
                    details={"project": name},
                )
        written = 0
        for digest in listed:
            if not blobs.exists(digest):
                stream = tar.extractfile(members[digest])
                assert stream is not None
                with stream:
                    blobs.put(stream, expected_digest=digest)  # type: ignore[arg-type]
                written += 1
        records = tar.extractfile(f"{ROOT}/records.jsonl")
        if records is None:
            raise Invalid("the export has no records.jsonl", field="source")
        with records, db.write() as tx:
            if ProjectRepository(tx.conn).find(name) is not None:
                raise Conflict(f"project {name!r} already exists", details={"project": name})
            importer = _Importer(PortabilityRepository(tx.conn), name, str(meta["project"]))
            importer.run(records)
            new_id = importer.mapped["projects"][importer.old_project_id]
            after: dict[str, Any] = {"name": name, "from": str(meta["project"])}
            after |= {"source": Path(source).name, "rows": sum(importer.counts.values())}
            EventRepository(tx.conn).add_many(
                actor, [NewEvent("project.imported", "project", name, new_id, after=after)]
            )
    return PortabilityReport(name, importer.counts, len(listed), written, len(importer.run_ids))


def _read_meta(tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        stream = tar.extractfile(f"{ROOT}/meta.json")
    except KeyError:
        stream = None
    if stream is None:
        raise Invalid("not a Cairn export: no cairn-export/meta.json in the tar", field="source")
    meta = json.loads(stream.read())
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise Invalid(
            f"unsupported export format {meta.get('format')!r} version {meta.get('version')!r}:"
            f" this Cairn reads {FORMAT} version {VERSION}",
            field="source",
        )
    return dict(meta)


def _verify_blobs(tar: tarfile.TarFile, listed: list[str]) -> dict[str, tarfile.TarInfo]:
    """Every listed blob is in the tar and hashes to its name; nothing is written before."""
    members = {
        os.path.basename(m.name): m for m in tar.getmembers() if m.name.startswith(f"{ROOT}/blobs/")
    }
    for digest in listed:
        if not is_digest(digest) or digest not in members:
            raise Invalid(f"the export lacks blob {digest}: nothing imported", field="source")
        stream = tar.extractfile(members[digest])
        assert stream is not None
        hasher = hashlib.sha256()
        with stream:
            while chunk := stream.read(_READ):
                hasher.update(chunk)
        if hasher.hexdigest() != digest:
            raise CorruptBlob(
                f"blob {digest} in the export is corrupted (its bytes hash to "
                f"{hasher.hexdigest()}): nothing imported",
                details={"digest": digest, "actual": hasher.hexdigest()},
            )
    return members


class _Importer:
    """Inserts records in file order, mapping old surrogate keys to the new ones."""

    def __init__(self, repo: PortabilityRepository, name: str, old_name: str) -> None:
        self.repo = repo
        self.name = name
        self.old_name = old_name
        self.old_project_id: Any = None
        self.mapped: dict[str, dict[Any, int]] = {p.name: {} for p in PLAN if p.surrogate}
        self.key_ids: dict[str, int] = {}
        self.run_ids: dict[str, str] = {}  # old -> new, for ids the store already holds
        self.counts: dict[str, int] = {}
        self.pending: list[dict[str, Any]] = []
        self.pending_table = ""

    def run(self, records: IO[bytes]) -> None:
        for number, line in enumerate(records, 1):
            try:
                record = json.loads(line)
                table_name, row = str(record["t"]), dict(record["r"])
            except (ValueError, KeyError, TypeError):
                raise Invalid(
                    f"records.jsonl line {number} is not a record: the export is damaged",
                    field="source",
                ) from None
            self.add(table_name, row)
        self.flush()

    def flush(self) -> None:
        if self.pending:
            self.repo.insert_many(PLANS[self.pending_table], self.pending)
            self.pending.clear()

    def add(self, table_name: str, row: dict[str, Any]) -> None:
        self.counts[table_name] = self.counts.get(table_name, 0) + 1
        if table_name == "texts":
            self.repo.put_texts([row])
            return
        plan = PLANS.get(table_name)
        if plan is None:
            raise Invalid(f"the export names an unknown table {table_name!r}", field="source")
        if table_name != self.pending_table:
            self.flush()
            self.pending_table = table_name
        if table_name == "projects":
            row["name"] = self.name
            self.old_project_id = row["id"]
        elif table_name == "events" and row.get("entity_type") == "project":
            if row.get("entity_id") == self.old_name:  # a project's events name it
                row["entity_id"] = self.name
        elif table_name == "runs":
            self._run_id(row)
        if table_name == "events" and self.run_ids:
            for column in ("entity_id", "before", "after"):
                for old, new in self.run_ids.items():
                    if isinstance(row.get(column), str):
                        row[column] = row[column].replace(old, new)
        for column, target in plan.refs.items():
            if row.get(column) is not None:
                row[column] = _mapped(self.mapped[target], row[column], table_name, column)
        if plan.metric_key:
            key = str(row.pop("key"))
            if key not in self.key_ids:
                self.key_ids[key] = self.repo.metric_key_id(key)
            row["key_id"] = self.key_ids[key]
        if plan.surrogate and table_name in REFERENCED:
            self.mapped[table_name][row[plan.surrogate]] = self.repo.insert_one(plan, row)
        else:
            self.pending.append(row)
            if len(self.pending) >= CHUNK:
                self.flush()

    def _run_id(self, row: dict[str, Any]) -> None:
        old = str(row["id"])
        if self.repo.run_exists(old):
            self.run_ids[old] = row["id"] = new_ulid(ulid_time_ms(old))
        if row.get("parent_id") in self.run_ids:
            row["parent_id"] = self.run_ids[row["parent_id"]]


def _mapped(keys: dict[Any, int], old: Any, table_name: str, column: str) -> int:
    try:
        return keys[old]
    except KeyError:
        raise Invalid(
            f"the export's {table_name}.{column} = {old} names a row it does not hold",
            field="source",
        ) from None
