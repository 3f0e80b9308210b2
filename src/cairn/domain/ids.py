"""Run ids: ULIDs, made where the run starts so a run can start while the server is away.

A ULID is 48 bits of milliseconds and 80 random bits in Crockford base32: 26 characters
that sort by creation time.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# base64's base32 alphabet to Crockford's: its encoder (ten bits a table lookup) writes
# ULID characters.
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
_ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_lock = threading.Lock()
_last = [0, 0]  # last millisecond and last random part, for monotonic ids within a process


def new_ulid(now_ms: int | None = None) -> str:
    """A new ULID; ids made in one process in the same millisecond still sort in order."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        if ms == _last[0]:
            rand = (_last[1] + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last[0], _last[1] = ms, rand
    # 160 bits are 32 characters; the top 30 bits, all zero, are the first 6 of them.
    encoded = base64.b32encode(((ms << 80) | rand).to_bytes(20, "big"))
    return encoded[6:].translate(_CROCKFORD).decode()


def is_ulid(text: str) -> bool:
    return bool(_ULID_RE.match(text))


def ulid_time_ms(ulid: str) -> int:
    """The millisecond a ULID was made."""
    value = 0
    for ch in ulid[:10]:
        value = value * 32 + _ALPHABET.index(ch)
    return value
