"""PyTorch artifacts behind the runtime interface: a U-Net saved as TorchScript, as an ExportedProgram, as an
AOTInductor package and as ONNX gives, through `mlmkit predict`, the classes torch gives on the same pixels;
`describe` and `validate` read the files; torch.save pickles are refused unread; a missing torch is one line;
the device follows --device and mlm:accelerator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner
from torch import nn

from mlmkit.cli import main
from mlmkit.catalog.model_catalog import describe_model
from mlmkit.errors import InvalidArgument, InvalidInput
from mlmkit.inference import PredictOptions, predict
from mlmkit.inference.runtime import choose_device
from mlmkit.runtimes.onnx import providers_for
from mlmkit.training.export import export_onnx, export_program
from mlmkit.training.models import UNet
from mlmkit.catalog.validate import validate_source
from train_fixtures import BANDS, scene_arrays, write_scene

CLASSES = [{"value": i, "name": name} for i, name in enumerate(("water", "forest", "field"))]
MIN_AGREEMENT = 0.999


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("scene"))[0]


@pytest.fixture(scope="module")
def unet() -> nn.Module:
    torch.manual_seed(13)
    model = UNet(4, 3, width=4)
    with torch.no_grad():  # non-trivial batch-norm statistics, so eval mode differs from a fresh net
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
        model.head.bias.zero_()  # its random bias alone would pick one class for every pixel
    return model.eval()


def _stats() -> tuple[np.ndarray, np.ndarray]:
    image = scene_arrays()[0].astype(np.float64)
    return image.mean(axis=(1, 2)), image.std(axis=(1, 2))


def _spec(**extra) -> dict:
    mean, std = _stats()
    return {"name": "unet", "architecture": "U-Net", "tasks": ["semantic-segmentation"], "bands": BANDS,
            "value_scaling": [{"type": "z-score", "mean": float(m), "stddev": float(s)} for m, s in zip(mean, std)],
            "classes": CLASSES, **extra}


def _torch_scores(model: nn.Module) -> np.ndarray:
    """(classes, h, w) scores of the model run here on the z-scored scene, outside mlmkit."""
    mean, std = _stats()
    pixels = (scene_arrays()[0] - mean[:, None, None]) / std[:, None, None]
    with torch.no_grad():
        return model(torch.from_numpy(pixels[None].astype(np.float32)))[0].numpy()


def _torch_classes(model: nn.Module) -> np.ndarray:
    """argmax of the model run here on the z-scored scene, outside mlmkit."""
    return _torch_scores(model).argmax(axis=0)


@pytest.fixture(scope="module")
def artifacts(unet: nn.Module, tmp_path_factory) -> dict[str, Path]:
    """The same U-Net as TorchScript, ExportedProgram and ONNX files."""
    folder = tmp_path_factory.mktemp("artifacts")
    example = torch.zeros(2, 4, 64, 64)
    torch.jit.save(torch.jit.trace(unet, example[:1]), str(folder / "unet.pt"))
    export_program(unet, folder / "unet.pt2", example, dynamic_hw=True)
    export_onnx(unet, folder / "unet.onnx", example, dynamic_hw=True)
    return {"torchscript": folder / "unet.pt", "exported": folder / "unet.pt2", "onnx": folder / "unet.onnx"}


@pytest.fixture(scope="module")
def catalogs(artifacts: dict[str, Path], tmp_path_factory, schema_dir: Path) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("catalogs")
    extra = {"torchscript": {"input_shape": [-1, 4, -1, -1]}}
    return {name: describe_model(path, out / name, _spec(**extra.get(name, {})), schema_dir=schema_dir)
            for name, path in artifacts.items()}


def _item(catalog: Path) -> dict:
    return json.loads(next(catalog.parent.rglob("unet.json")).read_text())


def _read(out: Path, key: str) -> np.ndarray:
    with rasterio.open(next(out.rglob(f"{key}.tif"))) as src:
        return src.read()


def _predict(catalog: Path, scene: Path, out: Path, **options) -> np.ndarray:
    result = predict(str(catalog), str(scene), out, PredictOptions(**options))
    return _read(result.parent, "classes")[0]  # the one class map


@pytest.mark.parametrize("name", ["torchscript", "exported", "onnx"])
def test_every_artifact_gives_the_classes_torch_gives(name, catalogs, scene, unet, tmp_path):
    classes = _predict(catalogs[name], scene, tmp_path / "out", probabilities=True)
    expected = _torch_classes(unet)
    assert set(np.unique(expected)) == {c["value"] for c in CLASSES}  # a constant map would agree by chance
    agreement = float(np.mean(classes == expected))
    print(f"{name} vs torch: {agreement:.5f} of {expected.size} pixels equal")
    assert classes.shape == expected.shape
    assert agreement >= MIN_AGREEMENT
    scores = _torch_scores(unet)
    tolerance = 1e-4 * float(np.abs(scores).max())  # 1e-4 of their range; runtimes differ by < 1e-6 of it
    np.testing.assert_allclose(_read(tmp_path / "out", "scores"), scores, rtol=0, atol=tolerance)


def test_describe_reads_the_exported_program(catalogs, unet):
    item = _item(catalogs["exported"])
    props, asset = item["properties"], item["assets"]["model"]
    assert props["mlm:input"][0]["input"] == {"shape": [-1, 4, -1, -1],
                                              "dim_order": ["batch", "bands", "height", "width"],
                                              "data_type": "float32"}
    assert props["mlm:output"][0]["result"]["shape"] == [-1, 3, -1, -1]
    assert props["mlm:framework"] == "PyTorch"
    assert props["mlm:total_parameters"] == sum(p.numel() for p in unet.parameters())
    assert asset["mlm:artifact_type"] == "torch.export.save"
    assert asset["type"] == "application/octet-stream; framework=pytorch"


def test_describe_probes_torchscript_outputs_from_the_declared_input(catalogs, artifacts, tmp_path):
    item = _item(catalogs["torchscript"])
    assert item["properties"]["mlm:input"][0]["name"] == "x"  # as the TorchScript forward() names it
    assert item["properties"]["mlm:output"][0]["result"]["shape"] == [-1, 3, -1, -1]
    assert item["assets"]["model"]["mlm:artifact_type"] == "torch.jit.save"
    with pytest.raises(InvalidInput, match="does not record its input shapes; expected them declared") as info:
        describe_model(artifacts["torchscript"], tmp_path / "out", _spec())
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()
    run = CliRunner().invoke(main, ["describe", str(artifacts["torchscript"]), "-o", str(tmp_path / "cli"),
                                    "--name", "unet", "--architecture", "U-Net", "--task", "semantic-segmentation",
                                    "--input-shape", "-1,4,64,64", "--input-data-type", "float32"])
    assert run.exit_code == 0, run.output
    cli_item = _item(tmp_path / "cli" / "catalog.json")
    assert cli_item["properties"]["mlm:input"][0]["input"]["shape"] == [-1, 4, 64, 64]
    assert cli_item["properties"]["mlm:output"][0]["result"]["shape"] == [-1, 3, 64, 64]


def _edited(catalog: Path, tmp_path: Path, edit) -> Path:
    """A copy of the catalog with its item JSON changed by `edit`."""
    copy = tmp_path / "copy"
    shutil.copytree(catalog.parent, copy)
    path = next(copy.rglob("unet.json"))
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return copy / "catalog.json"


def test_validate_checks_torch_files_against_the_item(catalogs, tmp_path):
    assert validate_source(str(catalogs["exported"])) == []
    assert validate_source(str(catalogs["torchscript"])) == []

    def wrong_type(data):
        data["properties"]["mlm:input"][0]["input"]["data_type"] = "float64"
    problems = validate_source(str(_edited(catalogs["exported"], tmp_path / "a", wrong_type)))
    assert [p.message for p in problems] == ["is float64 but the ExportedProgram tensor 'x' holds float32"]

    def wrong_classes(data):
        data["properties"]["mlm:output"][0]["result"]["shape"] = [-1, 5, -1, -1]
    problems = validate_source(str(_edited(catalogs["torchscript"], tmp_path / "b", wrong_classes)))
    assert any("the TorchScript tensor 'output' has 3 there" in p.message for p in problems)

    def wrong_artifact(data):
        data["assets"]["model"]["mlm:artifact_type"] = "torch.jit.save"
    problems = validate_source(str(_edited(catalogs["exported"], tmp_path / "c", wrong_artifact)))
    assert [(p.path, p.message) for p in problems] == [
        ("$.assets.model['mlm:artifact_type']",
         "is 'torch.jit.save' but unet.pt2 is an ExportedProgram (expected 'torch.export.save')")]


class _Payload:
    """Unpickling this creates a file: proof that a pickle was (not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("artifact_type, name", [("torch.save", "model.pt"), ("torch.jit.save", "disguised.pt"),
                                                 ("torch.export.save", "disguised.pt2")])
def test_torch_save_pickles_are_refused_unread(artifact_type, name, catalogs, scene, tmp_path):
    marker = tmp_path / "unpickled"
    torch.save(_Payload(marker), tmp_path / name)

    def point_at_pickle(data):
        data["assets"]["model"].update({"href": str(tmp_path / name), "mlm:artifact_type": artifact_type})
        data["assets"]["model"].pop("file:checksum")
        data["assets"]["model"].pop("file:size")
    catalog = _edited(catalogs["exported"], tmp_path / "edit", point_at_pickle)
    with pytest.raises(InvalidInput, match="is a torch.save pickle: loading it runs code stored in the file") as info:
        predict(str(catalog), str(scene), tmp_path / "out", PredictOptions())
    assert "\n" not in str(info.value)
    problems = [p.message for p in validate_source(str(catalog))]
    assert problems == ([] if artifact_type == "torch.save" else
                        [f"is {artifact_type!r} but {name} is a torch.save pickle (expected 'torch.save')"])
    with pytest.raises(InvalidInput, match="torch.save pickle"):
        describe_model(tmp_path / name, tmp_path / "described", _spec(input_shape=[-1, 4, -1, -1]))
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def _without_torch(*args: str) -> subprocess.CompletedProcess:
    """mlmkit in a fresh interpreter where `import torch` fails, as in the inference image."""
    code = "import sys; sys.modules['torch'] = None; from mlmkit.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, "MLMKIT_SCHEMA_DIR": os.environ["MLMKIT_SCHEMA_DIR"]}, timeout=300)


def test_a_missing_torch_is_one_line_naming_the_extra(catalogs, scene, tmp_path):
    run = _without_torch("predict", "-m", str(catalogs["exported"]), "-i", str(scene), "-o", str(tmp_path / "pt2"))
    assert run.returncode == 1
    assert run.stderr == ("Error: the torch.export.save model unet.pt2 needs PyTorch, which is not installed; "
                          "expected `pip install 'mlmkit[train]'` (the train extra)\n")
    assert not (tmp_path / "pt2").exists()
    onnx = _without_torch("predict", "-m", str(catalogs["onnx"]), "-i", str(scene), "-o", str(tmp_path / "onnx"))
    assert onnx.returncode == 0, onnx.stderr  # ONNX needs no torch
    assert _without_torch("validate", str(catalogs["exported"])).returncode == 0


def test_aoti_packages_run_only_when_trusted(scene, tmp_path, monkeypatch, schema_dir):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch.manual_seed(0)
    model = nn.Conv2d(4, 3, 1).eval()
    dims = {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}
    program = torch.export.export(model, (torch.zeros(2, 4, 32, 32),), dynamic_shapes=(dims,))
    package = Path(torch._inductor.aoti_compile_and_package(program, package_path=str(tmp_path / "conv.pt2")))
    catalog = describe_model(package, tmp_path / "catalog", _spec(input_shape=[-1, 4, -1, -1]), schema_dir=schema_dir)
    item = _item(catalog)
    assert item["assets"]["model"]["mlm:artifact_type"] == "torch._inductor.aoti_compile_and_package"
    assert item["properties"]["mlm:output"][0]["result"]["shape"] == [-1, 3, -1, -1]
    with pytest.raises(InvalidInput, match="AOTInductor package: compiled native code.*expected allow_native_code"):
        predict(str(catalog), str(scene), tmp_path / "refused", PredictOptions())
    classes = _predict(catalog, scene, tmp_path / "out", allow_native_code=True)
    np.testing.assert_array_equal(classes, _torch_classes(model))
    assert validate_source(str(catalog)) == []  # checked without loading its native code


def test_device_follows_the_option_and_the_accelerator():
    assert choose_device("auto", "amd64", False, cuda_available=True) == "cpu"
    assert choose_device("auto", "cuda", False, cuda_available=True) == "cuda"
    assert choose_device("auto", None, False, cuda_available=True) == "cuda"
    assert choose_device("auto", "cuda", False, cuda_available=False) == "cpu"
    assert choose_device("cuda", "amd64", False, cuda_available=True) == "cuda"
    assert choose_device("cpu", "cuda", False, cuda_available=True) == "cpu"
    for args, message in [(("auto", "cuda", True, False), "constrained to mlm:accelerator 'cuda'.*not available"),
                          (("cpu", "cuda", True, True), "constrained to mlm:accelerator 'cuda' and cannot run on cpu"),
                          (("cuda", "amd64", True, True), "constrained to mlm:accelerator 'amd64'"),
                          (("cuda", None, False, False), "CUDA is not available"),
                          (("auto", "xla", True, True), "mlmkit runs models on cpu or cuda"),
                          (("tpu", None, False, False), "device 'tpu' is unknown")]:
        with pytest.raises(InvalidInput, match=message):
            choose_device(*args[:3], cuda_available=args[3])
    assert "CUDAExecutionProvider" not in providers_for("cpu", None)
    assert providers_for("cpu", ("CPUExecutionProvider",)) == ["CPUExecutionProvider"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where CUDA is absent")
def test_cuda_requested_where_there_is_none_is_one_line(catalogs, scene, tmp_path):
    for name in ("exported", "onnx"):
        with pytest.raises(InvalidArgument, match="device 'cuda': CUDA is not available") as info:
            predict(str(catalogs[name]), str(scene), tmp_path / name, PredictOptions(device="cuda"))
        assert "\n" not in str(info.value)
