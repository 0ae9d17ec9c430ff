"""The describe form over HTTP, as a browser without scripts (and the page's script) uses it: a model file read,
the spec checked beside each field, the catalog built by `mlmkit describe`'s code, bad uploads refused with one
message, and nothing left on the server."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from form_helpers import (form_server, hidden_model_info, messages_of, water_fields, water_model, water_spec)
from mlm_fixtures import make_segmenter
from mlmkit.cli import main
from mlmkit.mlm.build import ModelMetadata
from mlmkit.mlm.describe import RUNTIME_KEYS
from mlmkit.web.spec_form import as_form, field_for_path, shown_values, spec_from_form

REPO = Path(__file__).resolve().parents[1]
LIMIT_MIB = 0.25


@pytest.fixture(scope="module")
def server(tmp_path_factory, schema_dir: Path):
    tmp = tmp_path_factory.mktemp("form-tmp")
    with form_server(tmp, MLMKIT_SCHEMA_DIR=str(schema_dir), MLMKIT_DESCRIBE_MAX_UPLOAD_MB=str(LIMIT_MIB)) as base:
        yield base, tmp


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return water_model(tmp_path_factory.mktemp("model") / "water.onnx")


def _upload(base: str, path: Path, name: str | None = None, fields: dict | None = None) -> requests.Response:
    with open(path, "rb") as stream:
        return requests.post(f"{base}/upload", data=fields or {}, files={"model": (name or path.name, stream)},
                             timeout=60)


def _check(base: str, fields: dict) -> list[dict]:
    response = requests.post(f"{base}/check", data=fields, headers={"Accept": "application/json"}, timeout=60)
    assert response.status_code == 200
    return response.json()["messages"]


def _left_over(tmp: Path) -> list[str]:
    """What the server keeps in its temporary directory (onnxruntime's import writes a .ses marker there)."""
    return sorted(path.name for path in tmp.iterdir() if path.name != ".ses")


def test_the_form_edits_every_key_of_the_example_spec() -> None:
    """docs/describe-spec.example.yaml shown in the form and sent back is the same spec (runtimes aside: the
    form takes them as URLs only), and every key the form writes is one `describe` reads."""
    spec = yaml.safe_load((REPO / "docs" / "describe-spec.example.yaml").read_text())
    for key in RUNTIME_KEYS:
        spec.pop(key)
    parsed = spec_from_form(as_form(shown_values({}, spec)))
    assert parsed.messages == []
    assert parsed.spec == spec
    every = spec_from_form(as_form(shown_values({}, {**spec, "input_shape": [-1, 3, 64, 64], "accelerator": "cuda",
                                                        "inference_runtime": "https://example.org/i.cwl"})))
    describe_keys = {field.name for field in ModelMetadata.__dataclass_fields__.values()} | set(RUNTIME_KEYS)
    assert set(every.spec) <= describe_keys and every.spec["input_shape"] == [-1, 3, 64, 64]


def test_item_paths_in_both_notations_name_their_field() -> None:
    assert field_for_path("$.properties['mlm:input'][0].value_scaling[2].stddev") == "scaling-2"
    assert field_for_path("properties.mlm:input[0].value_scaling[0]") == "scaling-0"
    assert field_for_path("$.assets.model['raster:bands'][3].data_type") == "band-3"
    assert field_for_path("$.properties['mlm:output'][0]['classification:classes'][1].name") == "class-1"
    assert field_for_path("$.properties['mlm:output'][0].result.dim_order") == "output_dim_order"
    assert field_for_path("$.properties['sci:doi']") == "doi"
    assert field_for_path("$.assets['source-code']['mlm:entrypoint']") == "entrypoint"
    assert field_for_path("$.links[0]") == ""


def test_read_check_build_gives_the_catalog_describe_writes(server, model, tmp_path) -> None:
    base, tmp = server
    page = _upload(base, model)
    assert page.status_code == 200
    assert "[-1, 4, -1, -1]" in page.text and "[-1, 2, -1, -1]" in page.text  # the tensors, from the file
    assert all(f'id="band-{i}-name"' in page.text for i in range(4)) and 'id="band-4-name"' not in page.text
    assert 'id="class-1-name"' in page.text and 'value="Water"' in page.text  # a name from the file name
    assert messages_of(page.text, "architecture") == []  # still to fill in: no error before the user typed
    fields = {**water_fields(scale="0.0001"), "model_info": hidden_model_info(page.text)}

    (warning,) = _check(base, fields)
    assert warning["field"] == "scaling-0" and warning["severity"] == "warning"
    assert "value_scaling scale 0.0001 divides (x / 0.0001 = x × 10000), which makes uint16 data 10000 times " \
           "larger; expected value 10000" in warning["text"]
    fields["scaling-0-value"] = "10000"
    assert _check(base, fields) == []

    with open(model, "rb") as stream:
        built = requests.post(f"{base}/build", data=fields, files={"model": ("water.onnx", stream)}, timeout=60)
    assert built.status_code == 200 and built.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(built.content)).extractall(tmp_path / "form")
    (catalog,) = (tmp_path / "form").glob("*/catalog.json")
    result = CliRunner().invoke(main, ["validate", str(catalog)])
    assert result.exit_code == 0, result.output

    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(water_spec()))
    described = CliRunner().invoke(main, ["describe", str(model), "-o", str(tmp_path / "cli"), "--spec",
                                          str(tmp_path / "spec.yaml")])
    assert described.exit_code == 0, described.output
    (form_item,) = catalog.parent.glob("*/*/water-segmenter.json")
    (cli_item,) = (tmp_path / "cli").glob("*/*/water-segmenter.json")
    assert json.loads(form_item.read_text()) == json.loads(cli_item.read_text())
    assert (form_item.parent / "water.onnx").read_bytes() == model.read_bytes()
    assert _left_over(tmp) == []


