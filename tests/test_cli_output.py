"""What the command line prints besides results: warnings held until a run is known to succeed, and a native
crash that still says where it happened."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import click
import pytest
from click.testing import CliRunner

from mlmkit.cli import COMMANDS, main
from mlmkit.errors import InvalidInput, MlmkitWarning


@click.command()
@click.option("--fail", is_flag=True)
def warn(fail: bool) -> None:
    warnings.warn("an mlmkit note", MlmkitWarning, stacklevel=1)
    warnings.warn("a library's note", UserWarning, stacklevel=1)
    if fail:
        raise InvalidInput("bad input; expected good input")
    click.echo("done")


@pytest.fixture()
def warn_command(monkeypatch) -> None:
    monkeypatch.setitem(COMMANDS, "warn", (f"{__name__}:warn", "Warn, then succeed or fail."))


def test_warnings_are_shown_after_a_success(warn_command) -> None:
    result = CliRunner().invoke(main, ["warn"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "done\n"
    assert result.stderr.splitlines() == ["Warning: an mlmkit note", "Warning: UserWarning: a library's note"]


def test_warnings_are_dropped_before_an_error(warn_command) -> None:
    result = CliRunner().invoke(main, ["warn", "--fail"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["Error: bad input; expected good input"]


def test_a_run_without_standalone_mode_leaves_warnings_to_python(warn_command, recwarn, capsys) -> None:
    showwarning = warnings.showwarning
    main.main(["warn"], standalone_mode=False)
    assert warnings.showwarning is showwarning
    assert [(w.category, str(w.message)) for w in recwarn] == [(MlmkitWarning, "an mlmkit note"),
                                                                (UserWarning, "a library's note")]
    assert capsys.readouterr() == ("done\n", "")


CRASH = textwrap.dedent("""
    import ctypes
    import click
    from mlmkit.cli import COMMANDS, main

    @click.command()
    def crash():
        ctypes.string_at(0)

    COMMANDS["crash"] = ("__main__:crash", "Read address 0.")
    main(["crash"])
""")


def test_a_native_crash_prints_faulthandler_trace_on_stderr() -> None:
    env = {name: value for name, value in os.environ.items() if name != "PYTHONFAULTHANDLER"}
    done = subprocess.run([sys.executable, "-c", CRASH], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == -11, done.stderr
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert "in crash" in done.stderr  # the Python stack names the command that crashed
