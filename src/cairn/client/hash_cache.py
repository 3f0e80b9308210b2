"""A local cache of file digests, so logging a large file again costs no hashing.

Keyed by what changes whenever a file's bytes do: device, inode, size, modification and
status-change times (the last cannot be set back by ``touch``). Only files of at least
``MIN_SIZE`` are cached; small ones hash faster than a lookup. The cache lives in
``$CAIRN_CACHE_DIR`` (default ``~/.cairn/cache``); when it cannot be opened, nothing is
cached and nothing fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from pathlib import Path

MIN_SIZE = 1024 * 1024
log = logging.getLogger("cairn")
_lock = threading.Lock()
_conn: sqlite3.Connection | None = None
_opened_at: str | None = None


def cache_dir() -> Path:
    configured = os.environ.get("CAIRN_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cairn" / "cache"


def _connection() -> sqlite3.Connection | None:
    global _conn, _opened_at
    where = str(cache_dir())
    if _conn is not None and _opened_at == where:
        return _conn
    try:
        folder = Path(where)
        folder.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(folder / "digests.sqlite", timeout=5, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, identity TEXT, digest TEXT)"
        )
    except (OSError, sqlite3.Error) as exc:
        log.debug("cairn: no digest cache (%s)", exc)
        return None
    _conn, _opened_at = conn, where
    return conn


def _identity(stat: os.stat_result) -> str:
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"


def lookup(path: Path, stat: os.stat_result) -> str | None:
    if stat.st_size < MIN_SIZE:
        return None
    with _lock:
        conn = _connection()
        if conn is None:
            return None
        try:
            row = conn.execute(
                "SELECT identity, digest FROM digests WHERE path = ?", (str(path.resolve()),)
            ).fetchone()
        except sqlite3.Error:
            return None
    if row is None or row[0] != _identity(stat):
        return None
    return str(row[1])


def remember(path: Path, stat: os.stat_result, digest: str) -> None:
    if stat.st_size < MIN_SIZE:
        return
    with _lock:
        conn = _connection()
        if conn is None:
            return
        with contextlib.suppress(sqlite3.Error), conn:
            conn.execute(
                "INSERT OR REPLACE INTO digests (path, identity, digest) VALUES (?, ?, ?)",
                (str(path.resolve()), _identity(stat), digest),
            )