@pytest.mark.parametrize("change,field,expected", [
    ({"name": ""}, "name", "Name is required"),
    ({"hyperparameters": "[1]"}, "hyperparameters", "is a JSON list; expected a JSON object"),
    ({"inference_runtime": "/etc/passwd"}, "inference_runtime", "'/etc/passwd' is not an http(s) URL"),
    ({"scaling-0-type": "z-score", "scaling-0-mean": "1000", "scaling-0-stddev": "0"}, "scaling-0",
     "stddev: is 0; expected > 0 (z-score divides by it)"),
    ({"class-1-color_hint": "blue"}, "class-1", "colour 'blue' is not RRGGBB hex; expected e.g. 0000FF"),
    ({"band-3-name": ""}, "", "3 bands given but the model input 'image' has 4 channels"),
    ({"bbox": "1, 2, x"}, "bbox", "is not comma-separated numbers"),
])
def test_each_message_is_beside_its_field(server, model, change, field, expected) -> None:
    base, _ = server
    fields = {**water_fields(), "model_info": hidden_model_info(_upload(base, model).text), **change}
    messages = _check(base, fields)
    assert [m["field"] for m in messages if m["severity"] == "error"] == [field]
    assert expected in messages[0]["text"]


def test_without_scripts_the_page_shows_messages_beside_fields_and_adds_rows(server, model) -> None:
    base, _ = server
    info = hidden_model_info(_upload(base, model).text)
    fields = {**water_fields(scale="0.0001"), "model_info": info, "name": "<script>alert(1)</script>",
              "add": "band"}
    page = requests.post(f"{base}/check", data=fields, timeout=60).text
    assert messages_of(page, "scaling-0")[0].startswith("Warning: value_scaling scale 0.0001 divides")
    assert 'aria-describedby="scaling-0-msg value_scaling-help"' in page
    assert 'id="band-4-name"' in page  # the row asked for
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert hidden_model_info(page) == info  # the file read before stays described
    assert "Publish to" not in page and requests.post(f"{base}/publish", timeout=30).status_code in (404, 405)


@pytest.mark.parametrize("content,name,status,expected", [
    (b"hello, not a model\n", "notes.onnx", 422,
     "notes.onnx is not a model file: no PyTorch archive, and not ONNX (Error parsing message"),
    (b"\x80\x04\x95" + b"\x00" * 64, "weights.pth", 422, "weights.pth is a torch.save pickle"),
    (b"\x00" * int(LIMIT_MIB * 2**20 + 2**21), "big.onnx", 413,
     f"the upload is larger than this server's limit of {LIMIT_MIB:g} MiB"),
    (b"", "empty.onnx", 422, "empty.onnx is empty; expected a model file"),
    (None, "compiled.pt2", 422, "compiled.pt2 is an AOTInductor package: compiled native code, which this server"),
])
def test_bad_uploads_get_one_clear_message(server, tmp_path, content, name, status, expected) -> None:
    base, tmp = server
    if content is None:  # the layout of an AOTInductor package: a PT2 archive with compiled kernels
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            archive.writestr("compiled/archive_format", "pt2")
            archive.writestr("compiled/data/aotinductor/model/model.so", b"\x7fELF")
    else:
        (tmp_path / name).write_bytes(content)
    response = _upload(base, tmp_path / name)
    assert response.status_code == status
    (message,) = messages_of(response.text, "model")
    assert message.startswith(f"Error: {expected}"), message
    assert "expected" in message and "Traceback" not in response.text
    assert _left_over(tmp) == []


