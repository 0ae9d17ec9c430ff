"""A full Sentinel-2 tile: 10980² px, 13 bands at their native 10/20/60 m, one COG per band, 10-class model.

Generates the bands as the real L1C product lays them out (one file per band: B02/B03/B04/B08 at 10 m
10980², B05/B06/B07/B8A/B11/B12 at 20 m 5490², B01/B09/B10 at 60 m 1830²; uint16, ZSTD COGs, 512 px
blocks) under --workdir (never in git; ~1 GB), and the same layout cut to 2048² at 10 m. Runs `predict`
with a light 10-class model (13 → 32 → 32 → 10 convolutions) end to end on both, alternately, each in a
fresh process: 20 m and 60 m bands are resampled window by window onto the 10 m grid. Prints wall time,
Mpx/s, CPU seconds, peak RSS (goal < 1.0 GiB) and the flatness 10980² / 2048² (goal ≤ 1.2), with the load.

    python bench/s2tile_bench.py [--sizes 2048 10980] [--rounds 1] [--workdir /tmp/mlmkit-bench-s2]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import S2_BANDS, bench_parser, S2_GSD, alternate, child, load, median, run_predict, write_cog, write_conv_model, write_item, write_mlm_item  # noqa: E402

CLASSES = 10
SCALING = [{"type": "z-score", "mean": 1000.0, "stddev": 500.0}]


def scene(workdir: Path, size: int) -> Path:
    """An Item of 13 single-band COGs covering size × size 10 m pixels."""
    folder = workdir / f"tile-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    assets = {}
    for index, band in enumerate(S2_BANDS):
        gsd = S2_GSD[band]
        side = math.ceil(size * 10 / gsd)
        assets[band] = (write_cog(folder / f"{band}.tif", side, side, 1, float(gsd), seed=index), [band])
    return write_item(folder / "item.json", assets, f"S2-tile-{size}")


def main() -> None:
    parser = bench_parser(__doc__, "/tmp/mlmkit-bench-s2", rounds=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 10980])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_predict(*args.child[1:])))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = write_mlm_item(args.workdir / "model.json", write_conv_model(args.workdir / "s2-10class.onnx", 13, CLASSES),
                           S2_BANDS, SCALING, CLASSES)
    items = {size: scene(args.workdir, size) for size in args.sizes}
    sides = {size: (lambda size=size: child(__file__, ["e2e", model, items[size], args.workdir / f"out-{size}"]))
             for size in args.sizes}
    print(f"{'size':>6} {'round':>5} {'wall s':>8} {'Mpx/s':>7} {'cpu s':>8} {'peak RSS MiB':>13} {'load':>5}")
    rss: dict[int, list[float]] = {size: [] for size in args.sizes}
    for index, result in alternate(sides, args.rounds):
        for size, figures in result.items():
            rss[size].append(figures["peak_rss_mib"])
            print(f"{size:>6} {index:>5} {figures['seconds']:>8.1f} {size * size / 1e6 / figures['seconds']:>7.2f} "
                  f"{figures['cpu_seconds']:>8.1f} {figures['peak_rss_mib']:>13.0f} {figures['load']:>5}", flush=True)
    smallest, largest = min(args.sizes), max(args.sizes)
    print(f"peak RSS {largest}²: {median(rss[largest]):.0f} MiB (goal < 1024); {largest}² / {smallest}²: "
          f"{median(rss[largest]) / median(rss[smallest]):.2f} (goal ≤ 1.2); load {load()}")


if __name__ == "__main__":
    main()
