"""The local spool: batches a server could not take, kept on disk until it takes them.

One file per client process (``<dir>/<pid>-<ulid>.spool``), append-only. Each record is

    length (4 bytes, big-endian) | crc32 of the payload (4 bytes) | payload (JSON)

and every append is fsync'd, so a record acknowledged to the caller survives a crash.
A torn last record (the process died mid-write) fails the length or CRC check and is
ignored. A record sent and acknowledged is marked done by its key in a small sidecar
file (``….spool.ack``, one key a line, also fsync'd): the spool itself is never
rewritten, so a reader (``cairn sync``) and the writing process never race on it.

Payloads are ``{"kind": "batch", "key", "batch"}`` (the batch as the wire encodes it,
idempotency key included, so a resend never duplicates) or, in offline mode,
``{"kind": "artifacts", "key", "run_id", "items": [[path, digest, media_type, size]]}``
whose bytes wait under ``<dir>/blobs/<digest>``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.client.transfer import LocalFile
from cairn.domain.errors import CairnError, Unavailable
from cairn.domain.ids import new_ulid
from cairn.domain.records import Batch

if TYPE_CHECKING:
    from cairn.client.backend import Backend

_HEADER = struct.Struct(">II")
MAX_RECORD = 256 * 1024 * 1024  # a length above this is garbage, not a record
SUFFIX = ".spool"
ACK_SUFFIX = ".spool.ack"
TARGET = "target"  # the kind (and key) of a file's first record when it names its server


def default_spool_dir() -> Path:
    """``$CAIRN_SPOOL_DIR``, else ``~/.cairn/spool``."""
    env = os.environ.get("CAIRN_SPOOL_DIR")
    return Path(env) if env else Path.home() / ".cairn" / "spool"


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    payload: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.payload.get("kind", "batch"))


def encode_record(payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _HEADER.pack(len(body), zlib.crc32(body)) + body


def read_records(path: Path) -> Iterator[Record]:
    """Every whole, intact record of a spool file, in order.

    A record whose CRC does not match is skipped; a torn tail (the length runs past the
    end of the file) ends the reading.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        if length > MAX_RECORD or start + length > len(data):
            return  # torn last record
        body = data[start : start + length]
        offset = start + length
        if zlib.crc32(body) != crc:
            continue
        try:
            payload = json.loads(body)
        except ValueError:
            continue
        if isinstance(payload, dict) and isinstance(payload.get("key"), str):
            yield Record(payload["key"], payload)


def read_acks(path: Path) -> set[str]:
    ack = _ack_path(path)
    try:
        text = ack.read_text()
    except FileNotFoundError:
        return set()
    # A torn last line is a key that was not fully written: it matches nothing.
    return {line for line in text.split("\n") if line}


def write_acks(path: Path, keys: list[str]) -> None:
    """Mark records of the spool file ``path`` done (append + fsync)."""
    if not keys:
        return
    _append(_ack_path(path), "".join(f"{k}\n" for k in keys).encode())


def spool_files(folder: Path) -> list[Path]:
    """The spool files in a folder, oldest first (names start with the process id and a
    ULID, so the ULID part orders them)."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.name.endswith(SUFFIX) and p.is_file()]
    return sorted(files, key=lambda p: (p.name.split("-", 1)[-1], p.name))


def _ack_path(path: Path) -> Path:
    return path.with_name(path.name + ".ack")


def _append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """This process's spool file; made on the first append, so a client whose server
    always answers leaves nothing behind.

    >>> spool = Spool(tmp_path)                       # doctest: +SKIP
    >>> spool.append_batch(batch); spool.pending()    # doctest: +SKIP
    """

    def __init__(
        self, folder: str | os.PathLike[str] | None = None, *, target: str | None = None
    ) -> None:
        self.folder = Path(folder) if folder is not None else default_spool_dir()
        self.target = target  # the server the batches were meant for: ``cairn sync``'s default
        self.path = self.folder / f"{os.getpid()}-{new_ulid()}{SUFFIX}"
        self._lock = threading.Lock()
        self._unacked: dict[str, None] = {}  # keys, in append order

    def __len__(self) -> int:
        with self._lock:
            return len(self._unacked)

    def _write(self, payload: dict[str, Any]) -> Record:
        record = Record(payload["key"], payload)
        data = encode_record(payload)
        with self._lock:
            if not self.path.exists():
                self.folder.mkdir(parents=True, exist_ok=True)
                if self.target is not None:
                    data = encode_record({"kind": TARGET, "key": TARGET, "uri": self.target}) + data
            _append(self.path, data)
            self._unacked[record.key] = None
        return record

    def append_batch(self, batch: Batch) -> Record:
        from cairn.client.http import encode_batch

        key = batch.idempotency_key
        return self._write({"kind": "batch", "key": key, "batch": json.loads(encode_batch(batch))})

    def append_artifacts(
        self, run_id: str, items: Sequence[tuple[str, str, str | None, int]]
    ) -> Record:
        """Record artifacts whose bytes are already under ``blobs/``: (path, digest,
        media type, size) each."""
        payload: dict[str, Any] = {"kind": "artifacts", "key": new_ulid(), "run_id": run_id}
        payload["items"] = [list(item) for item in items]
        return self._write(payload)

    def store_blob(self, source: Path, digest: str) -> Path:
        """Copy a file into ``blobs/<digest>`` (atomically; once per digest)."""
        target = blob_path(self.folder, digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{digest}.{new_ulid()}.tmp")
            shutil.copyfile(source, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        return target

    def pending(self) -> list[Record]:
        """Records of this spool not yet acknowledged, read back from disk."""
        return pending_records(self.path)

    def discard_if_done(self) -> None:
        """Remove this process's spool once everything in it has been acknowledged."""
        with self._lock:
            if self._unacked or not self.path.exists():
                return
            if not pending_records(self.path):
                self.path.unlink(missing_ok=True)
                _ack_path(self.path).unlink(missing_ok=True)

    def ack(self, keys: list[str]) -> None:
        with self._lock:
            write_acks(self.path, keys)
            for key in keys:
                self._unacked.pop(key, None)


