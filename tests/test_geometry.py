"""Model input geometry: stride-aware tile sizes, scenes smaller than a tile, resize_type, resolution.

The models are a real stride-16 U-Net (four poolings and skip concatenations: it fails inside the graph on
sizes that are not multiples of 16) exported from torch with dynamic and with fixed 256×256 height/width, and
described by `mlmkit describe` as a user would. Every result (classes and class scores) is compared with the
same ONNX model fed the same pixels directly (padded by numpy where the scene is smaller than the tile). The
biases are zeroed so the classes follow the pixels rather than one dominant bias: every compared class map
holds all classes, so a shifted window, the wrong padding or mixed-up bands cannot go unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.errors import InvalidArgument, ModelRefused, ModelRunError, OptionAdjusted
from mlmkit.mlm.spec import read_model
from mlmkit.inference import PredictOptions, predict
from mlmkit.inference.geometry import InputGeometry, TileFit, TileSizes, probe_multiple, tile_sizes
from predict_helpers import imagery_item, write_raster

torch = pytest.importorskip("torch")
BANDS = ["B02", "B03", "B04", "B08"]
CLASSES = 3


class StrideUNet(torch.nn.Module):
    """Four 2× poolings with skip concatenations: height and width must be multiples of 16."""

    def __init__(self, width: int = 4, depth: int = 4) -> None:
        super().__init__()
        conv = torch.nn.Conv2d
        self.down = torch.nn.ModuleList(conv(len(BANDS) if i == 0 else width, width, 3, padding=1) for i in range(depth))
        self.up = torch.nn.ModuleList(torch.nn.ConvTranspose2d(width, width, 2, 2) for _ in range(depth))
        self.merge = torch.nn.ModuleList(conv(2 * width, width, 3, padding=1) for _ in range(depth))
        self.head = conv(width, CLASSES, 1)

    def forward(self, x):
        skips = []
        for down in self.down:
            x = torch.relu(down(x))
            skips.append(x)
            x = torch.nn.functional.max_pool2d(x, 2)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = torch.relu(merge(torch.cat([up(x), skip], 1)))
        return self.head(x)


def _export(path: Path, fixed: int | None) -> Path:
    torch.manual_seed(3)
    model = StrideUNet().eval()
    with torch.no_grad():  # with its random biases, one class wins every pixel of [0, 1) imagery
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                module.bias.zero_()
    axes = {0: "batch"} if fixed else {0: "batch", 2: "height", 3: "width"}
    example = torch.zeros(1, len(BANDS), fixed or 64, fixed or 64)
    torch.onnx.export(model, (example,), str(path), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": axes, "logits": axes}, opset_version=17, dynamo=False)
    return path


def _describe(onnx_path: Path, outdir: Path, *extra: str) -> Path:
    args = ["describe", str(onnx_path), "-o", str(outdir), "--name", "Stride-16 U-Net", "--architecture", "U-Net",
            "--task", "semantic-segmentation", "--license", "Apache-2.0",
            *[arg for band in BANDS for arg in ("--band", band)],
            *[arg for value in range(CLASSES) for arg in ("--class", f"{value}:class{value}")], *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return outdir / "catalog.json"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (MLM catalog, ONNX file) for the dynamic and the fixed-size U-Net."""
    root = tmp_path_factory.mktemp("models")
    made = {}
    for name, fixed in (("dynamic", None), ("fixed", 256)):
        onnx_path = _export(root / f"{name}.onnx", fixed)
        made[name] = (_describe(onnx_path, root / name), onnx_path)
    return made


def _scene(directory: Path, height: int, width: int) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(height * 1000 + width)
    data = rng.random((len(BANDS), height, width), dtype=np.float32)
    directory.mkdir(parents=True, exist_ok=True)
    write_raster(directory / "img.tif", data)
    return imagery_item(directory / "item.json", {"img": ("./img.tif", BANDS)}), data


