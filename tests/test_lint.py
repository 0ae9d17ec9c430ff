"""mlm.lint: metadata that is valid but probably wrong gets a warning or a refusal naming the field and the likely
fix, from describe (before writing), validate (as warnings) and predict (before running); one set of rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from click.testing import CliRunner
from onnx import numpy_helper

from mlm_fixtures import S2_BANDS, item_path, make_segmenter, write_water_catalog
from predict_helpers import imagery_item, mlm_item, mlm_output, write_raster, yolo_model
from mlmkit.cli import main
from mlmkit.errors import InvalidMetadata, MetadataWarning
from mlmkit.inference import PredictOptions, predict
from mlmkit.mlm.lint import lint_model
from mlmkit.mlm.spec import read_model
from mlmkit.catalog.validate import validate_source
from mlmkit.runtimes.onnx_info import read_graph

BANDS = ["B04", "B03", "B02"]
DETECT = ["object-detection"]
# Sentinel-2 L1C as it is stored: uint16 digital numbers, reflectance = DN × 0.0001
DN_BANDS = [dict(band, data_type="uint16", scale=0.0001, nodata=0) for band in S2_BANDS]
YOLO_BANDS = [f"b{index}" for index in range(18)]  # the test YOLO model has one class per input band


def _classes(count: int) -> list[dict]:
    return [{"value": value, "name": f"class-{value}", "description": f"class {value}"} for value in range(count)]


def _describe(tmp_path: Path, model: Path, spec: dict, name: str = "out"):
    spec_file = tmp_path / f"{name}.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    return CliRunner().invoke(main, ["describe", str(model), "-o", str(tmp_path / name), "--spec", str(spec_file)])


def _yolo_spec(classes: int, bands: list[str] = BANDS, **changes) -> dict:
    spec = {"name": "Cell detector", "architecture": "YOLO-like", "tasks": ["object-detection"],
            "bands": [{"name": band, "data_type": "uint8"} for band in bands],
            "classes": [{"value": value, "name": f"class-{value}"} for value in range(classes)]}
    spec.update(changes)
    return spec


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Warning:")]


def test_scale_below_one_on_8_bit_data_warns_with_the_inverse(tmp_path: Path) -> None:
    """YOLO models take x / 255: `value: 1/255` multiplies by 255 instead, which the user is told at describe."""
    model = yolo_model(tmp_path / "yolo.onnx", 3)
    run = _describe(tmp_path, model, _yolo_spec(3, value_scaling=[{"type": "scale", "value": 1 / 255}]))
    assert run.exit_code == 0, run.output
    (warning,) = _warnings(run.output)
    assert "$.properties['mlm:input'][0].value_scaling[0].value" in warning
    assert "value_scaling scale 0.00392157 divides (x / 0.00392157 = x × 255)" in warning
    assert "makes uint8 data 255 times larger; expected value 255 if the model takes x × 0.00392157" in warning
    # validate says the same of the written Item, as a warning that leaves it valid
    problems = validate_source(tmp_path / "out" / "catalog.json", warnings=True)
    assert [p.path for p in problems if p.warning] == ["$.properties['mlm:input'][0].value_scaling[0].value"]
    assert not [p for p in problems if not p.warning]


def test_raster_scale_copied_into_value_scaling_is_named(tmp_path: Path) -> None:
    # raster:bands scale 0.0001 copied into value_scaling, where it divides
    catalog = write_water_catalog(tmp_path, bands=DN_BANDS, value_scaling=[{"type": "scale", "value": 0.0001}])
    (finding,) = lint_model(read_model(catalog))
    assert finding.path == "$.properties['mlm:input'][0].value_scaling[0].value"
    assert finding.message == ("value_scaling scale 0.0001 divides (x / 0.0001 = x × 10000), which makes uint16 data "
                               "10000 times larger; raster:bands scale 0.0001 multiplies (DN × scale), value_scaling "
                               "scale divides; expected value 10000 if the model takes x × 0.0001")
    (tmp_path / "fixed").mkdir()
    assert lint_model(read_model(write_water_catalog(tmp_path / "fixed", bands=DN_BANDS, value_scaling=[
        {"type": "scale", "value": 10000}]))) == []


@pytest.mark.parametrize("scaling, field, text", [
    ({"type": "offset", "value": -1000}, "value",
     "value_scaling offset -1000 subtracts (x - (-1000) = x + 1000) from uint16 data"),
    ({"type": "min-max", "minimum": 0, "maximum": 1}, "maximum",
     "value_scaling min-max maximum 1 is below one step of uint16 data (0 to 65535)"),
    ({"type": "z-score", "mean": 0.485, "stddev": 0.229}, "mean",
     "for statistics of x / 65535: mean 31784.5, stddev 15007.5"),
])
def test_scalings_that_look_inverted_for_the_data_type(tmp_path: Path, scaling: dict, field: str, text: str) -> None:
    (finding,) = lint_model(read_model(write_water_catalog(tmp_path, bands=DN_BANDS, value_scaling=[scaling])))
    assert finding.path == f"$.properties['mlm:input'][0].value_scaling[0].{field}"
    assert text in finding.message and not finding.refuse


def test_a_forgotten_class_in_a_yolo_tensor_is_refused_unless_the_layout_is_stated(tmp_path: Path) -> None:
    """22 values per box with 17 classes listed: YOLOv5 (objectness + 17) or YOLOv8 with 18 classes."""
    model = yolo_model(tmp_path / "yolo.onnx", 18)  # [N, 4 + 18, cells]
    run = _describe(tmp_path, model, _yolo_spec(17, YOLO_BANDS), "forgot")
    assert run.exit_code == 1 and not (tmp_path / "forgot").exists()
    assert run.output.strip() == (
        "Error: the described Item: $.properties['mlm:output'][0].result.dim_order: mlm:output 'output' has 22 "
        "values per box: 4 + 18 class scores (one class more than the 17 listed) or 5 + 17 (an objectness score, "
        "YOLOv5) both fit; expected the layout named in result.dim_order (describe: the detection_layout key), "
        "'cxcywh-class' (4 + K: box, class scores) or 'cxcywh-obj-class' (5 + K: box, objectness, class scores), "
        "or every class listed in classification:classes")
    run = _describe(tmp_path, model, _yolo_spec(18, YOLO_BANDS), "all")
    assert run.exit_code == 0, run.output
    item = json.loads(item_path(tmp_path / "all" / "catalog.json").read_text())
    assert item["properties"]["mlm:output"][0]["result"]["dim_order"] == ["batch", "cxcywh-class", "detection"]
    run = _describe(tmp_path, model, _yolo_spec(17, YOLO_BANDS, detection_layout="cxcywh-obj-class"), "v5")
    assert run.exit_code == 0, run.output
    item = json.loads(item_path(tmp_path / "v5" / "catalog.json").read_text())
    assert item["properties"]["mlm:output"][0]["result"]["dim_order"] == ["batch", "cxcywh-obj-class", "detection"]
    run = _describe(tmp_path, model, _yolo_spec(17, YOLO_BANDS, detection_layout="cxcywh-class"), "wrong")
    assert run.exit_code == 1
    assert ("has 22 values per box, but its dim_order states 4 + K and classification:classes lists 17 classes; "
            "expected 18 classes listed") in run.output
    run = _describe(tmp_path, model, _yolo_spec(18, YOLO_BANDS, detection_layout="cxcywh+class"), "plus")
    assert run.exit_code == 1 and "detection_layout 'cxcywh+class' does not name a YOLO layout" in run.output


def _yolo_item(root: Path, bands: list[str], shape: list[int], dims: list[str], classes: int) -> tuple[Path, Path]:
    """A YOLO-style model with one class per band, its hand-written MLM Item, and a scene of ones."""
    model = yolo_model(root / "yolo.onnx", len(bands))
    inputs = [{"name": "input", "bands": bands, "input": {"shape": [-1, len(bands), 64, 64],
               "dim_order": ["batch", "bands", "height", "width"], "data_type": "float32"}}]
    outputs = [mlm_output("output", DETECT, shape, dims, _classes(classes))]
    item = mlm_item(root / "yolo.json", model, inputs, outputs, band_names=bands)
    write_raster(root / "image.tif", np.ones((len(bands), 64, 64), np.float32))
    return item, imagery_item(root / "scene.json", {"image": ("./image.tif", bands)})


def test_predict_and_validate_refuse_an_ambiguous_yolo_item(tmp_path: Path) -> None:
    item, scene = _yolo_item(tmp_path, YOLO_BANDS, [-1, 22, 64], ["batch", "values", "detection"], 17)
    warnings = [p for p in validate_source(item, warnings=True) if p.warning]
    assert [p.path for p in warnings] == ["$.properties['mlm:output'][0].result.dim_order"]
    assert "22 values per box: 4 + 18 class scores" in warnings[0].message
    with pytest.raises(InvalidMetadata, match=r"^model 'Test model': \$\.properties\['mlm:output'\]\[0\]\.result"
                                              r"\.dim_order: mlm:output 'output' has 22 values per box"):
        predict(str(item), str(scene), tmp_path / "out", PredictOptions())
    assert not (tmp_path / "out").exists()


def test_a_dynamic_yolo_width_is_checked_on_the_model_file_and_in_predict(tmp_path: Path) -> None:
    """The Item says -1 values per box: validate reads 22 from the file; predict from the first tile's output."""
    item, scene = _yolo_item(tmp_path, YOLO_BANDS, [-1, -1, -1], ["batch", "values", "detection"], 17)
    (warning,) = [p for p in validate_source(item, warnings=True) if p.warning]
    assert "has 22 values per box: 4 + 18 class scores" in warning.message
    with pytest.raises(InvalidMetadata, match="mlm:output 'output' has 22 values per box"):
        predict(str(item), str(scene), tmp_path / "out", PredictOptions())


