"""Memory over repeated library `predict` calls in one process: it must stay flat (nothing kept per call).

A long-lived process (a notebook, a service, a worker looping over scenes) calls
`mlmkit.inference.predict` again and again. This writes a small scene (3 bands, 512², uint16) and a
1×1-convolution segmentation model with its MLM Item, calls `predict` N times (each into a fresh output
directory, removed afterwards) and prints the resident set size after call 1, after a warm-up of 10 calls
and at the end, with the ratio end / warm (goal: ≤ 1.05; a leak of a tile per call would show here).

    python bench/predict_memory.py [--calls 100] [--size 512] [--workdir /tmp/mlmkit-memory]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

WARM = 10


def _rss_mib() -> float:
    """Resident set size now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _inputs(workdir: Path, size: int) -> tuple[Path, Path]:
    import onnx
    import rasterio
    from affine import Affine
    from onnx import TensorProto, helper, numpy_helper

    from mlmkit.stac.checksum import file_checksum

    workdir.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).integers(1, 5000, (3, size, size)).astype("uint16")
    with rasterio.open(workdir / "scene.tif", "w", driver="GTiff", width=size, height=size, count=3, dtype="uint16",
                       crs="EPSG:32631", transform=Affine(10, 0, 500000, 0, -10, 5000000), tiled=True) as dst:
        dst.write(data)
    bands = ["B04", "B03", "B02"]
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "scene", "bbox": [3, 45, 3.1, 45.1],
            "geometry": {"type": "Polygon", "coordinates": [[[3, 45], [3.1, 45], [3.1, 45.1], [3, 45.1], [3, 45]]]},
            "properties": {"datetime": "2024-06-01T10:30:00Z"}, "links": [],
            "assets": {"img": {"href": "./scene.tif", "type": "image/tiff; application=geotiff", "roles": ["data"],
                               "eo:bands": [{"name": name} for name in bands]}}}
    (workdir / "scene.json").write_text(json.dumps(item))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["output"])], "conv1x1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2, "H", "W"])],
        [numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(workdir / "model.onnx"))
    tensor = {"dim_order": ["batch", "bands", "height", "width"], "data_type": "float32"}
    mlm = {"type": "Feature", "stac_version": "1.0.0", "id": "memory-model", "bbox": [-180, -90, 180, 90],
           "stac_extensions": ["https://stac-extensions.github.io/mlm/v1.5.2/schema.json"],
           "geometry": {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90],
                                                            [-180, -90]]]},
           "properties": {"datetime": "2024-01-01T00:00:00Z", "mlm:name": "memory", "mlm:architecture": "conv",
                          "mlm:tasks": ["semantic-segmentation"], "mlm:framework": "ONNX",
                          "mlm:input": [{"name": "input", "bands": bands,
                                         "input": {**tensor, "shape": [-1, 3, -1, -1]},
                                         "value_scaling": [{"type": "z-score", "mean": 2500, "stddev": 1000}]}],
                          "mlm:output": [{"name": "out", "tasks": ["semantic-segmentation"],
                                          "result": {"shape": [-1, 2, -1, -1],
                                                     "dim_order": ["batch", "class", "height", "width"],
                                                     "data_type": "float32"}}]},
           "assets": {"model": {"href": "./model.onnx", "roles": ["mlm:model"], "mlm:artifact_type": "onnx",
                                "file:checksum": file_checksum(workdir / "model.onnx")}}, "links": []}
    (workdir / "model.json").write_text(json.dumps(mlm))
    return workdir / "model.json", workdir / "scene.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlmkit-memory"))
    args = parser.parse_args()
    from mlmkit.inference import PredictOptions, predict

    model, scene = _inputs(args.workdir, args.size)
    figures = {}
    for call in range(1, args.calls + 1):
        out = args.workdir / "out"
        predict(str(model), str(scene), out, PredictOptions(tile_size=128, threads=1))
        shutil.rmtree(out)
        if call in (1, WARM, args.calls) or call % 25 == 0:
            figures[call] = _rss_mib()
            print(f"after call {call:4d}: RSS {figures[call]:7.1f} MiB", flush=True)
    ratio = figures[args.calls] / figures[min(WARM, args.calls)]
    print(f"RSS after {args.calls} calls / after {WARM}: {ratio:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
