"""`validate --warnings` reads an MLM Item into a model spec once for its findings and its warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mlmkit.mlm.semantic
from mlmkit.catalog.validate import validate_source
from predict_helpers import conv_model, mlm_input, mlm_item, mlm_output


def test_one_reading_gives_findings_and_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = conv_model(tmp_path / "m.onnx", np.ones((2, 3)), np.zeros(2))
    model_input = mlm_input("input", ["B04", "B03", "B02"], 3)
    model_input["input"]["dim_order"] = ["batch", "bands", "height", "time"]  # valid, but predict cannot run it
    output = mlm_output("out", ["semantic-segmentation"], [-1, 5, -1, -1], ["batch", "class", "height", "width"])
    item = mlm_item(tmp_path / "model.json", model, [model_input], [output], band_names=["B04", "B03", "B02"])
    readings = []
    read = mlmkit.mlm.semantic.spec_from_item

    def counting(*args, **kwargs):
        readings.append(args)
        return read(*args, **kwargs)

    monkeypatch.setattr(mlmkit.mlm.semantic, "spec_from_item", counting)
    problems = validate_source(item, warnings=True)
    assert len(readings) == 1
    # the model file has 2 classes where the Item says 5 (a finding); the layout is a warning
    assert [(p.path, p.warning) for p in problems] == [("$.properties['mlm:output'][0].result.shape[1]", False),
                                                       ("$.properties['mlm:input'][0].input.dim_order", True)]
