"""Lineage hrefs that survive the run: the rules of mlmkit.catalog.provenance, and predict, merge, train and
validate applying them to inputs read from staging directories."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cwl_fixtures import staged_scenes, vegetation_model
from mlmkit.catalog import provenance
from mlmkit.cli import main
from mlmkit.catalog.merge import merge_catalogs
from mlmkit.catalog.provenance import href_for, transient_root
from mlmkit.catalog.validate import validate_source

STG = "stg0b8d3c2e-1111-4222-8333-444455556666"


@pytest.fixture
def system_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A separate system temporary directory, so that tmp_path itself counts as a lasting place."""
    temp = tmp_path / "systemp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(provenance, "SYSTEM_TEMP", temp)
    return temp


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, schema_dir: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("lineage-inputs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
        return vegetation_model(root / "model"), staged_scenes(root / "scenes", 1)[0]


def test_rules_for_local_targets(tmp_path: Path, system_temp: Path) -> None:
    data, out = tmp_path / "data" / "scene.json", tmp_path / "out" / "item" / "item.json"
    assert href_for("https://example.org/a.json", out) == "https://example.org/a.json"
    # both lasting: relative, so they can move together
    assert href_for(str(data), out) == "../../data/scene.json"
    # a staging directory the output does not share: no href
    assert href_for(str(tmp_path / STG / "scene.json"), out) is None
    assert href_for("/var/lib/cwl/" + STG + "/scene/item.json", "/var/spool/cwl/prediction/x/x.json") is None
    # the output is a runner's temporary directory, the input lasts: absolute
    runner_out = system_temp / "ab12cd34" / "prediction" / "x" / "x.json"
    assert href_for(str(data), runner_out) == str(data)
    # input and output in one unfinished directory (the demo): relative, true after the rename
    partial = tmp_path / ".demo.k3j2.partial"
    assert href_for(str(partial / "scene" / "item.json"), partial / "prediction" / "x" / "x.json") \
        == "../../scene/item.json"
    # a file written in the work directory, taken where it will be
    work, final = tmp_path / ".out.x9.partial", tmp_path / "out"
    assert href_for(str(work / "c" / "image.tif"), work / "c" / "c.json", (work, final)) == "./image.tif"
    assert transient_root(work / "c") == work and transient_root(data) is None


def test_a_symlinked_staging_directory_resolves_to_the_real_input(tmp_path: Path, system_temp: Path) -> None:
    """cwltool --no-container stages inputs as symlinks in its temporary directory."""
    real = tmp_path / "data"
    (real / "scene").mkdir(parents=True)
    stage = system_temp / "q1w2e3r4" / STG
    stage.mkdir(parents=True)
    (stage / "data").symlink_to(real)
    out = system_temp / "z9x8c7v6" / "prediction" / "x" / "x.json"
    assert href_for(str(stage / "data" / "scene" / "item.json"), out) == str(real / "scene" / "item.json")


def test_a_runners_cache_behind_a_staging_directory_is_no_lasting_input(tmp_path: Path, system_temp: Path) -> None:
    """Toil --no-container: `stg<uuid>` symlinks into the workflow's own cache, beside the tool's outdir (the
    lead's fresh-clone run wrote `../../../../tmpXXXXXXXX/<scene>.json`, dangling once Toil was done)."""
    for workdir in (system_temp, tmp_path / "out" / ".mlmkit-run-scratch.ab12cd34.partial"):
        job = workdir / "toilwf-0123456789abcdef0123456789abcdef" / "e147" / "job"
        cache = job / "tmpvg0jml2y" / "scene"
        cache.mkdir(parents=True)
        stage = job / "tmp72uur3iv" / STG
        stage.mkdir(parents=True)
        (stage / "scene").symlink_to(cache)
        out = job / "tmpmschxgln" / "tmp-out3uj5w7ck" / "prediction" / "x" / "x.json"
        assert href_for(str(stage / "scene" / "item.json"), out) is None
        assert transient_root(stage / "scene" / "item.json") == stage


def test_predict_from_a_staging_directory_names_no_staging_path(inputs, tmp_path: Path) -> None:
    model, scene = inputs
    staged = tmp_path / STG / "scene"
    shutil.copytree(scene, staged)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", "-m", str(model), "-i", str(staged), "-o", str(out)])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warned) == 1 and warned[0].startswith("Warning: Source imagery s2-window-0 was read from ")
    assert STG in warned[0]
    item = json.loads(next(out.glob("*/*.json")).read_text())
    assert [link["title"] for link in item["links"] if link["rel"] == "derived_from"] == ["MLM model NIR over red"]
    assert STG not in json.dumps(item)
    # the published URLs of the input catalogs given explicitly: each Item's URL is its place under them
    result = CliRunner().invoke(main, ["predict", "-m", str(model), "-i", str(staged), "-o", str(tmp_path / "out2"),
                                       "--source-href", "https://data.example.org/staged/catalog.json",
                                       "--model-href", "https://models.example.org/veg/catalog.json"])
    assert result.exit_code == 0, result.output
    item = json.loads(next((tmp_path / "out2").glob("*/*.json")).read_text())
    model_url = "https://models.example.org/veg/nir-over-red-collection/nir-over-red/nir-over-red.json"
    assert sorted(link["href"] for link in item["links"] if link["rel"] == "derived_from") == [
        "https://data.example.org/staged/s2-window-0/s2-window-0.json", model_url]
    assert item["properties"]["processing:expression"]["expression"] == model_url


def test_merge_keeps_lineage_pointing_at_the_same_documents(inputs, tmp_path: Path) -> None:
    model, scene = inputs
    result = CliRunner().invoke(main, ["predict", "-m", str(model), "-i", str(scene), "-o", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    merged = merge_catalogs([str(tmp_path / "a")], tmp_path / "deeper" / "merged")
    item_path = next(merged.parent.glob("*/*.json"))
    item = json.loads(item_path.read_text())
    targets = {(item_path.parent / link["href"]).resolve() for link in item["links"] if link["rel"] == "derived_from"}
    assert targets == {next(scene.rglob("s2-window-0.json")).resolve(), next(model.rglob("nir-over-red.json")).resolve()}
    assert [link.get("mlm:name") for link in item["links"] if link["rel"] == "derived_from"] == [None, "NIR over red"]
    expression = item["properties"]["processing:expression"]["expression"]
    assert (item_path.parent / expression).resolve() == next(model.rglob("nir-over-red.json")).resolve()
    assert validate_source(merged) == []


def test_validate_reports_lineage_that_does_not_last(inputs, tmp_path: Path) -> None:
    model, scene = inputs
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["predict", "-m", str(model), "-i", str(scene), "-o", str(out)]).exit_code == 0
    item_path = next(out.glob("*/*.json"))
    item = json.loads(item_path.read_text())
    staging = tmp_path / STG
    staging.mkdir()
    shutil.copy(next(scene.rglob("s2-window-0.json")), staging / "item.json")
    derived = [link for link in item["links"] if link["rel"] == "derived_from"]
    derived[0]["href"] = str(staging / "item.json")
    derived[1]["href"] = "../../gone/model.json"
    item["properties"]["processing:lineage"] = f"read from /var/lib/cwl/{STG}/scene"
    item_path.write_text(json.dumps(item))
    messages = [f"{p.path}: {p.message}" for p in validate_source(out)]
    assert len(messages) == 3, messages
    assert messages[0].endswith("points into a temporary or staging directory; expected the input's canonical URL "
                                "(or a file shipped with the catalog)")
    assert "../../gone/model.json does not resolve" in messages[1]
    assert messages[2] == "$.properties['processing:lineage']: names a temporary or staging path; " \
                          "expected hrefs that outlive the run"


def test_training_links_its_data_relative_or_by_its_url(tmp_path: Path) -> None:
    """Training data read from a staging directory: the MLM Item links the --training-data-href URL instead."""
    from mlmkit.training.chips import ChipOptions, build_chips
    from mlmkit.training.layout import parse_classes
    from mlmkit.training.pipeline import train_model
    from train_fixtures import CLASSES_SPEC, write_scene

    scene, labels = write_scene(tmp_path / "scene")
    built = tmp_path / "chips"
    build_chips(str(scene), str(labels), parse_classes(CLASSES_SPEC), built,
                ChipOptions(chip_size=16, block_size=2, fractions=(0.5, 0.25, 0.25)))
    chip_path = next(built.rglob("chip-*.json"))
    chip = json.loads(chip_path.read_text())
    assert [link["href"] for link in chip["links"] if link["rel"] == "source"] == [os.path.relpath(scene, chip_path.parent)]
    chips = tmp_path / STG / "chips"
    shutil.copytree(built, chips)
    url = "https://data.example.org/chips/catalog.json"
    summary = train_model(str(chips), tmp_path / "model", epochs=1, width=4, progress=False, training_data_href=url)
    item = json.loads(next((tmp_path / "model").rglob("*-semantic-segmentation.json")).read_text())
    assert sorted(link["href"] for link in item["links"] if link["rel"] == "derived_from") == [
        "https://data.example.org/chips/test/collection.json", "https://data.example.org/chips/train/collection.json",
        "https://data.example.org/chips/validate/collection.json"]
    assert url in item["properties"]["description"] and STG not in json.dumps(item)
    assert validate_source(str(summary.catalog)) == []
