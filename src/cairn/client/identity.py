"""Who is logging: the login name the audit log records (until accounts exist)."""

from __future__ import annotations

import getpass


def login_name() -> str | None:
    """The OS user, or None where there is none (some containers)."""
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): the audit log says "None"
        return None
