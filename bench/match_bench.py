"""`mlmkit.match` over 50 models × 200 Items (10 000 pairs), metadata only; goal: under 10 s on 2 cores.

Models: MLM Items of 4 to 13 Sentinel-2 bands (name, common name, centre wavelength), L1C or L2A, 10/20/60 m,
global or regional geometry. Items: Sentinel-2 L1C/L2A scenes of 13 single-band assets (eo:bands, raster:bands,
proj:*) over a grid of places and dates. Two sides, alternated round by round: Items naming their bands as the
models do (the first step binds), and Items knowing them only by centre wavelength (every binding goes through
the last steps: the slow path). Each side runs in a fresh child process; the Items and models are built there
before the clock starts (reading JSON is not what is measured).

    python bench/match_bench.py [--rounds 3] [--models 50] [--items 200]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import MLM_SCHEMA, S2_BANDS, S2_GSD, WORLD, alternate, bench_parser, child, load, median  # noqa: E402

WAVELENGTHS = {"B01": ("coastal", 0.443), "B02": ("blue", 0.49), "B03": ("green", 0.56), "B04": ("red", 0.665),
               "B05": ("rededge", 0.705), "B06": ("rededge", 0.74), "B07": ("rededge", 0.783), "B08": ("nir", 0.842),
               "B8A": ("nir08", 0.865), "B09": ("nir09", 0.945), "B10": ("cirrus", 1.375),
               "B11": ("swir16", 1.61), "B12": ("swir22", 2.19)}


def _model(index: int, rng: random.Random):
    import pystac

    bands = sorted(rng.sample(S2_BANDS, rng.randint(4, 13)), key=S2_BANDS.index)
    west, south = rng.uniform(-170, 150), rng.uniform(-60, 40)
    regional = {"type": "Polygon", "coordinates": [[[west, south], [west + 20, south], [west + 20, south + 20],
                                                    [west, south + 20], [west, south]]]}
    geometry = WORLD if index % 3 else regional
    objects = [{"name": b, "common_name": WAVELENGTHS[b][0], "center_wavelength": WAVELENGTHS[b][1]} for b in bands]
    data = {"type": "Feature", "stac_version": "1.0.0", "stac_extensions": [MLM_SCHEMA], "id": f"model-{index}",
            "geometry": geometry, "properties": {
                "datetime": None, "start_datetime": "2016-01-01T00:00:00Z", "end_datetime": "2024-12-31T00:00:00Z",
                "mlm:name": f"m{index}", "mlm:architecture": "unet", "mlm:tasks": ["semantic-segmentation"],
                "processing:level": rng.choice(["L1C", "L2A"]), "gsd": rng.choice([10, 20, 60]),
                "mlm:input": [{"name": "x", "bands": bands, "input": {
                    "shape": [-1, len(bands), 256, 256], "dim_order": ["batch", "bands", "height", "width"],
                    "data_type": "float32"}, "value_scaling": [{"type": "scale", "value": 10000}]}],
                "mlm:output": [{"name": "y", "tasks": ["semantic-segmentation"], "result": {
                    "shape": [-1, 3, 256, 256], "dim_order": ["batch", "class", "height", "width"],
                    "data_type": "float32"}}]},
            "assets": {"model": {"href": "https://models.example.org/m.onnx", "roles": ["mlm:model"],
                                 "mlm:artifact_type": "onnx", "eo:bands": objects}}, "links": []}
    data["bbox"] = [-180, -90, 180, 90] if geometry is WORLD else [west, south, west + 20, south + 20]
    return pystac.Item.from_dict(data, migrate=False)


def _scene(index: int, rng: random.Random, wavelengths_only: bool):
    import pystac

    west, south = rng.uniform(-170, 160), rng.uniform(-60, 60)
    assets = {}
    for band in S2_BANDS:
        common, centre = WAVELENGTHS[band]
        key = f"band-{band[1:]}" if wavelengths_only else band
        described = {"name": key, "center_wavelength": centre} if wavelengths_only else \
            {"name": band, "common_name": common, "center_wavelength": centre}
        size = 10980 * 10 // S2_GSD[band]
        assets[key] = {"href": f"https://data.example.org/{index}/{band}.tif", "type": "image/tiff; application=geotiff",
                       "roles": ["data"], "eo:bands": [described], "gsd": S2_GSD[band],
                       "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001}],
                       "proj:code": "EPSG:32618", "proj:shape": [size, size],
                       "proj:transform": [S2_GSD[band], 0, 399960, 0, -S2_GSD[band], 4200000]}
    ring = [[west, south], [west + 1, south], [west + 1, south + 1], [west, south + 1], [west, south]]
    data = {"type": "Feature", "stac_version": "1.0.0", "stac_extensions": [], "id": f"scene-{index}",
            "geometry": {"type": "Polygon", "coordinates": [ring]}, "bbox": [west, south, west + 1, south + 1],
            "properties": {"datetime": f"20{17 + index % 8}-0{1 + index % 9}-15T10:30:00Z",
                           "processing:level": rng.choice(["L1C", "L2A"])}, "assets": assets, "links": []}
    return pystac.Item.from_dict(data, migrate=False)


def run_child(side: str, models: int, items: int) -> dict:
    from common import timed

    from mlmkit.matching import match
    from mlmkit.mlm.spec import spec_from_item

    rng = random.Random(0)
    specs = [spec_from_item(_model(i, rng)) for i in range(models)]
    scenes = [_scene(i, rng, side == "wavelengths") for i in range(items)]
    found: dict[str, list] = {}
    result = timed(lambda: found.setdefault("pairs", match(specs, scenes)))
    return {**result, "pairs": len(found["pairs"]), "runnable": sum(pair.runnable for pair in found["pairs"])}


def main() -> None:
    parser = bench_parser(__doc__, "/tmp/mlmkit-bench-match", 3)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--items", type=int, default=200)
    args = parser.parse_args()
    if args.child:
        import json

        print(json.dumps(run_child(args.child[0], int(args.child[1]), int(args.child[2]))))
        return
    sides = {side: (lambda side=side: child(__file__, [side, args.models, args.items]))
             for side in ("names", "wavelengths")}
    results: dict[str, list[dict]] = {side: [] for side in sides}
    for round_index, measured in alternate(sides, args.rounds):
        for side, result in measured.items():
            results[side].append(result)
            print(f"round {round_index} {side}: {result['pairs']} pairs ({result['runnable']} runnable) in "
                  f"{result['seconds']:.2f} s, {result['cpu_seconds']:.2f} CPU s, load {load()}", flush=True)
    for side, runs in results.items():
        seconds = median([run["seconds"] for run in runs])
        print(f"{side}: median {seconds:.2f} s for {runs[0]['pairs']} pairs ({runs[0]['pairs'] / seconds:.0f} pairs/s), "
              f"CPU {median([run['cpu_seconds'] for run in runs]):.2f} s")


if __name__ == "__main__":
    main()