def test_yolo_output_named_like_a_raster_is_a_warning(tmp_path: Path) -> None:
    item, _ = _yolo_item(tmp_path, BANDS, [-1, 7, 64], ["batch", "height", "width"], 3)
    warnings = {p.path: p.message for p in validate_source(item, warnings=True) if p.warning}
    assert warnings["$.properties['mlm:output'][0].result.dim_order"] == (
        "['batch', 'height', 'width'] names height/width, but an object-detection output holds boxes, not pixels; "
        "expected e.g. [batch, cxcywh-class, detection] (one YOLO tensor) or [detection, xyxy] (a boxes output)")


def _constant_weights_model(path: Path) -> Path:
    """The segmenter with its weights moved from initializers into Constant nodes, as Paddle2ONNX writes them."""
    model = onnx.load(str(make_segmenter(path)))
    constants = [onnx.helper.make_node("Constant", [], [init.name], value=init) for init in model.graph.initializer]
    del model.graph.initializer[:]
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(constants + nodes)
    onnx.save(model, str(path))
    return path


def test_constant_node_weights_are_counted_and_zero_parameters_warn(tmp_path: Path) -> None:
    model = _constant_weights_model(tmp_path / "seg.onnx")
    weights = sum(numpy_helper.to_array(node.attribute[0].t).size for node in onnx.load(str(model)).graph.node
                  if node.op_type == "Constant")
    assert weights == 2 * 3 + 2 and read_graph(model).total_parameters == weights
    catalog = write_water_catalog(tmp_path, value_scaling=None)
    item = item_path(catalog)
    data = json.loads(item.read_text())
    data["properties"]["mlm:total_parameters"] = 0
    item.write_text(json.dumps(data))
    warnings = {p.path: p.message for p in validate_source(catalog, warnings=True) if p.warning}
    assert warnings["$.properties['mlm:total_parameters']"] == (
        "is 0, but the model file holds 8 weights (initializers and Constant nodes); expected the count the file "
        "holds (mlmkit describe counts them)")