def _run_model(onnx_path: Path, pixels: np.ndarray) -> np.ndarray:
    """Class scores (logits) the ONNX model gives for (bands, h, w) pixels fed to it directly."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": pixels[None].astype(np.float32)})[0][0]


def _read(outdir: Path, key: str) -> np.ndarray:
    with rasterio.open(next(outdir.glob(f"*/{key}.tif"))) as dataset:
        return dataset.read()


def _assert_matches(outdir: Path, expected_scores: np.ndarray, window: tuple[int, int, int, int]) -> None:
    """The classes and class scores predict wrote in `window` (y, x, h, w) are those of the direct run."""
    y, x, h, w = window
    expected = expected_scores.argmax(axis=0)
    assert set(np.unique(expected)) == set(range(CLASSES))  # a constant map would hide offsets and padding
    np.testing.assert_array_equal(_read(outdir, "classes")[0, y:y + h, x:x + w], expected)
    np.testing.assert_allclose(_read(outdir, "scores")[:, y:y + h, x:x + w], expected_scores, rtol=0, atol=1e-5)


def _predict_cli(model: Path, item: Path, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(main, ["predict", "--model", str(model), "--input", str(item), "--output", str(out),
                                       *extra])
    assert result.exit_code == 0, result.output
    return result.output


CASES = [  # scene height, width, tile option, the window compared directly: (y, x, h, w)
    (100, 100, (), (0, 0, 100, 100)),
    (257, 300, (), (1, 44, 256, 256)),
    (1000, 1000, (), (256, 256, 256, 256)),
    (100, 100, ("--tile-size", "256"), (0, 0, 100, 100)),
    (257, 300, ("--tile-size", "256"), (1, 44, 256, 256)),
    (1000, 1000, ("--tile-size", "256"), (744, 256, 256, 256)),  # the last row, shifted back to end on the edge
]


@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
@pytest.mark.parametrize("height,width,option,window", CASES)
def test_every_scene_runs_and_matches_the_model_fed_directly(models, tmp_path, kind, height, width, option, window):
    catalog, onnx_path = models[kind]
    item, data = _scene(tmp_path / "scene", height, width)
    _predict_cli(catalog, item, tmp_path / "out", "--probabilities", *option)
    _predict_cli(catalog, item, tmp_path / "plain", *option)  # classes only: tiles finalised as they come
    assert _read(tmp_path / "out", "classes").shape == (1, height, width)
    np.testing.assert_array_equal(_read(tmp_path / "plain", "classes"), _read(tmp_path / "out", "classes"))
    y, x, h, w = window
    pixels = data[:, y:y + h, x:x + w]
    tile = 256 if kind == "fixed" else 112 if (h, w) == (100, 100) else 256
    padded = np.pad(pixels, ((0, 0), (0, tile - h), (0, tile - w)), mode="reflect")
    _assert_matches(tmp_path / "out", _run_model(onnx_path, padded)[:, :h, :w], window)


def test_tile_size_is_rounded_to_the_multiple_the_model_needs(models, tmp_path):
    catalog, onnx_path = models["dynamic"]
    item, data = _scene(tmp_path / "scene", 1000, 1000)
    with pytest.warns(OptionAdjusted, match="tile size 250 is not a multiple of 16") as said:
        predict(str(catalog), str(item), tmp_path / "out", PredictOptions(tile_size=250, probabilities=True))
    assert any("using 256" in str(warning.message) for warning in said)
    assert _read(tmp_path / "out", "classes").shape == (1, 1000, 1000)
    _assert_matches(tmp_path / "out", _run_model(onnx_path, data[:, 256:512, 256:512]), (256, 256, 256, 256))


def test_the_cli_prints_the_rounding_note_on_stderr(models, tmp_path):
    catalog, _ = models["dynamic"]
    item, _ = _scene(tmp_path / "scene", 120, 130)
    result = CliRunner().invoke(main, ["predict", "--model", str(catalog), "--input", str(item), "--output",
                                       str(tmp_path / "out"), "--tile-size", "100"])
    assert result.exit_code == 0, result.output
    assert "not a multiple of 16" in result.stderr and "using 96" in result.stderr


def test_a_declared_size_multiple_skips_the_probe(models, tmp_path, monkeypatch):
    catalog, onnx_path = models["dynamic"]
    spec = read_model(catalog)
    item_file = Path(spec.self_href)
    data = json.loads(item_file.read_text())
    data["properties"]["mlm:input"][0]["mlmkit:size_multiple"] = 32
    item_file.write_text(json.dumps(data))
    probes = []
    monkeypatch.setattr("mlmkit.inference.geometry.probe_multiple", lambda *args: probes.append(args) or 1)
    scene, pixels = _scene(tmp_path / "scene", 100, 100)
    predict(str(catalog), str(scene), tmp_path / "out", PredictOptions(probabilities=True))
    assert not probes
    padded = np.pad(pixels, ((0, 0), (0, 28), (0, 28)), mode="reflect")  # 100 → 128, the next multiple of 32
    assert _read(tmp_path / "out", "classes").shape == (1, 100, 100)
    _assert_matches(tmp_path / "out", _run_model(onnx_path, padded)[:, :100, :100], (0, 0, 100, 100))
    result = CliRunner().invoke(main, ["validate", str(catalog)])
    assert result.exit_code == 0, result.output  # the declaration is valid MLM


def test_resize_type_pad_pads_with_zeros(models, tmp_path):
    catalog, onnx_path = models["fixed"]
    spec = read_model(catalog)
    data = json.loads(Path(spec.self_href).read_text())
    data["properties"]["mlm:input"][0]["resize_type"] = "pad"
    Path(spec.self_href).write_text(json.dumps(data))
    item, pixels = _scene(tmp_path / "scene", 70, 90)
    predict(str(catalog), str(item), tmp_path / "out", PredictOptions(probabilities=True))
    padded = np.pad(pixels, ((0, 0), (0, 256 - 70), (0, 256 - 90)), mode="constant")
    expected = _run_model(onnx_path, padded)[:, :70, :90]
    assert _read(tmp_path / "out", "classes").shape == (1, 70, 90)
    _assert_matches(tmp_path / "out", expected, (0, 0, 70, 90))
    reflected = np.pad(pixels, ((0, 0), (0, 256 - 70), (0, 256 - 90)), mode="reflect")
    assert not np.allclose(_run_model(onnx_path, reflected)[:, :70, :90], expected, atol=1e-3)  # modes differ


def test_stated_resolution_resamples_the_imagery(tmp_path):
    """A model whose bands state a 20 m gsd gets a 20 m grid from 10 m imagery (block averages with
    interpolation-area), unless --resolution says otherwise."""
    from predict_helpers import conv_model, mlm_input, mlm_item, mlm_output

    model = conv_model(tmp_path / "m.onnx", np.array([[1.0], [0.0]]), np.zeros(2))
    entry = mlm_input("input", ["B04"], 1)
    entry["resize_type"] = "interpolation-area"
    outputs = [mlm_output("values", ["regression"], [-1, 2, -1, -1], ["batch", "channel", "height", "width"])]
    mlm = mlm_item(tmp_path / "model.json", model, [entry], outputs)
    data = json.loads(mlm.read_text())
    data["properties"]["eo:bands"] = [{"name": "B04", "gsd": 20}]
    data["assets"]["model"]["eo:bands"] = [{"name": "B04", "gsd": 20}]
    mlm.write_text(json.dumps(data))
    pixels = np.arange(64 * 64, dtype=np.float32).reshape(1, 64, 64)
    write_raster(tmp_path / "b04.tif", pixels)
    item = imagery_item(tmp_path / "item.json", {"b04": ("./b04.tif", ["B04"])})
    predict(str(mlm), str(item), tmp_path / "out", PredictOptions())
    with rasterio.open(next((tmp_path / "out").glob("*/*.tif"))) as dataset:
        assert dataset.res == (20.0, 20.0) and dataset.shape == (32, 32)
        expected = pixels[0].reshape(32, 2, 32, 2).mean(axis=(1, 3))
        np.testing.assert_allclose(dataset.read(1), expected, rtol=1e-6)
    predict(str(mlm), str(item), tmp_path / "out10", PredictOptions(resolution=10.0))
    with rasterio.open(next((tmp_path / "out10").glob("*/*.tif"))) as dataset:
        assert dataset.res == (10.0, 10.0)


# --- units -------------------------------------------------------------------------------------------------

def _stride(multiple: int):
    return lambda tile: tile[0] % multiple == 0 and tile[1] % multiple == 0


@pytest.mark.parametrize("multiple", [1, 2, 8, 16, 32])
def test_probe_finds_the_multiple(multiple):
    assert probe_multiple((None, None), _stride(multiple), "'x'") == multiple


def test_probe_error_names_the_input_and_the_sizes_tried():
    with pytest.raises(ModelRunError) as info:
        probe_multiple((None, None), lambda tile: False, "'image'")
    message = str(info.value)
    assert "'image'" in message and "3×3" in message and "384×384" in message and "\n" not in message


def test_tile_sizes_round_requested_and_shrink_to_small_scenes():
    sizes = tile_sizes([InputGeometry("x", (None, None), None)], 250, _stride(16))
    assert sizes == TileSizes((None, None), 16, 256)
    assert sizes.tile_for(1000, 1000) == (256, 256)
    assert sizes.tile_for(100, 257) == (112, 256)
    assert sizes.tile_for(16, 1) == (16, 16)
    fixed = tile_sizes([InputGeometry("x", (64, 64), None)], None, _stride(1))
    assert fixed.tile_for(10, 1000) == (64, 64)


def test_fixed_size_cannot_be_overridden_and_inputs_must_agree():
    with pytest.raises(InvalidArgument, match="fixed height of 64.*the tile_size argument 32"):
        tile_sizes([InputGeometry("x", (64, 64), None)], 32, _stride(1))
    with pytest.raises(ModelRefused, match="different fixed heights"):
        tile_sizes([InputGeometry("a", (64, 64), None), InputGeometry("b", (32, 32), None)], None, _stride(1))


@pytest.mark.parametrize("window", [(5, 7), (1, 9), (30, 2)])
@pytest.mark.parametrize("resize_type,mode", [(None, "reflect"), ("crop", "reflect"), ("pad", "constant")])
def test_padding_matches_numpy(window, resize_type, mode):
    rng = np.random.default_rng(0)
    array = rng.random((3, *window), dtype=np.float32)
    fit = TileFit(window, (32, 16), resize_type)
    padded = fit.to_tile(array)
    numpy_mode = "edge" if mode == "reflect" and min(window) == 1 else mode
    expected = np.pad(array, ((0, 0), (0, 32 - window[0]), (0, 16 - window[1])), mode=numpy_mode)
    np.testing.assert_array_equal(padded, expected)
    np.testing.assert_array_equal(fit.from_tile(padded), array)


def test_interpolation_resizes_to_the_tile_and_back():
    array = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)
    fit = TileFit((8, 8), (16, 16), "interpolation-nearest")
    np.testing.assert_array_equal(fit.to_tile(array), array.repeat(2, axis=1).repeat(2, axis=2))
    np.testing.assert_array_equal(fit.from_tile(fit.to_tile(array)), array)