def pending_records(path: Path) -> list[Record]:
    done = read_acks(path)
    return [r for r in read_records(path) if r.key not in done and r.kind != TARGET]


def file_target(path: Path) -> str | None:
    """The server a spool file's batches were meant for (``None``: offline mode)."""
    for record in read_records(path):
        return str(record.payload["uri"]) if record.kind == TARGET else None
    return None


def blob_path(folder: Path, digest: str) -> Path:
    return folder / "blobs" / digest


def decode_batch(record: Record) -> Batch:
    from cairn.schemas.runs import BatchIn

    return BatchIn.model_validate(record.payload["batch"]).to_domain()


# -- sync: push spooled and offline runs to a server or a store ---------------------------


@dataclass
class SyncReport:
    """What ``sync`` did; ``duplicates`` are batches the target had already applied."""

    files: int = 0
    runs: set[str] = field(default_factory=set)
    batches: int = 0
    points: int = 0
    artifacts: int = 0
    duplicates: int = 0
    duplicate_points: int = 0
    already_synced: int = 0
    failed: list[str] = field(default_factory=list)
    removed_files: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "runs": len(self.runs),
            "batches": self.batches,
            "points": self.points,
            "artifacts": self.artifacts,
            "duplicates": self.duplicates,
            "duplicate_points": self.duplicate_points,
            "already_synced": self.already_synced,
            "failed": len(self.failed),
            "removed_files": self.removed_files,
        }


def sync(
    folder: Path, open_target: Callable[[str | None], Backend], *, dry_run: bool = False
) -> SyncReport:
    """Send every record of every spool file under ``folder`` not yet acknowledged, to
    ``open_target(the file's own server, or None)``.

    Safe to run at any time, also while the runs are still logging (what is there is
    sent; a later sync sends the rest) and twice (idempotency keys: the target counts a
    resend as a duplicate). Stops at an unreachable target, raising ``Unavailable``
    after reporting progress through the acks already written.
    """
    report = SyncReport()
    for path in spool_files(folder):
        report.files += 1
        done = read_acks(path)
        records = [r for r in read_records(path) if r.kind != TARGET]
        backend = open_target(file_target(path)) if records else None
        for record in records:
            assert backend is not None
            if record.key in done:
                report.already_synced += 1
                continue
            try:
                _sync_record(folder, record, backend, report, dry_run)
            except Unavailable:
                raise
            except CairnError as exc:
                report.failed.append(f"{path.name} {record.key}: {exc}")
                continue
            if not dry_run:
                write_acks(path, [record.key])
                done.add(record.key)
        if not dry_run and all(r.key in done for r in records) and not _alive(path):
            path.unlink(missing_ok=True)
            _ack_path(path).unlink(missing_ok=True)
            report.removed_files += 1
    return report


def _sync_record(
    folder: Path, record: Record, backend: Backend, report: SyncReport, dry_run: bool
) -> None:
    if record.kind == "artifacts":
        run_id = str(record.payload["run_id"])
        items = [(str(p), str(d), m, int(s)) for p, d, m, s in record.payload["items"]]
        if not dry_run:
            files = [LocalFile(blob_path(folder, d), p, d, s) for p, d, _, s in items]
            backend.upload_blobs(files)
            backend.record_artifacts(run_id, [(p, d, m) for p, d, m, _ in items])
        report.runs.add(run_id)
        report.artifacts += len(items)
        return
    batch = decode_batch(record)
    points = batch.point_count
    report.runs.update(item.run_id for item in batch.runs)
    if not dry_run and not backend.log_batch(batch).applied:
        report.duplicates += 1
        report.duplicate_points += points
        return
    report.batches += 1
    report.points += points


def _alive(path: Path) -> bool:
    """Whether the process that writes this spool file still runs."""
    try:
        pid = int(path.name.split("-", 1)[0])
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
