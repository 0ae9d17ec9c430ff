"""Benchmark `mlmkit predict`: end-to-end vs model-only throughput, and peak memory by scene size.

Generates 13-band uint16 COGs (default 2048², 4096², 8192²) and a small segmentation ONNX model, then,
each in a fresh subprocess: runs `predict` end to end (read → scale → infer → blend → COG + catalog),
and feeds the same tiles straight to onnxruntime (no I/O). Prints Mpx/s for both, their ratio
(goal ≥ 0.90 at overlap 0) and each run's peak RSS (goal: largest ≤ 1.2 × smallest).

    python bench/predict_bench.py [--sizes 2048 4096 8192] [--workdir /tmp/mlmkit-bench] [--overlap 0]
                                  [--compress ZSTD|DEFLATE|NONE] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BANDS = [f"B{i:02d}" for i in range(1, 13)] + ["B8A"]
TILE, BATCH = 256, 8


def _write_model(path: Path) -> Path:
    """Conv3×3 13→32, ReLU, Conv3×3 32→32, ReLU, Conv1×1 32→4 (~13 kMAC/px, a tiny FCN; dynamic H/W)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array((rng.normal(size=shape) * 0.1).astype(np.float32), f"w{i}")
               for i, shape in enumerate([(32, 13, 3, 3), (32, 32, 3, 3), (4, 32, 1, 1)])]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w0"], ["c0"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c0"], ["r0"]),
         helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("Conv", ["r1", "w2"], ["output"])],
        "bench-seg",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 13, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4, "H", "W"])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _write_mlm(workdir: Path) -> Path:
    from mlmkit.checksum import file_checksum

    model = _write_model(workdir / "bench-seg.onnx")
    scaling = [{"type": "z-score", "mean": 1000.0, "stddev": 500.0}]
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "bench-seg",
        "stac_extensions": ["https://stac-extensions.github.io/mlm/v1.5.2/schema.json"],
        "geometry": {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]},
        "bbox": [-180, -90, 180, 90],
        "properties": {
            "datetime": "2024-01-01T00:00:00Z", "mlm:name": "bench-seg", "mlm:architecture": "conv",
            "mlm:tasks": ["semantic-segmentation"], "mlm:framework": "onnx",
            "mlm:input": [{"name": "input", "bands": BANDS, "value_scaling": scaling,
                           "input": {"shape": [-1, 13, -1, -1], "dim_order": ["batch", "bands", "height", "width"],
                                     "data_type": "float32"}}],
            "mlm:output": [{"name": "classes", "tasks": ["semantic-segmentation"],
                            "result": {"shape": [-1, 4, -1, -1], "dim_order": ["batch", "class", "height", "width"],
                                       "data_type": "float32"},
                            "classification:classes": [{"value": v, "name": f"c{v}"} for v in range(4)]}],
        },
        "assets": {"model": {"href": "./bench-seg.onnx", "type": "application/octet-stream; framework=onnx",
                             "roles": ["mlm:model"], "mlm:artifact_type": "onnx",
                             "file:checksum": file_checksum(model)}},
        "links": [],
    }
    path = workdir / "model.json"
    path.write_text(json.dumps(item))
    return path


def _write_scene(workdir: Path, size: int, compress: str) -> Path:
    """A 13-band uint16 COG (512 px blocks) of smooth fields plus noise, written strip by strip."""
    import rasterio
    from rasterio.shutil import copy as rio_copy
    from rasterio.windows import Window

    cog = workdir / f"scene-{size}-{compress.lower()}.tif"
    if not cog.exists():
        tmp = workdir / f"scene-{size}.tmp.tif"
        profile = dict(driver="GTiff", width=size, height=size, count=13, dtype="uint16", tiled=True,
                       blockxsize=512, blockysize=512, crs="EPSG:32631", nodata=0,
                       transform=rasterio.Affine(10, 0, 500000, 0, -10, 5000000))
        rng = np.random.default_rng(size)
        xs = np.arange(size, dtype=np.float32)
        with rasterio.open(tmp, "w", **profile) as dataset:
            for top in range(0, size, 512):
                ys = np.arange(top, top + 512, dtype=np.float32)[:, None]
                base = 1000 + 400 * np.sin(xs / 97.0)[None] * np.cos(ys / 131.0)
                strip = np.stack([base * (1 + 0.05 * b) for b in range(13)])
                strip += rng.normal(0, 30, size=strip.shape)
                dataset.write(np.clip(strip, 1, 65535).astype(np.uint16), window=Window(0, top, size, 512))
        rio_copy(str(tmp), str(cog), driver="COG", COMPRESS=compress, BLOCKSIZE=512,
                 NUM_THREADS="ALL_CPUS")
        tmp.unlink()
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": cog.stem,
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
        "geometry": {"type": "Polygon", "coordinates": [[[3, 45], [3.1, 45], [3.1, 45.1], [3, 45.1], [3, 45]]]},
        "bbox": [3, 45, 3.1, 45.1], "properties": {"datetime": "2024-06-01T10:30:00Z"},
        "assets": {"bands": {"href": cog.name, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                             "roles": ["data"], "eo:bands": [{"name": name} for name in BANDS]}},
        "links": [],
    }
    path = workdir / f"{cog.stem}.json"
    path.write_text(json.dumps(item))
    return path


