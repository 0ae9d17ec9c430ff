"""Where a `predict` run's CPU goes, thread by thread, beside model only on the same batches.

End to end, in a fresh child process: `predict` of MODEL over ITEM, with CPU seconds charged to onnxruntime
(the calling thread inside the feeder's `run`; its worker threads, those alive once the session is open, while
tiles run, read from /proc/self/task), the reader thread (its own `thread_time`), other threads started while
tiles run (e.g. GDAL's decoders), the main thread between model calls (argmax, strips, strip writes) and the
rest (no interpreter start: MLM Item, lint, session, opening imagery and sinks, COG, quicklook, catalog).
Model only, in another child: the very batches `predict` runs (`read_batches`, copied beforehand), through the
same feeder and runner, timed alone (its calling thread's share shown). Sides alternate round by round; the
load is printed. On a busy machine the CPU columns are the figures to read.

Why: on 2 cores, model only keeps both busy, so end to end can run no faster than its CPU seconds allow; its
wall ratio is bounded by the CPU ratio, and this table says which part of the difference to cut.

    python bench/predict_parts.py MODEL ITEM [--overlap 0] [--tile-size 256] [--batch 4] [--rounds 2]

(the light model: predict_bench.py's `model.json` and `scene-4096-zstd.json` in its workdir; the heavy one:
heavy_bench.py's `csmask-mlm/catalog.json` and `s2-item-mosaic1.json`, `--overlap 52 --tile-size 0`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import alternate, child, cpu_seconds, load, median  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """CPU seconds of every live thread of this process, by thread id."""
    seconds = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # ended meanwhile
            continue
        seconds[tid] = (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


def _options(args: list[str]):
    from mlmkit.inference.pipeline import PredictOptions

    overlap, tile, batch = map(int, args)
    return PredictOptions(overwrite=True, overlap=overlap, tile_size=tile or None, batch_size=batch)


def end_to_end(model: str, item: str, out: str, options: list[str]) -> dict:
    """`predict` timed, its CPU split by part (see the module docstring)."""
    from mlmkit.inference import feeders, pipeline

    parts = {"ort calling": 0.0, "main tiles": 0.0, "ort workers": 0.0, "reader": 0.0, "other threads": 0.0}
    run_tiles, fill, open_runtime = pipeline._run_tiles, pipeline._Producer._fill, pipeline.open_runtime
    runtime_threads: set[str] = set()

    def opened(*args, **kwargs):  # the threads alive once the session is open: onnxruntime's workers
        runner = open_runtime(*args, **kwargs)
        runtime_threads.update(thread_cpu())
        return runner

    def charged(run):
        def wrapper(*args, **kwargs):
            start = time.thread_time()
            try:
                return run(*args, **kwargs)
            finally:
                parts["ort calling"] += time.thread_time() - start
        return wrapper

    def timed_tiles(*args, **kwargs):
        before, start = thread_cpu(), time.thread_time()
        try:
            return run_tiles(*args, **kwargs)
        finally:
            parts["main tiles"] += time.thread_time() - start
            after, main = thread_cpu(), str(threading.get_native_id())
            for tid in set(after) - {main}:  # the reader thread has ended: its own thread_time counts it
                part = "ort workers" if tid in runtime_threads else "other threads"  # e.g. GDAL's decoders
                parts[part] += after[tid] - before.get(tid, 0.0)

    def timed_fill(self):
        start = time.thread_time()
        try:
            fill(self)
        finally:
            parts["reader"] += time.thread_time() - start

    for feeder in (feeders.TileFeeder, feeders.PixelFeeder):
        feeder.run = charged(feeder.run)
    pipeline._run_tiles, pipeline._Producer._fill, pipeline.open_runtime = timed_tiles, timed_fill, opened
    cpu, start = cpu_seconds(), time.perf_counter()
    pipeline.predict(model, item, Path(out), _options(options))
    seconds, total = time.perf_counter() - start, cpu_seconds() - cpu
    parts["main tiles"] -= parts["ort calling"]
    return {"seconds": seconds, "cpu_seconds": total, **parts, "rest": total - sum(parts.values())}


def model_only(model: str, item: str, options: list[str]) -> dict:
    """The batches predict runs, read and copied beforehand, through the same feeder and runner."""
    from mlmkit.inference.pipeline import read_batches
    from mlmkit.inference.runtime import RuntimeOptions, open_runtime
    from mlmkit.mlm.spec import read_model

    spec = read_model(model)
    runner = open_runtime(spec, RuntimeOptions())
    batches = [(batch.feeder, {name: array.copy() for name, array in batch.buffers.items()}, batch.valid)
               for batch in read_batches(spec, runner, item, _options(options))]
    feeder, buffers, valid = batches[0]
    feeder.run(runner, buffers, valid)  # warm-up, as predict's first tile plan
    cpu, start, calling = cpu_seconds(), time.perf_counter(), time.thread_time()
    for feeder, buffers, valid in batches:
        feeder.run(runner, buffers, valid)
    seconds, total, calling = time.perf_counter() - start, cpu_seconds() - cpu, time.thread_time() - calling
    runner.close()
    return {"seconds": seconds, "cpu_seconds": total, "ort calling": calling}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?")
    parser.add_argument("item", nargs="?")
    parser.add_argument("--overlap", type=int, default=0)
    parser.add_argument("--tile-size", type=int, default=256, help="0: the model's own")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlmkit-bench-parts"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # LineageWarning for the /tmp inputs
    if args.child:
        kind, model, item, *rest = args.child
        result = end_to_end(model, item, rest[0], rest[1:]) if kind == "e2e" else model_only(model, item, rest)
        print(json.dumps(result))
        return
    if not (args.model and args.item):
        parser.error("MODEL and ITEM are required")
    options = [args.overlap, args.tile_size, args.batch]
    sides = {"e2e": lambda: child(__file__, ["e2e", args.model, args.item, args.workdir / "out", *options]),
             "model": lambda: child(__file__, ["model", args.model, args.item, *options])}
    columns = ("ort calling", "ort workers", "reader", "other threads", "main tiles", "rest")
    print(f"{'round':>5} {'e2e s':>7} {'e2e cpu':>8} " + " ".join(f"{name:>13}" for name in columns)
          + f" {'model s':>8} {'model cpu':>9} {'of it calling':>13} {'ratio':>6} {'cpu ratio':>9} {'load':>5}")
    ratios, cpu_ratios, rows = [], [], []
    for index, result in alternate(sides, args.rounds):
        e2e, only = result["e2e"], result["model"]
        ratios.append(only["seconds"] / e2e["seconds"])
        cpu_ratios.append(only["cpu_seconds"] / e2e["cpu_seconds"])
        rows.append(e2e)
        print(f"{index:>5} {e2e['seconds']:>7.2f} {e2e['cpu_seconds']:>8.2f} "
              + " ".join(f"{e2e[name]:>13.2f}" for name in columns)
              + f" {only['seconds']:>8.2f} {only['cpu_seconds']:>9.2f} {only['ort calling']:>13.2f} {ratios[-1]:>6.2f}"
              f" {cpu_ratios[-1]:>9.2f} "
              f"{e2e['load']:>5}", flush=True)
    print(f"medians: ratio {median(ratios):.2f}, cpu ratio {median(cpu_ratios):.2f}; CPU s "
          + ", ".join(f"{name} {median([row[name] for row in rows]):.2f}" for name in columns)
          + f"; load {load()}")


if __name__ == "__main__":
    main()
