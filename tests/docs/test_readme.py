"""The README's quickstart runs as written (in a fresh interpreter and store)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_quickstart_runs(tmp_path: Path) -> None:
    blocks = _python_blocks()
    assert blocks, "README has no python example"
    result = subprocess.run(
        [sys.executable, "-c", blocks[0]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".cairn" / "cairn.db").exists()
    first = result.stdout.splitlines()[0]
    assert first.split()[1] == "0.01"


def test_data_and_models_example_runs(tmp_path: Path) -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 2, "README lost its data and models example"
    result = subprocess.run(
        [sys.executable, "-c", blocks[1]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["1.0.0 True", "['proline']"]


def test_readme_commands_exist() -> None:
    from click.testing import CliRunner

    from cairn.cli.main import cli

    text = README.read_text()
    for command in re.findall(r"^cairn ([a-z]+(?: [a-z]+)?)", text, flags=re.M):
        args = [*command.split(), "--help"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, (command, result.output)
