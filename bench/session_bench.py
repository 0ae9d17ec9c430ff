"""onnxruntime session settings, measured: graph optimisation level, spinning, threads, batch size, arena.

For the light model of predict_bench.py (13 bands, ≈13 kMAC/px) and, if ukis-csmask is installed, the heavy
U-Net of heavy_bench.py, runs the same tiles through sessions built with each setting (one setting changed at
a time from mlmkit's defaults), each in a fresh process, alternating settings round by round. Prints
Mpx/s, CPU core-seconds per Mpx (robust to other load) and peak RSS per setting, with the load. With
`--providers`, every setting's sessions use those execution providers; in a venv with onnxruntime-openvino
the "openvino" setting (OpenVINOExecutionProvider) is measured beside the CPU ones.

    python bench/session_bench.py [--model light|heavy] [--onnx FILE] [--rounds 2] [--tiles 64]
                                  [--workdir /tmp/mlmkit-bench] [--variants defaults "batch 4" ...]
                                  [--other-python /path/to/venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import alternate, child, cpu_seconds, median, peak_rss_mib, write_conv_model  # noqa: E402

DEFAULTS = {"level": "all", "spinning": 0, "threads": 0, "batch": 8, "arena": 1, "providers": "CPUExecutionProvider"}
VARIANTS = {
    "defaults": {},
    "spinning on": {"spinning": 1},
    "level basic": {"level": "basic"},
    "level extended": {"level": "extended"},
    "1 thread": {"threads": 1},
    "batch 2": {"batch": 2},
    "batch 4": {"batch": 4},
    "batch 16": {"batch": 16},
    "arena off": {"arena": 0},
    "openvino": {"providers": "OpenVINOExecutionProvider,CPUExecutionProvider"},  # only with onnxruntime-openvino
}


def run_setting(model: str, channels: int, tile: int, tiles: int, setting: dict) -> dict:
    import onnxruntime as ort

    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    options = ort.SessionOptions()
    options.intra_op_num_threads = setting["threads"] or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = levels[setting["level"]]
    options.enable_cpu_mem_arena = bool(setting["arena"])
    options.add_session_config_entry("session.intra_op.allow_spinning", str(setting["spinning"]))
    session = ort.InferenceSession(model, options, providers=setting["providers"].split(","))
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(0)
    batch = setting["batch"]
    feeds = [rng.normal(size=(min(batch, tiles - first), channels, tile, tile)).astype(np.float32)
             for first in range(0, tiles, batch)]
    session.run(None, {name: feeds[0]})
    cpu, start = cpu_seconds(), time.perf_counter()
    for feed in feeds:
        session.run(None, {name: feed})
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu, "pixels": tiles * tile * tile,
            "peak_rss_mib": peak_rss_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["light", "heavy"], default="light")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tiles", type=int, default=64)
    parser.add_argument("--variants", nargs="+", default=None, help="which settings to measure (default: all)")
    parser.add_argument("--providers", default=None, help="execution providers for every setting")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlmkit-bench"))
    parser.add_argument("--onnx", type=Path, help="another ONNX file taking [N, C, 256, 256] float32 instead of "
                                                  "--model's, e.g. the int8 copy `mlmkit quantize` wrote")
    parser.add_argument("--other-python", help="also run each setting with this interpreter (another venv, e.g. one "
                                               "with onnxruntime-openvino), alternated with this one")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _, model, channels, tile, tiles, setting = args.child
        print(json.dumps(run_setting(model, int(channels), int(tile), int(tiles), json.loads(setting))))
        return
    import onnxruntime as ort

    if args.variants is None:
        args.variants = [name for name in VARIANTS if name != "openvino"
                         or "OpenVINOExecutionProvider" in ort.get_available_providers()]
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.model == "light":
        model, channels = write_conv_model(args.workdir / "bench-seg.onnx", 13, 4), 13
    else:
        import ukis_csmask

        model, channels = Path(ukis_csmask.__file__).parent / "model_4b_l1c.onnx", 4
    if args.onnx:
        model, channels = args.onnx, ort.InferenceSession(str(args.onnx)).get_inputs()[0].shape[1]
    base = {**DEFAULTS, **({"providers": args.providers} if args.providers else {})}
    sides = {name: (lambda name=name: child(__file__, ["run", model, channels, 256, args.tiles,
                                                        json.dumps({**base, **VARIANTS[name]})]))
             for name in args.variants}
    if args.other_python:
        other = {f"{name} (other)": (lambda name=name: child(__file__, ["run", model, channels, 256, args.tiles,
                                                                        json.dumps({**base, **VARIANTS[name]})],
                                                             python=args.other_python))
                 for name in args.variants + (["openvino"] if "openvino" not in args.variants else [])}
        sides.update(other)
    figures: dict[str, list[dict]] = {name: [] for name in sides}
    print(f"onnxruntime {ort.__version__} here" + (f", {args.other_python} for '(other)'" if args.other_python else ""))
    for index, result in alternate(sides, args.rounds):
        for name, figure in result.items():
            figures[name].append(figure)
            print(f"round {index} {name:<16} {figure['pixels'] / 1e6 / figure['seconds']:>7.2f} Mpx/s "
                  f"{figure['cpu_seconds'] / figure['pixels'] * 1e6:>7.3f} core-s/Mpx "
                  f"{figure['peak_rss_mib']:>6.0f} MiB  load {figure['load']}", flush=True)
    print(f"{args.onnx or args.model} model, {args.tiles} tiles of 256², providers {base['providers']}; medians:")
    for name, runs in figures.items():
        print(f"  {name:<16} {median([r['pixels'] / 1e6 / r['seconds'] for r in runs]):>7.2f} Mpx/s "
              f"{median([r['cpu_seconds'] / r['pixels'] * 1e6 for r in runs]):>7.3f} core-s/Mpx "
              f"{median([r['peak_rss_mib'] for r in runs]):>6.0f} MiB")


if __name__ == "__main__":
    main()
