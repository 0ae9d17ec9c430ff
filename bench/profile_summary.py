"""Summarise a py-spy raw profile (`py-spy record -f raw --threads`): samples per pipeline stage.

Each sample is charged to the first stage (in the order below) whose function appears on its stack, so
the figures add up to the busy samples of all threads.

    python bench/profile_summary.py prof.txt
"""

from __future__ import annotations

import sys
from collections import Counter

STAGES = [  # (stage, substring of a frame "function (file:line)")
    ("onnxruntime run", "run (onnxruntime"),
    ("read: GDAL decode/warp", "read (mlmkit/inference/reader.py"),
    ("pre-process (scale, cast, stack)", "build (mlmkit/inference/preprocess.py"),
    ("fit tile", "to_tile (mlmkit/inference/geometry.py"),
    ("argmax/finalize", "finalize (mlmkit/inference/outputs/raster.py"),
    ("strip blend/flush", "mlmkit/inference/tiler.py"),
    ("strip write", "write (mlmkit/inference/outputs/raster.py"),
    ("COG copy", "to_cog (mlmkit/inference/outputs/raster.py"),
    ("quicklook", "quicklook (mlmkit/inference/outputs/raster.py"),
    ("session load/probe", "__init__ (mlmkit/inference/runtime.py"),
    ("dry runs", "_dry_run (mlmkit/inference/pipeline.py"),
    ("imports", "_find_and_load"),
    ("queue wait", "get (queue.py"),
    ("queue put", "put (queue.py"),
]


def summarise(path: str) -> Counter:
    totals: Counter = Counter()
    for line in open(path, encoding="utf-8"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        stage = next((name for name, key in STAGES if key in stack), "other")
        totals[stage] += int(count)
    return totals


def main() -> None:
    totals = summarise(sys.argv[1])
    everything = sum(totals.values())
    for stage, count in totals.most_common():
        print(f"{stage:<36} {count:>6} {count / everything:>6.1%}")
    print(f"{'all samples':<36} {everything:>6}")


if __name__ == "__main__":
    main()
