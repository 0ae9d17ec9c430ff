"""The CLI group: every command is reachable, documented with an example, and errors are one line."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from mlmkit.cli import COMMANDS, LazyGroup, main
from mlmkit.errors import InvalidInput


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_with_example(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "mlmkit " + name in result.output, f"{name} --help shows no example"


def test_library_errors_become_one_line_and_exit_1() -> None:
    @click.group(cls=LazyGroup)
    def group() -> None:
        pass

    @group.command("boom")
    def boom() -> None:
        raise InvalidInput("band 'B99' is missing; expected one of B01, B02")

    group.get_command = lambda ctx, name: boom if name == "boom" else None
    result = CliRunner().invoke(group, ["boom"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: band 'B99' is missing; expected one of B01, B02"


def test_python_dash_m_runs_the_cli() -> None:
    completed = subprocess.run([sys.executable, "-m", "mlmkit", "--version"], capture_output=True, text=True)
    assert completed.returncode == 0
    assert completed.stdout.startswith("mlmkit, version ")
