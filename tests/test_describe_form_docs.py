"""docs/how-to/describe-in-the-browser.md runs as written: its command serves the form, its Python mounts it, the
images it shows exist (tests/test_describe_form_browser.py takes them)."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
import requests
from starlette.routing import NoMatchFound

from docs_snippets import code_blocks, commands
from http_helpers import loopback_process

PAGE = Path(__file__).resolve().parents[1] / "docs" / "how-to" / "describe-in-the-browser.md"


def test_the_command_serves_the_form() -> None:
    (block,) = code_blocks(PAGE, "bash", "console", "sh")
    (command,) = commands(block)
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "mlmkit.web"] and "--port" in argv
    port = argv.index("--port") + 1

    def on(free: int) -> list[str]:  # the page's command on a free port, with this interpreter
        return [sys.executable, *argv[1:port], str(free), *argv[port + 1:]]

    with loopback_process(on, "python -m mlmkit.web") as base:
        page = requests.get(f"{base}/describe", timeout=30)
    assert page.status_code == 200 and '<label for="model">' in page.text


def test_the_python_mounts_the_form() -> None:
    (block,) = code_blocks(PAGE, "python")
    scope: dict = {}
    exec(compile(block.text, block.where(PAGE), "exec"), scope)  # noqa: S102 - the page's own snippet
    app = scope["app"]
    assert [app.url_path_for(name) for name in ("describe_page", "describe_upload", "describe_check",
                                                 "describe_build")] == [
        "/describe", "/describe/upload", "/describe/check", "/describe/build"]
    with pytest.raises(NoMatchFound):  # publishing only where the operator configured it
        app.url_path_for("describe_publish")


def test_the_images_it_shows_exist() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", PAGE.read_text())
    assert len(images) == 4
    for image in images:
        path = (PAGE.parent / image).resolve()
        assert path.is_file() and path.stat().st_size < 200_000, image
