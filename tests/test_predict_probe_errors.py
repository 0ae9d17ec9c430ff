"""A model that fails on every tile size probed for a reason other than the size (a broken graph, out of memory)
says that reason in its one-line error, not only that no size was taken."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from bad_input_helpers import SEG, assert_one_line_failure, invoke, write_scene
from predict_helpers import _save, mlm_input, mlm_item, mlm_output


def test_a_model_failing_at_every_size_names_its_first_error(tmp_path):
    """Gather of channel 5 of 3: onnxruntime fails the same way whatever the height and width."""
    graph = helper.make_graph(
        [helper.make_node("Gather", ["input", "channel"], ["picked"], axis=1),
         helper.make_node("Concat", ["picked", "picked"], ["output"], axis=1)], "broken",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        [numpy_helper.from_array(np.array([5], np.int64), "channel")])
    model = _save(graph, tmp_path / "broken.onnx")
    bands = ["B04", "B03", "B02"]
    item = mlm_item(tmp_path / "model.json", model, [mlm_input("input", bands, 3)], [mlm_output("out", *SEG)])

    result = invoke(["predict", "-m", item, "-i", write_scene(tmp_path / "scene"), "-o", tmp_path / "out"])
    line = assert_one_line_failure(result, 1, match="took none of the tile sizes tried")
    assert "at 3×3 px: the model refused its input (input[1, 3, 3, 3])" in line
    assert "out of" in line and "bounds" in line  # onnxruntime's own reason
