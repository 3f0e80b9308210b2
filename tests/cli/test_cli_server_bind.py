"""The server binds to loopback unless told, loudly, to serve everyone without auth."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cairn.cli.main import cli
from cairn.cli.server import is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "10.1.2.3", "192.168.0.7", "no-such-host.invalid"]
)
def test_other_addresses(host: str) -> None:
    assert not is_loopback(host)


def test_a_public_bind_without_auth_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["server", "--host", "0.0.0.0", "--store", str(tmp_path / "store")]
    )
    assert result.exit_code == 2
    assert "authentication is required on 0.0.0.0" in result.output
    assert "cairn users create NAME --admin" in result.output
    assert not (tmp_path / "store").exists()  # refused before anything was touched
