"""--overwrite never replaces an output directory that holds a model file the run reads: every mlm:model asset of
the Item counts, not only the first, since --model-asset (or the ONNX-first choice) may run another."""

from __future__ import annotations

import json
import shutil

from bad_input_helpers import assert_one_line_failure, invoke, write_model, write_scene
from mlmkit.stac.checksum import file_checksum


def test_overwrite_is_refused_where_the_output_holds_the_model_asset_run(tmp_path):
    item = write_scene(tmp_path / "scene")
    model_item = write_model(tmp_path / "model")
    out = tmp_path / "out"
    second = out / "kept" / "alt.onnx"
    second.parent.mkdir(parents=True)
    shutil.copy(tmp_path / "model" / "m.onnx", second)
    document = json.loads(model_item.read_text())
    document["assets"]["alt"] = {**document["assets"]["model"], "href": str(second),
                                 "file:checksum": file_checksum(second)}
    model_item.write_text(json.dumps(document))
    before = second.read_bytes()

    result = invoke(["predict", "-m", model_item, "-i", item, "-o", out, "--model-asset", "alt", "--overwrite"])
    assert_one_line_failure(result, 1, match=f"output directory {out} contains the input {second}")
    assert second.read_bytes() == before and not (out / "catalog.json").exists()