def _peak_rss_mib() -> float:
    """VmHWM: this process's own peak RSS (ru_maxrss would include the parent's from before exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_end_to_end(model: str, scene: str, out: str, overlap: int, threads: int | None) -> dict:
    from mlmkit.predict import PredictOptions, predict

    options = PredictOptions(tile_size=TILE, batch_size=BATCH, overlap=overlap, threads=threads, overwrite=True)
    start = time.perf_counter()
    predict(model, scene, Path(out), options)
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": _peak_rss_mib()}


def child_model_only(model: str, scene: str, threads: int | None, tiles: int) -> dict:
    """The same tiles (read and scaled beforehand) straight into onnxruntime; only inference is timed."""
    import rasterio
    from rasterio.windows import Window

    from mlmkit.mlm import read_model
    from mlmkit.predict.runtime import ModelRunner
    from mlmkit.stacio import asset_href, iter_items

    runner = ModelRunner(read_model(model).model_asset, threads=threads)
    item = next(iter_items(scene))
    with rasterio.open(asset_href(item, "bands")) as dataset:
        per_row = dataset.width // TILE
        batches = []
        for first in range(0, tiles, BATCH):
            windows = [Window((i % per_row) * TILE, (i // per_row) * TILE, TILE, TILE)
                       for i in range(first, min(first + BATCH, tiles))]
            batch = np.stack([dataset.read(window=w).astype(np.float32) for w in windows])
            batches.append((batch - 1000.0) / 500.0)
    name = runner.inputs[0].name
    runner.run({name: batches[0]})  # warm-up, as predict's dry run
    start = time.perf_counter()
    for batch in batches:
        runner.run({name: batch})
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "pixels": sum(b.shape[0] for b in batches) * TILE * TILE}


def _child(args: list[str]) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlmkit-bench"))
    parser.add_argument("--overlap", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compress", default="ZSTD", help="COG compression of the generated scenes (ZSTD, DEFLATE, NONE)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    threads = str(args.threads or 0)
    if args.child:
        kind, *rest = args.child
        if kind == "e2e":
            result = child_end_to_end(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]) or None)
        else:
            result = child_model_only(rest[0], rest[1], int(rest[2]) or None, int(rest[3]))
        print(json.dumps(result))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = _write_mlm(args.workdir)
    print(f"{'size':>6} {'Mpx':>6} {'e2e Mpx/s':>10} {'model Mpx/s':>12} {'ratio':>6} {'peak RSS MiB':>13}")
    rss = {}
    for size in args.sizes:
        scene = _write_scene(args.workdir, size, args.compress)
        e2e = _child(["e2e", str(model), str(scene), str(args.workdir / f"out-{size}"), str(args.overlap), threads])
        tiles = min((size // TILE) ** 2, 256)
        only = _child(["model", str(model), str(scene), threads, str(tiles)])
        mpx = size * size / 1e6
        e2e_rate, model_rate = mpx / e2e["seconds"], only["pixels"] / 1e6 / only["seconds"]
        rss[size] = e2e["peak_rss_mib"]
        print(f"{size:>6} {mpx:>6.1f} {e2e_rate:>10.2f} {model_rate:>12.2f} {e2e_rate / model_rate:>6.2f} "
              f"{rss[size]:>13.0f}", flush=True)
    smallest, largest = min(rss), max(rss)
    print(f"peak RSS {largest}² / {smallest}²: {rss[largest] / rss[smallest]:.2f} (goal ≤ 1.2); "
          f"overlap {args.overlap}, tile {TILE}, batch {BATCH}, {args.compress} COGs")


if __name__ == "__main__":
    main()
