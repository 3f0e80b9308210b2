"""What a run records about where it came from, captured once when it starts.

Three parts. Each is captured only when its argument is true and its environment variable
is not ``0``, ``false``, ``no`` or ``off``, so a job whose code cannot change can still be
told to keep its command line or its packages to itself:

    argument        environment variable       what it holds
    ``git``         ``CAIRN_CAPTURE_GIT``      repo root, origin url without credentials,
                                               branch, commit, dirty flag, and the
                                               uncommitted diff (2 MB at most)
    ``command``     ``CAIRN_CAPTURE_COMMAND``  the python executable and ``sys.argv``,
                                               shell-quoted
    ``environment`` ``CAIRN_CAPTURE_ENV``      python, platform, host, CPUs, memory,
                                               GPUs, installed packages

Capture never raises: a part that cannot be read (no git, not a repo, no ``nvidia-smi``, a
git that hangs past a short timeout) is ``None`` or empty, because a missing detail must
not stop a training job from starting.

Why the caches: listing installed packages costs tens of milliseconds, and a sweep that
starts thousands of runs in one process must pay that once, so the environment is captured
once per process. Git is read again after two seconds, because the working tree changes
between runs, but runs started in a tight loop share one reading instead of spawning six
``git`` processes each.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import importlib.metadata
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NotRequired, TypedDict
from urllib.parse import urlsplit, urlunsplit

MAX_DIFF_BYTES = 2 * 1024 * 1024
"""The diff stored with a run is cut to this many bytes (UTF-8), the note included."""

GIT_CACHE_SECONDS = 2.0
"""How long one reading of a working tree serves runs started from the same directory."""

_TIMEOUT_S = 5.0
_OFF_VALUES = frozenset({"0", "false", "no", "off"})


class GitInfo(TypedDict):
    """Where the code came from.

    ``dirty`` counts untracked files (not ignored) too: a new module the script imports
    changes the result as much as an edited one. ``diff_digest``, present only when dirty,
    is the sha256 of the whole diff before truncation, so equal digests mean equal trees.
    """

    root: str
    remote_url: str | None
    branch: str | None
    commit: str | None
    dirty: bool
    diff_digest: NotRequired[str]


class PlatformInfo(TypedDict):
    system: str
    release: str
    machine: str


class GpuInfo(TypedDict):
    name: str
    memory_total_mb: int | None


class EnvironmentInfo(TypedDict):
    """The machine and interpreter a run started on."""

    python_version: str
    python_implementation: str
    python_executable: str
    platform: PlatformInfo
    hostname: str
    cpu_count: int | None
    memory_total_bytes: int | None
    gpus: list[GpuInfo]
    packages: dict[str, str]


@dataclass(frozen=True)
class RunContext:
    """Everything captured when a run starts; a part that was off or unreadable is ``None``.

    ``git`` and ``environment`` are cached, so other runs of the process may hold the same
    dicts: read them, do not change them. ``dataclasses.asdict(ctx)`` gives a JSON-ready
    copy.
    """

    git: GitInfo | None
    git_diff: str | None
    command: str | None
    environment: EnvironmentInfo | None
    author: str | None


def capture_run_context(
    *,
    git: bool = True,
    environment: bool = True,
    command: bool = True,
    cwd: str | None = None,
) -> RunContext:
    """Capture the code, command and machine a run starts from; never raises.

    ``cwd`` is where git is asked (default: the current directory).

    >>> ctx = capture_run_context(environment=False)
    >>> ctx.environment is None
    True
    """
    git_info, git_diff = (None, None)
    if git and _enabled("CAIRN_CAPTURE_GIT"):
        git_info, git_diff = _cached_git(cwd or os.curdir)
    return RunContext(
        git=git_info,
        git_diff=git_diff,
        command=_command() if command and _enabled("CAIRN_CAPTURE_COMMAND") else None,
        environment=(
            _cached_environment() if environment and _enabled("CAIRN_CAPTURE_ENV") else None
        ),
        author=_author(),
    )


def clear_capture_cache() -> None:
    """Forget cached git readings, the environment and the author (for tests)."""
    global _environment_cache
    with _lock:
        _environment_cache = None
        _git_cache.clear()
        _author.cache_clear()


def _enabled(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() not in _OFF_VALUES


@functools.cache
def _author() -> str | None:
    try:
        return getpass.getuser() or None
    except Exception:  # no login name (containers with a bare uid): OSError or KeyError
        return None


def _command() -> str:
    argv = [sys.executable, *sys.argv] if sys.executable else list(sys.argv)
    return shlex.join(argv)


# ---------------------------------------------------------------- caches

_lock = threading.Lock()
_environment_cache: EnvironmentInfo | None = None
_git_cache: dict[str, tuple[float, GitInfo | None, str | None]] = {}
_now: Callable[[], float] = time.monotonic  # a seam, so tests can move time


def _cached_environment() -> EnvironmentInfo:
    global _environment_cache
    with _lock:  # held while capturing, so threads starting runs together pay once
        if _environment_cache is None:
            _environment_cache = _capture_environment()
        return _environment_cache


def _cached_git(cwd: str) -> tuple[GitInfo | None, str | None]:
    try:
        cwd = os.path.abspath(cwd)  # a cache key; git itself resolves links
    except OSError:  # the current directory was deleted under us
        return None, None
    with _lock:
        hit = _git_cache.get(cwd)
    if hit is not None and _now() - hit[0] < GIT_CACHE_SECONDS:
        return hit[1], hit[2]
    info, diff = _capture_git(cwd)
    with _lock:
        _git_cache[cwd] = (_now(), info, diff)
    return info, diff


# ---------------------------------------------------------------- git


def _git(cwd: str, *args: str) -> bytes | None:
    """Output of one git command, or None if git is missing, fails or hangs."""
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",  # never wait on a credential prompt
        "GIT_OPTIONAL_LOCKS": "0",  # never take index.lock from under the user's own git
    }
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_line(cwd: str, *args: str) -> str | None:
    out = _git(cwd, *args)
    text = out.decode("utf-8", "replace").strip() if out is not None else ""
    return text or None


def _capture_git(cwd: str) -> tuple[GitInfo | None, str | None]:
    root = _git_line(cwd, "rev-parse", "--show-toplevel")
    if root is None:
        return None, None
    commit = _git_line(root, "rev-parse", "--verify", "--quiet", "HEAD")
    remote = _git_line(root, "remote", "get-url", "origin")
    info = GitInfo(
        root=root,
        remote_url=strip_credentials(remote) if remote else None,
        branch=_git_line(root, "symbolic-ref", "--quiet", "--short", "HEAD"),  # None: detached
        commit=commit,
        dirty=False,
    )
    full = _uncommitted(root, commit)
    if not full:
        return info, None
    info["dirty"] = True
    info["diff_digest"] = hashlib.sha256(full.encode("utf-8")).hexdigest()
    return info, _truncate(full)


def _uncommitted(root: str, commit: str | None) -> str:
    """``git diff HEAD``, then untracked paths (a new folder as one line); empty if clean."""
    # Before the first commit there is no HEAD: compare with the empty tree instead.
    base = commit or _git_line(root, "hash-object", "-t", "tree", os.devnull) or "HEAD"
    diff = _git(root, "diff", "--no-color", "--no-ext-diff", base) or b""
    listed = _git(root, "ls-files", "--others", "--exclude-standard", "--directory", "-z") or b""
    text = diff.decode("utf-8", "replace")
    untracked = [name.decode("utf-8", "replace") for name in listed.split(b"\0") if name]
    if untracked:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "# untracked files (contents not captured):\n"
        text += "".join(f"#   {name}\n" for name in untracked)
    return text


def _truncate(text: str) -> str:
    data = text.encode("utf-8")
    if len(data) <= MAX_DIFF_BYTES:
        return text
    note = f"\n# cairn: diff truncated to {MAX_DIFF_BYTES} of {len(data)} bytes\n"
    kept = data[: MAX_DIFF_BYTES - len(note.encode("utf-8"))]
    # The bytes came from valid UTF-8, so "ignore" only drops a character cut in half.
    return kept.decode("utf-8", "ignore") + note


def strip_credentials(url: str) -> str:
    """A remote url with any password or token removed, safe to store with a run.

    Over ssh the user name is a login, not a secret, so it stays; over other schemes
    a user name is often a token (``https://<token>@host``), so all of it goes.
    scp-like remotes (``git@host:org/repo.git``) cannot carry a password and are kept.

    >>> strip_credentials("https://user:secret@example.com/x.git")
    'https://example.com/x.git'
    >>> strip_credentials("ssh://git:pw@example.com/x.git")
    'ssh://git@example.com/x.git'
    """
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    netloc = f"{user}@{host}" if parts.scheme in ("ssh", "git+ssh") and user else host
    return urlunsplit(parts._replace(netloc=netloc))


# ---------------------------------------------------------------- environment


def _capture_environment() -> EnvironmentInfo:
    return EnvironmentInfo(
        python_version=platform.python_version(),
        python_implementation=platform.python_implementation(),
        python_executable=sys.executable,
        platform=PlatformInfo(
            system=platform.system(), release=platform.release(), machine=platform.machine()
        ),
        hostname=platform.node(),
        cpu_count=os.cpu_count(),
        memory_total_bytes=_memory_total_bytes(),
        gpus=_gpus(),
        packages=_packages(),
    )


def _memory_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024  # the kernel writes kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # not every platform names both
        return None


def _gpus() -> list[GpuInfo]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    query = [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]
    try:
        done = subprocess.run(
            query,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    gpus: list[GpuInfo] = []
    for line in done.stdout.splitlines():
        name, _, memory = (field.strip() for field in line.rpartition(","))
        if name:
            gpus.append(GpuInfo(name=name, memory_total_mb=_int_or_none(memory)))
    return gpus


def _int_or_none(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:  # "[N/A]" on some boards
        return None


def _packages() -> dict[str, str]:
    """Installed distributions by normalized name; the first on sys.path wins, as in import."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        try:
            meta = dist.metadata
            if "Name" not in meta or "Version" not in meta:
                continue  # a half-removed install; asking for a missing key would warn
            key = re.sub(r"[-_.]+", "-", meta["Name"]).lower()
            found.setdefault(key, meta["Version"])
        except Exception:  # unreadable metadata must not stop a run from starting
            continue
    return dict(sorted(found.items()))
