"""Run-context capture against real git repositories made in a temporary directory."""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import os
import platform
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.client import capture
from cairn.client.capture import MAX_DIFF_BYTES, capture_run_context, clear_capture_cache


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No cache carried between tests, and neither the user's git config nor a repo above."""
    clear_capture_cache()
    empty_config = tmp_path / "gitconfig"
    empty_config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty_config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("CAIRN_CAPTURE_GIT", "CAIRN_CAPTURE_ENV", "CAIRN_CAPTURE_COMMAND"):
        monkeypatch.delenv(name, raising=False)
    yield
    clear_capture_cache()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=ada@example.com", "-c", "user.name=Ada", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on branch ``main`` with one commit of ``train.py``."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("lr = 0.1\nepochs = 3\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    return path


def git_only(cwd: Path) -> capture.RunContext:
    return capture_run_context(environment=False, command=False, cwd=str(cwd))


def test_clean_repo(repo: Path) -> None:
    ctx = git_only(repo)

    assert ctx.git is not None
    assert ctx.git["root"] == str(repo.resolve())
    assert ctx.git["branch"] == "main"
    assert ctx.git["commit"] == git(repo, "rev-parse", "HEAD")
    assert ctx.git["remote_url"] is None
    assert ctx.git["dirty"] is False
    assert "diff_digest" not in ctx.git
    assert ctx.git_diff is None


def test_dirty_repo_records_the_diff_and_untracked_files(repo: Path) -> None:
    (repo / "train.py").write_text("lr = 0.01\nepochs = 3\n")
    (repo / "notes.txt").write_text("try a smaller lr\n")

    ctx = git_only(repo)

    assert ctx.git is not None and ctx.git_diff is not None
    assert ctx.git["dirty"] is True
    assert "-lr = 0.1\n" in ctx.git_diff
    assert "+lr = 0.01\n" in ctx.git_diff
    assert "#   notes.txt\n" in ctx.git_diff
    assert "try a smaller lr" not in ctx.git_diff  # untracked files are named, not copied
    assert ctx.git["diff_digest"] == hashlib.sha256(ctx.git_diff.encode()).hexdigest()


def test_only_an_untracked_file_is_dirty(repo: Path) -> None:
    (repo / "new.py").write_text("x = 1\n")

    ctx = git_only(repo)

    assert ctx.git is not None and ctx.git["dirty"] is True
    assert ctx.git_diff == "# untracked files (contents not captured):\n#   new.py\n"


def test_staged_changes_count_too(repo: Path) -> None:
    (repo / "train.py").write_text("lr = 0.2\n")
    git(repo, "add", "train.py")

    ctx = git_only(repo)

    assert ctx.git is not None and ctx.git["dirty"] is True
    assert ctx.git_diff is not None and "+lr = 0.2\n" in ctx.git_diff


def test_from_a_subdirectory_the_whole_repo_is_seen(repo: Path) -> None:
    (repo / "pkg").mkdir()
    (repo / "train.py").write_text("changed\n")

    ctx = git_only(repo / "pkg")

    assert ctx.git is not None and ctx.git["root"] == str(repo.resolve())
    assert ctx.git_diff is not None and "+changed\n" in ctx.git_diff


def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")

    ctx = git_only(repo)

    assert ctx.git is not None
    assert ctx.git["branch"] is None
    assert ctx.git["commit"] == git(repo, "rev-parse", "HEAD")


def test_repo_without_commits(tmp_path: Path) -> None:
    path = tmp_path / "fresh"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "a.py").write_text("a = 1\n")
    git(path, "add", "a.py")

    ctx = git_only(path)

    assert ctx.git is not None
    assert ctx.git["commit"] is None
    assert ctx.git["branch"] == "main"
    assert ctx.git["dirty"] is True
    assert ctx.git_diff is not None and "+a = 1\n" in ctx.git_diff


@pytest.mark.parametrize(
    ("remote", "stored"),
    [
        ("https://user:secret@example.com/x.git", "https://example.com/x.git"),
        ("https://secret@example.com:8443/x.git", "https://example.com:8443/x.git"),
        ("ssh://git:secret@example.com/x.git", "ssh://git@example.com/x.git"),
        ("ssh://git@example.com/x.git", "ssh://git@example.com/x.git"),
        ("git@example.com:org/x.git", "git@example.com:org/x.git"),
        ("https://example.com/x.git", "https://example.com/x.git"),
    ],
)
def test_remote_credentials_are_stripped(repo: Path, remote: str, stored: str) -> None:
    git(repo, "remote", "add", "origin", remote)

    ctx = git_only(repo)

    assert ctx.git is not None and ctx.git["remote_url"] == stored
    assert "secret" not in repr(ctx)