def test_a_torch_save_archive_is_refused_before_it_is_loaded(server, tmp_path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"weight": torch.zeros(2, 4)}, tmp_path / "state.pt")
    (message,) = messages_of(_upload(server[0], tmp_path / "state.pt").text, "model")
    assert message.startswith("Error: state.pt is a torch.save pickle") and "never unpickles it" in message


def test_a_file_name_never_reaches_the_file_system(server, model, tmp_path) -> None:
    base, tmp = server
    page = _upload(base, model, name="../../etc/x y.onnx")
    assert "x-y.onnx" in page.text and "../" not in hidden_model_info(page.text)
    fields = {**water_fields(), "model_info": hidden_model_info(page.text)}
    with open(model, "rb") as stream:
        built = requests.post(f"{base}/build", data=fields, files={"model": ("../../etc/x y.onnx", stream)},
                              timeout=60)
    names = zipfile.ZipFile(io.BytesIO(built.content)).namelist()
    assert any(name.endswith("/x-y.onnx") for name in names) and not any(".." in name for name in names)
    assert _left_over(tmp) == []


def test_building_needs_the_same_file_again(server, model, tmp_path) -> None:
    base, _ = server
    fields = {**water_fields(), "model_info": hidden_model_info(_upload(base, model).text)}
    missing = requests.post(f"{base}/build", data=fields, timeout=60)
    assert missing.status_code == 422
    assert messages_of(missing.text, "model") == [
        "Error: no model file chosen; expected water.onnx chosen again (a browser does not keep a chosen file from "
        "one page to the next)"]
    other = make_segmenter(tmp_path / "other.onnx", channels=4)  # another file with the same input
    with open(other, "rb") as stream:
        wrong = requests.post(f"{base}/build", data=fields, files={"model": ("other.onnx", stream)}, timeout=60)
    assert messages_of(wrong.text, "model") == [
        "Error: other.onnx is not the file read before (water.onnx); expected the same file, or read the new one "
        "first"]


def test_a_torchscript_file_is_read_with_the_shape_it_does_not_record(server, tmp_path) -> None:
    torch = pytest.importorskip("torch")
    scripted = torch.jit.trace(torch.nn.Conv2d(4, 2, 1), torch.zeros(1, 4, 8, 8))
    scripted.save(str(tmp_path / "net.pt"))
    base, _ = server
    (message,) = messages_of(_upload(base, tmp_path / "net.pt").text, "model")
    assert "does not record its input shapes" in message and "input_shape" in message
    page = _upload(base, tmp_path / "net.pt", fields={"input_shape": "-1, 4, 64, 64"})
    assert "TorchScript" in page.text and "[-1, 4, 64, 64]" in page.text and "[-1, 2, 64, 64]" in page.text
    fields = {**water_fields(), "model_info": hidden_model_info(page.text), "input_shape": "-1, 4, 64, 64"}
    with open(tmp_path / "net.pt", "rb") as stream:
        built = requests.post(f"{base}/build", data=fields, files={"model": ("net.pt", stream)}, timeout=120)
    assert built.headers["content-type"] == "application/zip", built.text[:500]
    zipfile.ZipFile(io.BytesIO(built.content)).extractall(tmp_path / "out")
    (catalog,) = (tmp_path / "out").glob("*/catalog.json")
    assert CliRunner().invoke(main, ["validate", str(catalog)]).exit_code == 0


def test_geodeep_metadata_fills_the_form(server, tmp_path) -> None:
    """GeoDeep stores JSON-encoded model_type and class_names in ONNX metadata_props: the form reads them (over
    the task it would guess from the output's rank)."""
    import onnx

    model = onnx.load(str(water_model(tmp_path / "geodeep.onnx")))
    for key, value in {"model_type": '"Detector"', "class_names": '{"1": "land", "0": "water"}',
                       "tiles_overlap": "10"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(tmp_path / "geodeep.onnx"))
    page = _upload(server[0], tmp_path / "geodeep.onnx").text
    assert 'id="class-0-name" name="class-0-name" type="text" value="water"' in page
    assert 'id="class-1-name" name="class-1-name" type="text" value="land"' in page
    assert 'value="object-detection" aria-describedby="tasks-help tasks-msg" checked' in page
    assert 'value="semantic-segmentation" aria-describedby="tasks-help tasks-msg">' in page  # not checked
