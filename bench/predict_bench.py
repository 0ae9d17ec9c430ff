"""Light-model benchmark of `mlmkit predict`: end-to-end vs model-only throughput and peak memory by scene size.

Generates 13-band uint16 COGs (default 2048² and 4096²) and a small segmentation ONNX model (≈13 kMAC/px),
then, for each size and round, alternately in fresh child processes: `predict` end to end (read → scale →
infer → blend → COG + quicklook + catalog) and the same tiles, read and scaled beforehand, fed straight to
onnxruntime (model only). Prints per round Mpx/s of both, their ratio (goal ≥ 0.85, 0.90), the ratio of
CPU seconds per Mpx (model-only / end-to-end: what the wall ratio tends to on a quiet machine the run keeps
busy, and robust to load from other processes) and the load; then the medians and peak RSS (goal: largest
≤ 1.2 × smallest).

With `--compare SRC` (another checkout's `src`, e.g. `git archive <commit> src | tar -x -C /tmp/base`), a third
side runs `predict` end to end from that code, alternated with the others: before/after in one run.

    python bench/predict_bench.py [--sizes 2048 4096] [--rounds 3] [--workdir /tmp/mlmkit-bench]
                                  [--overlap 0] [--compress ZSTD|DEFLATE|NONE] [--threads N] [--batch 4]
                                  [--compare SRC]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import S2_BANDS, alternate, child, cpu_seconds, median, run_predict, write_cog, write_conv_model, write_item, write_mlm_item  # noqa: E402

TILE = 256
SCALING = [{"type": "z-score", "mean": 1000.0, "stddev": 500.0}]


def end_to_end(model: str, scene: str, out: str, overlap: int, threads: int, batch: int) -> dict:
    return run_predict(model, scene, out, tile_size=TILE, batch_size=batch, overlap=overlap, threads=threads or None)


def model_only(model: str, scene: str, threads: int, batch: int, tiles: int) -> dict:
    """The same tiles (read and scaled beforehand) straight into onnxruntime; only inference is timed."""
    import rasterio
    from rasterio.windows import Window

    from mlmkit.mlm.spec import read_model
    from mlmkit.inference.runtime import RuntimeOptions, open_runtime
    from mlmkit.stac.read import asset_href, iter_items

    runner = open_runtime(read_model(model), RuntimeOptions(threads=threads or None))
    item = next(iter_items(scene))
    with rasterio.open(asset_href(item, "bands")) as dataset:
        per_row = dataset.width // TILE
        batches = []
        for first in range(0, tiles, batch):
            windows = [Window((i % per_row) * TILE, (i // per_row) * TILE, TILE, TILE)
                       for i in range(first, min(first + batch, tiles))]
            stack = np.stack([dataset.read(window=w).astype(np.float32) for w in windows])
            batches.append((stack - 1000.0) / 500.0)
    name = runner.inputs[0].name
    runner.run({name: batches[0]})  # warm-up, as predict's dry run
    cpu, start = cpu_seconds(), time.perf_counter()
    for feed in batches:
        runner.run({name: feed})
    return {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu,
            "pixels": sum(b.shape[0] for b in batches) * TILE * TILE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlmkit-bench"))
    parser.add_argument("--overlap", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--compress", default="ZSTD", help="COG compression of the generated scenes (ZSTD, DEFLATE, NONE)")
    parser.add_argument("--compare", type=Path, help="another checkout's src directory to run end to end as well")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "e2e":
            result = end_to_end(rest[0], rest[1], rest[2], *map(int, rest[3:]))
        else:
            result = model_only(rest[0], rest[1], *map(int, rest[2:]))
        print(json.dumps(result))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = write_mlm_item(args.workdir / "model.json", write_conv_model(args.workdir / "bench-seg.onnx", 13, 4),
                           S2_BANDS, SCALING, 4)
    print(f"{'size':>6} {'round':>5} {'e2e Mpx/s':>10} {'model Mpx/s':>12} {'ratio':>6} {'cpu ratio':>9} "
          f"{'peak RSS MiB':>13} {'load':>5}")
    rss, summary = {}, []
    for size in args.sizes:
        cog = write_cog(args.workdir / f"scene-{size}-{args.compress.lower()}.tif", size, size, 13, 10.0,
                        args.compress, seed=size)
        scene = write_item(args.workdir / f"scene-{size}-{args.compress.lower()}.json", {"bands": (cog, S2_BANDS)})
        tiles = min((size // TILE) ** 2, 256)
        mpx = size * size / 1e6
        sides = {
            "e2e": lambda: child(__file__, ["e2e", model, scene, args.workdir / f"out-{size}", args.overlap,
                                            args.threads, args.batch]),
            "model": lambda: child(__file__, ["model", model, scene, args.threads, args.batch, tiles]),
        }
        if args.compare:
            sides["base"] = lambda: child(__file__, ["e2e", model, scene, args.workdir / f"out-base-{size}",
                                                     args.overlap, args.threads, args.batch],
                                          env={"PYTHONPATH": str(args.compare.resolve())})
        ratios, cpu_ratios, rates, base_rates = [], [], [], []
        for index, result in alternate(sides, args.rounds):
            e2e, only = result["e2e"], result["model"]
            e2e_rate, model_rate = mpx / e2e["seconds"], only["pixels"] / 1e6 / only["seconds"]
            ratios.append(e2e_rate / model_rate)
            cpu_ratios.append((only["cpu_seconds"] / only["pixels"] * 1e6) / (e2e["cpu_seconds"] / mpx))
            rates.append((e2e_rate, model_rate))
            rss[size] = max(rss.get(size, 0), e2e["peak_rss_mib"])
            print(f"{size:>6} {index:>5} {e2e_rate:>10.2f} {model_rate:>12.2f} {ratios[-1]:>6.2f} {cpu_ratios[-1]:>9.2f} "
                  f"{e2e['peak_rss_mib']:>13.0f} {e2e['load']:>5}", flush=True)
            if "base" in result:
                base = result["base"]
                base_rates.append((mpx / base["seconds"]) / e2e_rate)
                print(f"{'':>6} {'':>5} base: {mpx / base['seconds']:.2f} Mpx/s, {base['cpu_seconds']:.1f} cpu s "
                      f"(this tree {e2e['cpu_seconds']:.1f}), peak RSS {base['peak_rss_mib']:.0f} MiB", flush=True)
        summary.append(f"{size}²: median e2e {median([r[0] for r in rates]):.2f} Mpx/s, model-only "
                       f"{median([r[1] for r in rates]):.2f} Mpx/s, ratio {median(ratios):.2f}, cpu ratio "
                       f"{median(cpu_ratios):.2f}, peak RSS {rss[size]:.0f} MiB"
                       + (f"; this tree {1 / median(base_rates):.2f}× the base's speed" if base_rates else ""))
    print("\n".join(summary))
    smallest, largest = min(rss), max(rss)
    print(f"peak RSS {largest}² / {smallest}²: {rss[largest] / rss[smallest]:.2f} (goal ≤ 1.2); overlap "
          f"{args.overlap}, tile {TILE}, batch {args.batch}, {args.compress} COGs")


if __name__ == "__main__":
    main()
