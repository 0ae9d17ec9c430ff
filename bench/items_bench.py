"""Many items: a catalog of 8 small Items against one Item of the same total pixels.

Generates 8 13-band uint16 ZSTD COGs of S × S px (default 1024) and one of S × 8S px (same pixels, same
tile count), the light segmentation model of predict_bench.py, then runs `predict` on the 8-Item catalog and
on the single Item, alternately, each in a fresh process. Prints both throughputs and their ratio
(goal ≥ 0.9: per-Item costs — opening files, the dry run, COG and quicklook, the pipeline draining at each
Item boundary — must not dominate), with the load.

    python bench/items_bench.py [--size 1024] [--items 8] [--rounds 3] [--workdir /tmp/mlmkit-bench-items]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import S2_BANDS, bench_parser, alternate, child, load, median, run_predict, write_cog, write_conv_model, write_item, write_mlm_item  # noqa: E402

SCALING = [{"type": "z-score", "mean": 1000.0, "stddev": 500.0}]


def catalog(workdir: Path, size: int, count: int) -> Path:
    """A STAC catalog of `count` Items, each one size × size COG."""
    folder = workdir / f"catalog-{count}x{size}"
    folder.mkdir(parents=True, exist_ok=True)
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    for index in range(count):
        cog = write_cog(folder / f"scene-{index}.tif", size, size, 13, 10.0, seed=index)
        item = write_item(folder / f"item-{index}.json", {"bands": (cog, S2_BANDS)}, f"scene-{index}")
        links.append({"rel": "item", "href": f"./{item.name}", "type": "application/geo+json"})
    path = folder / "catalog.json"
    path.write_text(json.dumps({"type": "Catalog", "stac_version": "1.0.0", "id": f"bench-{count}-items",
                                "description": "benchmark Items", "links": links}))
    return path


def main() -> None:
    parser = bench_parser(__doc__, "/tmp/mlmkit-bench-items", rounds=3)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--items", type=int, default=8)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_predict(*args.child[1:])))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = write_mlm_item(args.workdir / "model.json", write_conv_model(args.workdir / "bench-seg.onnx", 13, 4),
                           S2_BANDS, SCALING, 4)
    many = catalog(args.workdir, args.size, args.items)
    wide = write_cog(args.workdir / f"wide-{args.size}x{args.size * args.items}.tif", args.size * args.items,
                     args.size, 13, 10.0)
    one = write_item(args.workdir / "wide.json", {"bands": (wide, S2_BANDS)}, "wide")
    sides = {"items": lambda: child(__file__, ["e2e", model, many, args.workdir / "out-items"]),
             "one": lambda: child(__file__, ["e2e", model, one, args.workdir / "out-one"])}
    mpx = args.items * args.size * args.size / 1e6
    print(f"{'round':>5} {f'{args.items} items Mpx/s':>16} {'one item Mpx/s':>15} {'ratio':>6} {'cpu ratio':>9} "
          f"{'load':>5}")
    ratios, cpu_ratios = [], []
    for index, result in alternate(sides, args.rounds):
        several, single = result["items"], result["one"]
        ratios.append(single["seconds"] / several["seconds"])
        cpu_ratios.append(single["cpu_seconds"] / several["cpu_seconds"])
        print(f"{index:>5} {mpx / several['seconds']:>16.2f} {mpx / single['seconds']:>15.2f} {ratios[-1]:>6.2f} "
              f"{cpu_ratios[-1]:>9.2f} {several['load']:>5}", flush=True)
    print(f"median ratio {median(ratios):.2f} (goal ≥ 0.9), CPU ratio {median(cpu_ratios):.2f}; {args.items} × "
          f"{args.size}² vs {args.size}×{args.size * args.items}, load {load()}")


if __name__ == "__main__":
    main()
