"""docs/how-to/match.md and the match section of docs/how-to/publish-and-search.md: every command they show runs,
and the tables they show are what the commands print."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docs_snippets import code_blocks, commands
from match_fixtures import write_imagery, write_models
from pgstac_server import pgstac_api  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
MATCH_PAGE = REPO / "docs" / "how-to" / "match.md"
PUBLISH_PAGE = REPO / "docs" / "how-to" / "publish-and-search.md"


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """The folder the pages' sessions run in: models/ and scenes/."""
    root = tmp_path_factory.mktemp("match-docs")
    write_models(root / "models")
    write_imagery(root / "scenes")
    return root


def _run(command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PATH": path, **env})


def _shown(block_text: str) -> dict[str, list[str]]:
    """Each `$ command` of a console block and the output lines the page shows for it."""
    shown: dict[str, list[str]] = {}
    current = None
    for line in block_text.splitlines():
        if line.startswith("$ "):
            current = line[2:]
            shown[current] = []
        elif current is not None and line.strip():
            shown[current].append(line)
    return shown


def test_the_match_session_prints_what_the_page_shows(session):
    blocks = code_blocks(MATCH_PAGE, "console")
    assert len(blocks) == 3
    for block in blocks:
        for command, output in _shown(block.text).items():
            assert command in commands(block)
            run = _run(command, session)
            assert run.returncode == 0, (block.where(MATCH_PAGE), run.stderr)
            if "--json" in command:
                (pair,) = json.loads(run.stdout)["pairs"]
                assert pair["runnable"] and pair["plan"]["bands"][0]["why"] == "centre wavelength 0.49 µm in blue (0.45-0.5 µm)"
            else:
                assert run.stdout.splitlines() == output, block.where(MATCH_PAGE)


def test_the_match_page_python(session, monkeypatch, capsys):
    monkeypatch.chdir(session)
    (block,) = code_blocks(MATCH_PAGE, "python")
    exec(compile(block.text, str(MATCH_PAGE), "exec"), {})
    assert capsys.readouterr().out.startswith("processing level: the model is for L2A imagery")


@pytest.mark.pgstac
def test_the_publish_page_match_commands_against_a_stac_api(session, pgstac_api):  # noqa: F811
    from mlmkit.catalog.publish import publish
    from test_match_api import _served

    headers = {"Authorization": f"Bearer {pgstac_api.token}"}
    scenes = {path.stem: path for path in (session / "scenes").glob("*.json") if path.name != "catalog.json"}
    models = {path.stem: path for path in (session / "models").glob("*.json") if path.name != "catalog.json"}
    publish(_served(scenes, session / "pub-scenes"), pgstac_api.url, collection="scenes", headers=headers)
    publish(_served(models, session / "pub-models"), pgstac_api.url, collection="models", headers=headers)
    outputs = [_run(command, session, STAC_API=pgstac_api.url)
               for block in code_blocks(PUBLISH_PAGE, "bash") for command in commands(block)]
    assert all(run.returncode == 0 for run in outputs), [run.stderr for run in outputs]
    table, filtered, models_table = (run.stdout for run in outputs)
    assert sorted(row.split()[:3] for row in table.splitlines()[1:]) == [
        ["refused", "csmask-4b-l1c", "l8-l1"], ["runnable", "csmask-4b-l1c", "s2-l1c"],
        ["runnable", "csmask-4b-l1c", "s2-l1c-earth-search"], ["runnable", "csmask-4b-l1c", "s2-l1c-wavelengths"]]
    assert sorted(pair["items"][0] for pair in json.loads(filtered)["pairs"]) == [
        "s2-l1c", "s2-l1c-earth-search", "s2-l1c-wavelengths"]
    assert sorted(row.split()[1] for row in models_table.splitlines()[1:] if row.startswith("runnable")) == [
        "csmask-4b-l1c", "csmask-6b-l1c", "s2cloudless"]

