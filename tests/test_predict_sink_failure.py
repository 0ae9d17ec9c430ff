"""A run whose second output file cannot be created (a full disk) closes the files already open for the first."""

from __future__ import annotations

import errno

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from mlmkit.errors import MlmkitError
from mlmkit.inference import PredictOptions, predict
from mlmkit.inference.outputs import raster as sinks_module
from bad_input_helpers import write_scene
from predict_helpers import _save, mlm_input, mlm_item, mlm_output

BANDS = ["B04", "B03", "B02"]


def _two_output_item(root):
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["first"]), helper.make_node("Relu", ["first"], ["second"])],
        "two-outputs", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 1, "H", "W"]) for name in ("first", "second")],
        [numpy_helper.from_array(np.ones((1, 3, 1, 1), np.float32), "w")])
    model = _save(graph, root / "two.onnx")
    dims = ["batch", "channel", "height", "width"]
    return mlm_item(root / "model.json", model, [mlm_input("input", BANDS, 3)],
                    [mlm_output(name, ["regression"], [-1, 1, -1, -1], dims) for name in ("first", "second")])


def test_writers_opened_before_a_failing_one_are_closed(tmp_path, monkeypatch):
    opened, closed = [], []

    class FailingSecond(sinks_module.StripWriter):
        def __init__(self, path, **profile):
            if opened:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            super().__init__(path, **profile)
            opened.append(path.name)

        def close(self):
            closed.append(self.path.name)
            super().close()

    monkeypatch.setattr(sinks_module, "StripWriter", FailingSecond)
    with pytest.raises(MlmkitError, match="no space left"):
        predict(str(_two_output_item(tmp_path)), str(write_scene(tmp_path / "scene")), tmp_path / "out",
                PredictOptions(tile_size=32))
    assert opened == ["first.tmp.tif"] and closed == opened
