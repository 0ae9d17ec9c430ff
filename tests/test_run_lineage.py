"""Provenance in every engine: the results of cwltool and Toil runs, with and without containers, link the very
documents they came from (or say in the Item why they cannot), never a runner's scratch path.

Each engine stages the inputs its own way (cwltool --no-container: symlinks to the inputs themselves; Toil:
symlinks into its cache; containers: copies under /var/lib/cwl), so a tool cannot tell where its inputs came
from. `mlmkit run` gives the packages their `file:` URIs (`model_href`, `source_hrefs`); a plain engine run gets
them from its job file, or writes none, with the reason in `processing:lineage`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest
import yaml

from cwl_fixtures import BIN, check_vegetation_results, staged_scenes, vegetation_model
from test_run import CWL, hints_copy, mlmkit_run, model_item

ENGINES = [
    pytest.param("cwltool", False, id="cwltool-no-container"),
    pytest.param("toil", False, id="toil-no-container"),
    pytest.param("cwltool", True, id="cwltool-docker", marks=[pytest.mark.docker, pytest.mark.slow]),
    pytest.param("toil", True, id="toil-docker", marks=[pytest.mark.docker, pytest.mark.slow]),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, schema_dir: Path) -> tuple[Path, Path, list[Path]]:
    """(hints-copy model, shipped-package model, two staged scenes)."""
    root = tmp_path_factory.mktemp("lineage-run")
    hints = hints_copy(CWL / "inference.cwl", root / "cwl" / "inference.cwl")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        local = vegetation_model(root / "model", "--inference-cwl", str(hints))
        shipped = vegetation_model(root / "model-shipped", "--inference-cwl", str(CWL / "inference.cwl"))
    return local, shipped, staged_scenes(root / "scenes", 2)


def lineage(results: Path) -> dict[str, tuple[list[str], str | None, str | None]]:
    """Per result Item: its derived_from hrefs, its model expression and its processing:lineage note."""
    found = {}
    for path in sorted(results.glob("*/*.json")):
        item = json.loads(path.read_text())
        hrefs = [link["href"] for link in item["links"] if link["rel"] == "derived_from"]
        expression = item["properties"].get("processing:expression", {}).get("expression")
        found[item["id"]] = (hrefs, expression, item["properties"].get("processing:lineage"))
    return found


def local_path(uri: str) -> Path:
    assert urlsplit(uri).scheme == "file", uri
    return Path(url2pathname(urlsplit(uri).path))


@pytest.mark.parametrize(("engine", "container"), ENGINES)
def test_every_engine_links_the_local_inputs_it_read(request, inputs, engine: str, container: bool,
                                                    tmp_path: Path) -> None:
    local, shipped, scenes = inputs
    if container:
        request.getfixturevalue("docker_images")
    model = shipped if container else local
    args = ["--engine", engine, *(["--batch-system", "single_machine"] if engine == "toil" else []),
            *([] if container else ["--no-container"])]
    result = mlmkit_run("--model", model, "--input", scenes[0], "--input", scenes[1], "--outdir", tmp_path, *args)
    assert result.returncode == 0, result.stderr
    check_vegetation_results(tmp_path / "results", 2)  # includes mlmkit validate: lineage that resolves
    model_path = model_item(model)
    for n, (item_id, (hrefs, expression, note)) in enumerate(sorted(lineage(tmp_path / "results").items())):
        scene_item = scenes[n] / f"s2-window-{n}" / f"s2-window-{n}.json"
        assert [local_path(href) for href in hrefs] == [scene_item, model_path], item_id
        assert local_path(expression) == model_path and note is None


def test_plain_toil_run_takes_the_urls_from_the_job_or_says_why_not(inputs, tmp_path: Path) -> None:
    """The README's `toil-cwl-runner --no-container`: the lead's fresh clone got `../../../../tmpXXXXXXXX/...`
    hrefs that `mlmkit validate` refused. URLs given for the model and one scene are used; the other scene,
    read from Toil's cache, gets no link and a note saying why."""
    local, _, scenes = inputs
    package = next(model_item(local).parent.glob("inference.cwl"))
    model_url = "https://models.example.org/veg/nir-over-red.json"
    scene_url = "https://data.example.org/collections/s2/items/s2-window-0"
    job = {"model": {"class": "Directory", "path": str(local)},
           "imagery": [{"class": "Directory", "path": str(scene)} for scene in scenes],
           "model_href": model_url, "source_hrefs": [scene_url, "https://data.example.org/unrelated.json"]}
    (tmp_path / "job.yml").write_text(yaml.safe_dump(job))
    run = subprocess.run([BIN / "toil-cwl-runner", "--no-container", "--workDir", tmp_path, "--jobStore",
                          tmp_path / "jobstore", "--outdir", tmp_path / "out", f"{package}#mlmkit-inference",
                          tmp_path / "job.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    check_vegetation_results(tmp_path / "out" / "results", 2)
    found = lineage(tmp_path / "out" / "results")
    assert found["s2-window-0-nir-over-red"] == ([scene_url, model_url], model_url, None)
    hrefs, expression, note = found["s2-window-1-nir-over-red"]
    assert hrefs == [model_url] and expression == model_url
    assert note.startswith("No derived_from link to Source imagery s2-window-1: read from a temporary or staging copy")
    assert "source_hrefs" in note
    assert "/tmp" not in json.dumps(found) and "stg" not in json.dumps(found)