def test_one_score_channel_with_three_classes_warns(tmp_path: Path) -> None:
    model = make_segmenter(tmp_path / "seg.onnx", classes=1)
    inputs = [{"name": "image", "bands": BANDS, "input": {"shape": [-1, 3, -1, -1],
               "dim_order": ["batch", "bands", "height", "width"], "data_type": "float32"}}]
    outputs = [mlm_output("scores", ["semantic-segmentation"], [-1, 1, -1, -1], ["batch", "class", "height", "width"],
                          _classes(3))]
    item = mlm_item(tmp_path / "seg.json", model, inputs, outputs, band_names=BANDS)
    warnings = {p.path: p.message for p in validate_source(item, warnings=True) if p.warning}
    assert warnings["$.properties['mlm:output'][0]['classification:classes']"].startswith(
        "lists 3 classes, but the output has one score channel, which predict reads as two classes")


def test_predict_says_lint_warnings_before_it_runs(tmp_path: Path) -> None:
    catalog = write_water_catalog(tmp_path, value_scaling=[{"type": "scale", "value": 0.0001}],
                                  bbox=[-180.0, -90.0, 180.0, 90.0])  # where the scene is
    write_raster(tmp_path / "image.tif", np.full((3, 32, 32), 1000, np.uint16))
    scene = imagery_item(tmp_path / "scene.json", {"image": ("./image.tif", BANDS)})
    with pytest.warns(MetadataWarning, match=r"value_scaling\[0\]\.value: value_scaling scale 0.0001 divides"):
        predict(str(catalog), str(scene), tmp_path / "out", PredictOptions())


