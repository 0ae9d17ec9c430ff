"""What the benchmark scripts share: child processes, peak memory, machine load, models, scenes and Items.

Every benchmark runs each measured side in a fresh child process (so peak RSS is that side's own) and
alternates the sides round by round, so that load from other processes hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
S2_GSD = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10, "B8A": 20,
          "B09": 60, "B10": 60, "B11": 20, "B12": 20}
MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.5.2/schema.json"
WORLD = {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]}


def bench_parser(doc: str, workdir: str, rounds: int) -> argparse.ArgumentParser:
    """The options every benchmark has: --rounds, --workdir, and the hidden --child of its child processes."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--workdir", type=Path, default=Path(workdir))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    return parser


def peak_rss_mib() -> float:
    """VmHWM: this process's own peak RSS (ru_maxrss would include the parent's from before exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def load() -> str:
    """The 1-minute load average, recorded with every figure (the machine is shared)."""
    return f"{os.getloadavg()[0]:.1f}"


def child(script: str, args: Sequence[str], env: dict | None = None, python: str = sys.executable) -> dict:
    """Run `script --child ARGS` in a fresh interpreter (`python`); its last stdout line is a JSON result."""
    result = subprocess.run([python, script, "--child", *map(str, args)], check=False, capture_output=True,
                            text=True, env={**os.environ, **(env or {})})
    if result.returncode:
        raise SystemExit(f"child {' '.join(map(str, args))} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads: what a side costs whatever the load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(function: Callable[[], object]) -> dict:
    """Wall seconds, CPU seconds and peak RSS of a call in this (child) process."""
    cpu, start = cpu_seconds(), time.perf_counter()
    function()
    return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu, "peak_rss_mib": peak_rss_mib()}


def run_predict(model: str, inputs: str, out: str, **options) -> dict:
    """`predict` end to end in this (child) process, timed; `options` are PredictOptions fields."""
    from mlmkit.inference import PredictOptions, predict

    return timed(lambda: predict(model, inputs, Path(out), PredictOptions(overwrite=True, **options)))


def alternate(sides: dict[str, Callable[[], dict]], rounds: int) -> Iterator[tuple[int, dict[str, dict]]]:
    """Run every side once per round, in turn (the first side alternating), yielding each round's results."""
    names = list(sides)
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        results = {}
        for name in order:
            results[name] = {**sides[name](), "load": load()}
        yield index, results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def write_conv_model(path: Path, bands: int, classes: int, width: int = 32) -> Path:
    """Conv3×3 bands→width, ReLU, Conv3×3 width→width, ReLU, Conv1×1 width→classes (a tiny FCN; dynamic N/H/W)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    shapes = [(width, bands, 3, 3), (width, width, 3, 3), (classes, width, 1, 1)]
    weights = [numpy_helper.from_array((rng.normal(size=shape) * 0.1).astype(np.float32), f"w{i}")
               for i, shape in enumerate(shapes)]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w0"], ["c0"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c0"], ["r0"]),
         helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"]),
         helper.make_node("Conv", ["r1", "w2"], ["output"])],
        "bench-seg",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", bands, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", classes, "H", "W"])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def write_mlm_item(path: Path, model: Path, bands: list[str], scaling: list[dict], classes: int,
                   tile: int | None = None) -> Path:
    """An MLM Item for a segmentation ONNX model (N, bands, H, W) → (N, classes, H, W) logits."""
    from mlmkit.stac.checksum import file_checksum

    side = tile or -1
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": model.stem, "stac_extensions": [MLM_SCHEMA],
        "geometry": WORLD, "bbox": [-180, -90, 180, 90],
        "properties": {
            "datetime": "2024-01-01T00:00:00Z", "mlm:name": model.stem, "mlm:architecture": "conv",
            "mlm:tasks": ["semantic-segmentation"], "mlm:framework": "onnx",
            "mlm:input": [{"name": "input", "bands": bands, "value_scaling": scaling,
                           "input": {"shape": [-1, len(bands), side, side],
                                     "dim_order": ["batch", "bands", "height", "width"], "data_type": "float32"}}],
            "mlm:output": [{"name": "classes", "tasks": ["semantic-segmentation"],
                            "result": {"shape": [-1, classes, side, side],
                                       "dim_order": ["batch", "class", "height", "width"], "data_type": "float32"},
                            "classification:classes": [{"value": v, "name": f"c{v}", "description": f"class {v}"}
                                                       for v in range(classes)]}],
        },
        "assets": {"model": {"href": str(model.resolve()), "type": "application/octet-stream; framework=onnx",
                             "roles": ["mlm:model"], "mlm:artifact_type": "onnx",
                             "file:checksum": file_checksum(model)}},
        "links": [],
    }
    path.write_text(json.dumps(item))
    return path


def write_cog(path: Path, width: int, height: int, count: int, resolution: float, compress: str = "ZSTD",
              seed: int = 0) -> Path:
    """A uint16 COG (512 px blocks) of smooth fields plus noise, generated strip by strip (never whole)."""
    import rasterio
    from rasterio.shutil import copy as rio_copy
    from rasterio.windows import Window

    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.tif")
    profile = dict(driver="GTiff", width=width, height=height, count=count, dtype="uint16", tiled=True,
                   blockxsize=512, blockysize=512, crs="EPSG:32631", nodata=0,
                   transform=rasterio.Affine(resolution, 0, 500000, 0, -resolution, 5000000))
    rng = np.random.default_rng(seed)
    xs = np.arange(width, dtype=np.float32) * resolution / 10
    with rasterio.open(tmp, "w", **profile) as dataset:
        for top in range(0, height, 512):
            rows = min(512, height - top)
            ys = (np.arange(top, top + rows, dtype=np.float32) * resolution / 10)[:, None]
            base = 1000 + 400 * np.sin(xs / 97.0)[None] * np.cos(ys / 131.0)
            strip = np.stack([base * (1 + 0.05 * (b + seed)) for b in range(count)])
            strip += rng.normal(0, 30, size=strip.shape).astype(np.float32)
            dataset.write(np.clip(strip, 1, 65535).astype(np.uint16), window=Window(0, top, width, rows))
    rio_copy(str(tmp), str(path), driver="COG", COMPRESS=compress, BLOCKSIZE=512, NUM_THREADS="ALL_CPUS")
    tmp.unlink()
    return path


def write_item(path: Path, assets: dict[str, tuple[Path, list[str]]], item_id: str | None = None) -> Path:
    """A STAC Item with one raster asset per file; each asset lists its bands by name in eo:bands."""
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id or path.stem,
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
        "geometry": {"type": "Polygon", "coordinates": [[[3, 45], [3.1, 45], [3.1, 45.1], [3, 45.1], [3, 45]]]},
        "bbox": [3, 45, 3.1, 45.1], "properties": {"datetime": "2024-06-01T10:30:00Z"},
        "assets": {key: {"href": str(file.resolve()), "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                         "roles": ["data"], "eo:bands": [{"name": name} for name in names]}
                   for key, (file, names) in assets.items()},
        "links": [],
    }
    path.write_text(json.dumps(item))
    return path
