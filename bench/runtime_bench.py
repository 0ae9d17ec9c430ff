"""The runtimes side by side: the demo's U-Net as ONNX (baseline), ExportedProgram and TorchScript, each opened
through `open_runtime` as `predict` opens it and fed the same batches of tiles in turn, batch by batch, so
load from other processes hits all of them alike. Prints Mpx/s per runtime, the ratio to ONNX and how
often their classes agree.

    . .venv/bin/activate && python bench/runtime_bench.py [--batches 12] [--tile 256] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as predict sets it before importing torch

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mlmkit.catalog.model_catalog import describe_model  # noqa: E402
from mlmkit.mlm.spec import read_model  # noqa: E402
from mlmkit.inference.runtime import RuntimeOptions, open_runtime  # noqa: E402
from mlmkit.training.export import export_onnx, export_program  # noqa: E402
from mlmkit.training.models import UNet  # noqa: E402

SPEC = {"name": "unet", "architecture": "U-Net", "tasks": ["semantic-segmentation"],
        "bands": ["B02", "B03", "B04", "B08"], "input_shape": [-1, 4, -1, -1],
        "classes": [{"value": i, "name": f"c{i}"} for i in range(4)]}


def _runners(folder: Path, threads: int) -> dict:
    torch.manual_seed(0)
    model = UNet(4, 4, width=8).eval()  # the demo's U-Net
    example = torch.zeros(2, 4, 64, 64)
    export_onnx(model, folder / "unet.onnx", example, dynamic_hw=True)
    export_program(model, folder / "unet.pt2", example, dynamic_hw=True)
    torch.jit.save(torch.jit.trace(model, example), str(folder / "unet.pt"))
    runners = {}
    for name, file in (("onnx", "unet.onnx"), ("exported", "unet.pt2"), ("torchscript", "unet.pt")):
        spec = read_model(describe_model(folder / file, folder / name, dict(SPEC)))
        runners[name] = open_runtime(spec, RuntimeOptions(threads=threads, device="cpu"))
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        runners = _runners(Path(tmp), args.threads)
        seconds = dict.fromkeys(runners, 0.0)
        equal = dict.fromkeys(runners, 0)
        for index in range(args.batches + 1):  # batch 0 warms up
            batch = rng.normal(size=(args.batch_size, 4, args.tile, args.tile)).astype(np.float32)
            classes = {}
            for name, runner in runners.items():
                start = time.perf_counter()
                scores = runner.run({runner.inputs[0].name: batch})[0]
                if index:
                    seconds[name] += time.perf_counter() - start
                classes[name] = scores.argmax(axis=1)
            if index:
                for name in runners:
                    equal[name] += int(np.sum(classes[name] == classes["onnx"]))
    pixels = args.batches * args.batch_size * args.tile ** 2
    print(f"{args.batches} batches of {args.batch_size} x {args.tile}² tiles, {args.threads} threads")
    for name in runners:
        print(f"{name:12s} {pixels / seconds[name] / 1e6:6.2f} Mpx/s  ratio to onnx "
              f"{seconds['onnx'] / seconds[name]:.2f}  classes equal to onnx {equal[name] / pixels:.6f}")


if __name__ == "__main__":
    main()
