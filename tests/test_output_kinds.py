"""The output kinds' registry: a kind registered ahead of the shipped ones takes the outputs it claims, its sink
writes them and the result Item lists its file, while the other outputs keep their shipped kind; the detection
thresholds name where a wrong value came from."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pystac
import pytest
import rasterio

from mlmkit.errors import InvalidArgument, InvalidMetadata
from mlmkit.inference import PredictOptions, predict
from mlmkit.inference import outputs as outputs_module
from mlmkit.inference.catalog import FileResult
from mlmkit.inference.outputs import Sink, SinkContext
from mlmkit.inference.outputs.boxes import thresholds
from bad_input_helpers import write_scene
from test_predict_sink_failure import _two_output_item  # `first` = the sum of the bands, `second` = relu(first)


class _MaximaPlan:
    """The highest value of each tile of one output."""

    key, allows_overlap, alone = "maxima", True, False

    def __init__(self, index: int) -> None:
        self.index = index

    @property
    def reads(self) -> tuple[int, ...]:
        return (self.index,)

    def results(self, raw: list) -> list:
        return list(np.asarray(raw[self.index]))

    def sink(self, context: SinkContext) -> Sink:
        return _MaximaSink(context)


class _MaximaSink(Sink):
    key = "maxima"

    def __init__(self, context: SinkContext) -> None:
        self.path, self.tiles = context.directory / "maxima.json", []

    def add(self, row, col, y, x, result, valid) -> None:
        if result is not None:
            self.tiles.append([y, x, *result.shape[1:], float(result.max())])

    def end_row(self, row: int) -> None:
        """Nothing is held per row."""

    def close(self) -> None:
        """No file stays open."""

    def finish(self, preview: bool):
        self.path.write_text(json.dumps(self.tiles))
        return [FileResult(self.key, self.path, "tile maxima", "application/json")], None


def test_a_registered_kind_takes_the_outputs_it_claims(tmp_path, monkeypatch):
    kind = SimpleNamespace(claim=lambda request, free: [_MaximaPlan(index) for index, output in free.items()
                                                        if output.name == "second"])
    monkeypatch.setattr(outputs_module, "OUTPUT_KINDS", {"maxima": kind, **outputs_module.OUTPUT_KINDS})
    scene = write_scene(tmp_path / "scene")
    catalog = predict(str(_two_output_item(tmp_path)), str(scene), tmp_path / "out", PredictOptions(tile_size=32))
    item = next(pystac.Catalog.from_file(str(catalog)).get_items())
    assert set(item.assets) == {"first", "maxima", "quicklook"}
    assert item.assets["maxima"].media_type == "application/json"
    with rasterio.open(scene.parent / "img.tif") as source:
        total = source.read().astype(np.float64).sum(axis=0)
    tiles = json.loads(Path(item.assets["maxima"].get_absolute_href()).read_text())
    assert len(tiles) == 4  # a 50 × 40 scene in 32-pixel tiles
    for y, x, height, width, highest in tiles:
        assert highest == pytest.approx(total[y:y + height, x:x + width].max())
    with rasterio.open(item.assets["first"].get_absolute_href()) as first:  # the other output stays a raster
        np.testing.assert_allclose(first.read(1), total, rtol=1e-6)


@pytest.mark.parametrize("hyperparameters, score, iou, error, where", [
    (None, 1.5, None, InvalidArgument, "arguments"),
    ({"score_threshold": 0.3}, None, -0.1, InvalidArgument, "arguments"),
    ({"score_threshold": 3}, None, None, InvalidMetadata, "mlm:hyperparameters"),
    ({"iou_threshold": 2}, 0.5, None, InvalidMetadata, "mlm:hyperparameters"),
])
def test_a_threshold_out_of_range_names_its_source(hyperparameters, score, iou, error, where):
    with pytest.raises(error, match=f"\\({where}\\); expected values between 0 and 1"):
        thresholds(hyperparameters, score, iou)


def test_thresholds_in_range_come_from_arguments_then_the_item_then_defaults():
    assert thresholds({"score_threshold": 0.4, "iou_threshold": 0.6}, 0.1, None) == (0.1, 0.6)
    assert thresholds({"confidence_threshold": 0.7}, None, None) == (0.7, 0.5)
    assert thresholds(None, None, None) == (0.25, 0.5)
