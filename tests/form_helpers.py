"""The describe form served as `python -m mlmkit.web` serves it (uvicorn, loopback, free port), and the form's
fields for a 4-band Sentinel-2 segmenter as a browser would send them."""

from __future__ import annotations

import contextlib
import html
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from http_helpers import loopback_process

S2_BANDS = [("B02", "blue"), ("B03", "green"), ("B04", "red"), ("B08", "nir")]
# green - nir (an NDWI numerator) on reflectance: water where it is above -0.05
WEIGHTS = np.array([[0, 10, 0, -10], [0, -10, 0, 10]], np.float32)
BIAS = np.array([0.5, -0.5], np.float32)


@contextlib.contextmanager
def form_server(tmp: Path, **env: str) -> Iterator[str]:
    """The form alone on a free loopback port, its temporary files under `tmp` (so a test sees what stays);
    yields the /describe URL."""
    tmp.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(tmp))
        for key, value in env.items():
            patch.setenv(key, value)
        server = loopback_process(lambda port: [sys.executable, "-m", "mlmkit.web", "--port", str(port)],
                                  "describe form")
        base = server.__enter__()
    try:
        yield f"{base}/describe"
    finally:
        server.__exit__(None, None, None)


def s2_image(path: Path, source_dir: Path, window) -> np.ndarray:
    """Real Sentinel-2 pixels (B02, B03, B04, B08 of `source_dir`'s s2_<band>.jp2, uint16) in `window`, written as
    one tiled 4-band GeoTIFF on their own grid at `path`; returns them (bands, h, w)."""
    import rasterio

    bands = []
    for name, _ in S2_BANDS:
        with rasterio.open(source_dir / f"s2_{name}.jp2") as source:
            bands.append(source.read(1, window=window))
            transform, crs = source.window_transform(window), source.crs
    image = np.stack(bands)
    with rasterio.open(path, "w", driver="GTiff", width=image.shape[2], height=image.shape[1], count=len(bands),
                       dtype=image.dtype.name, crs=crs, transform=transform, tiled=True) as out:
        out.write(image)
    return image


def water_model(path: Path) -> Path:
    """A 1x1 conv + softmax over 4 bands (B02, B03, B04, B08) with a bias, so the input's scaling decides."""
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["scores"], axis=1)]
    graph = helper.make_graph(
        nodes, "water",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 4, "height", "width"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 2, "height", "width"])],
        initializer=[numpy_helper.from_array(WEIGHTS.reshape(2, 4, 1, 1), "w"), numpy_helper.from_array(BIAS, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def water_fields(scale: str = "10000") -> dict[str, object]:
    """The form's fields for `water_model` on uint16 Sentinel-2 L1C digital numbers."""
    fields: dict[str, object] = {"name": "Water segmenter", "architecture": "1x1 convolution",
                                 "tasks": ["semantic-segmentation"], "license": "Apache-2.0",
                                 "scaling-0-type": "scale", "scaling-0-value": scale,
                                 "class-0-value": "0", "class-0-name": "water", "class-0-color_hint": "0000FF",
                                 "class-1-value": "1", "class-1-name": "land"}
    for index, (name, common) in enumerate(S2_BANDS):
        fields.update({f"band-{index}-name": name, f"band-{index}-common_name": common,
                       f"band-{index}-data_type": "uint16"})
    return fields


def water_spec(scale: float = 10000) -> dict:
    """The same metadata as a describe spec (what `mlmkit describe --spec` reads)."""
    return {"name": "Water segmenter", "architecture": "1x1 convolution", "tasks": ["semantic-segmentation"],
            "license": "Apache-2.0", "value_scaling": [{"type": "scale", "value": scale}],
            "classes": [{"value": 0, "name": "water", "color_hint": "0000FF"}, {"value": 1, "name": "land"}],
            "bands": [{"name": name, "common_name": common, "data_type": "uint16"} for name, common in S2_BANDS]}


def hidden_model_info(page: str) -> str:
    """The page's description of the model read (its hidden field), as the browser sends it back."""
    match = re.search(r'name="model_info" value="([^"]*)"', page)
    assert match, "the page holds no model description"
    return html.unescape(match.group(1))


def messages_of(page: str, field: str) -> list[str]:
    """The messages the server-rendered page shows beside `field` (its <div id="FIELD-msg">)."""
    match = re.search(rf'<div class="msg" id="{re.escape(field)}-msg"[^>]*>(.*?)</div>', page, re.S)
    assert match, f"the page has no message box for {field}"
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).split())
            for text in re.findall(r"<p[^>]*>(.*?)</p>", match.group(1), re.S)]