def _torchscript(path: Path, traced_batch: bool) -> Path:
    """A TorchScript file traced with a batch of 4 baked into a reshape, or scripted with a second argument `sr`."""
    torch = pytest.importorskip("torch")

    class Traced(torch.nn.Module):
        def forward(self, x):
            return x.reshape(4, 3, 64).sum(2)

    class WithRate(torch.nn.Module):
        def forward(self, x, sr: int):
            return x * sr

    module = torch.jit.trace(Traced(), torch.zeros(4, 3, 8, 8)) if traced_batch else torch.jit.script(WithRate())
    module.save(str(path))
    return path


@pytest.mark.parametrize("traced_batch, text", [
    (True, "the torch.jit.save model fails on zeros shaped [1, 3, 8, 8]: shape '[4, 3, 64]' is invalid for input of "
           "size 192; expected an input_shape the model takes; a traced model keeps the batch and sizes it was traced "
           "with (declare them instead of -1)"),
    (False, "the torch.jit.save model fails on zeros shaped [1, 3, 8, 8]: forward() is missing value for argument 'sr'. "
            "Declaration: forward(__torch__.test_lint.*WithRate self, Tensor x, int sr) -> Tensor; expected one "
            "declared input per argument of the model's forward() (input_shape describes one)"),
])
def test_torchscript_run_errors_give_the_root_cause_first(tmp_path: Path, traced_batch: bool, text: str) -> None:
    model = _torchscript(tmp_path / "model.pt", traced_batch)
    run = CliRunner().invoke(main, ["describe", str(model), "-o", str(tmp_path / "out"), "--name", "Scripted",
                                    "--architecture", "test", "--task", "regression", "--input-shape", "-1,3,8,8"])
    start, _, end = text.partition("*")  # the scripted class's module path holds a counter torch adds
    assert run.exit_code == 1 and run.output.startswith(f"Error: {start}") and run.output.endswith(f"{end}\n")
    assert run.output.count("\n") == 1