def test_a_large_diff_is_truncated_and_says_so(repo: Path) -> None:
    line = "x" * 99 + "\n"
    (repo / "train.py").write_text(line * (3 * MAX_DIFF_BYTES // len(line) // 2))

    ctx = git_only(repo)

    assert ctx.git is not None and ctx.git_diff is not None
    assert len(ctx.git_diff.encode()) <= MAX_DIFF_BYTES
    assert ctx.git_diff.startswith("diff --git a/train.py b/train.py\n")
    last = ctx.git_diff.rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith(f"# cairn: diff truncated to {MAX_DIFF_BYTES} of ")
    # The digest names the whole diff, so it is not the digest of the part kept.
    assert ctx.git["diff_digest"] != hashlib.sha256(ctx.git_diff.encode()).hexdigest()


def test_outside_a_repo_git_is_none(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()

    ctx = git_only(plain)

    assert ctx.git is None
    assert ctx.git_diff is None


def test_a_deleted_current_directory_gives_no_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()

    assert capture_run_context(environment=False, command=False).git is None


def test_without_git_on_path_git_is_none(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-such-bin"))

    assert git_only(repo).git is None


def test_arguments_turn_parts_off(repo: Path) -> None:
    ctx = capture_run_context(git=False, environment=False, command=False, cwd=str(repo))

    assert (ctx.git, ctx.git_diff, ctx.command, ctx.environment) == (None, None, None, None)


@pytest.mark.parametrize("value", ["0", "false", "OFF", "no"])
def test_environment_variables_turn_parts_off(
    repo: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    (repo / "train.py").write_text("dirty\n")
    monkeypatch.setenv("CAIRN_CAPTURE_GIT", value)
    monkeypatch.setenv("CAIRN_CAPTURE_ENV", value)
    monkeypatch.setenv("CAIRN_CAPTURE_COMMAND", value)

    ctx = capture_run_context(cwd=str(repo))

    assert (ctx.git, ctx.git_diff, ctx.command, ctx.environment) == (None, None, None, None)


def test_command_is_the_shell_quoted_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--name", "my run", "--lr=0.1"])

    ctx = capture_run_context(git=False, environment=False)

    assert ctx.command == f"{shlex.quote(sys.executable)} train.py --name 'my run' --lr=0.1"


def test_environment_describes_this_interpreter() -> None:
    env = capture_run_context(git=False, command=False).environment

    assert env is not None
    assert env["python_version"] == platform.python_version()
    assert env["python_implementation"] == platform.python_implementation()
    assert env["python_executable"] == sys.executable
    assert env["platform"]["system"] == platform.system()
    assert env["hostname"] == platform.node()
    assert env["cpu_count"] == os.cpu_count()
    assert env["memory_total_bytes"] is None or env["memory_total_bytes"] > 0
    assert isinstance(env["gpus"], list)
    assert env["packages"]["pytest"] == importlib.metadata.version("pytest")
    assert list(env["packages"]) == sorted(env["packages"])


def test_gpus_come_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf 'NVIDIA H100 80GB HBM3, 81559\\nTesla T4, [N/A]\\n'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    env = capture_run_context(git=False, command=False).environment

    assert env is not None
    assert env["gpus"] == [
        {"name": "NVIDIA H100 80GB HBM3", "memory_total_mb": 81559},
        {"name": "Tesla T4", "memory_total_mb": None},
    ]


def test_environment_is_captured_once_per_process() -> None:
    first = capture_run_context(git=False, command=False).environment
    second = capture_run_context(git=False, command=False).environment

    assert first is not None and second is first

    clear_capture_cache()
    assert capture_run_context(git=False, command=False).environment is not first


def test_git_is_reread_after_the_cache_expires(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(capture, "_now", lambda: clock[0])
    clean = git_only(repo)
    (repo / "train.py").write_text("changed\n")

    clock[0] += capture.GIT_CACHE_SECONDS / 2
    assert git_only(repo).git is clean.git  # runs started in a burst share one reading

    clock[0] += capture.GIT_CACHE_SECONDS
    fresh = git_only(repo)
    assert fresh.git is not None and fresh.git["dirty"] is True


def test_author_is_the_login_name() -> None:
    try:
        expected: str | None = getpass.getuser()
    except Exception:
        expected = None
    assert capture_run_context(git=False, environment=False, command=False).author == expected


def test_author_is_none_when_there_is_no_login(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_login() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_login)
    clear_capture_cache()

    assert capture_run_context(git=False, environment=False, command=False).author is None
