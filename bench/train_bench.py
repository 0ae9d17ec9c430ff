"""Training throughput: mlmkit's data pipeline + loop vs a plain PyTorch loop over the same chips
already normalised in memory, on the demo's real Sentinel-2 chips; plus the ONNX export check.

    python bench/train_bench.py [--epochs 3] [--width 8]

Both sides train the same U-Net with the same seed, batch size and optimizer, batch by batch in turn, so
that load on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from mlmkit.demo import DEMO_CLASSES, MODEL_BANDS, rule_labels, write_scene_item
from mlmkit.training.catalog_reader import IGNORE_INDEX, read_training_data
from mlmkit.training.chips import ChipOptions, build_chips
from mlmkit.training.dataset import ChipBatches
from mlmkit.training.export import compare_onnx, export_onnx
from mlmkit.training.models import build_model
from mlmkit.training.stats import band_stats
from mlmkit.training.trainer import TrainConfig, fit, seed_everything, train_epoch


def _setup(config: TrainConfig, task: str, channels: int, classes: int):
    seed_everything(config.seed)
    model = build_model(config.arch, task, channels, classes, config.width)
    return model, torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


class PlainLoop:
    """A textbook step: tensors already normalised in memory, randperm batches, nothing else."""

    def __init__(self, model, optimizer, loss_fn, images: torch.Tensor, labels: torch.Tensor, batch_size: int):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.generator = torch.Generator().manual_seed(0)
        self.order, self.position, self.seconds = torch.randperm(len(images), generator=self.generator), 0, 0.0

    def step(self) -> None:
        started = time.perf_counter()
        if self.position >= len(self.images):
            self.order, self.position = torch.randperm(len(self.images), generator=self.generator), 0
        index = self.order[self.position:self.position + self.batch_size]
        self.position += self.batch_size
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(self.images[index]), self.labels[index])
        loss.backward()
        self.optimizer.step()
        self.seconds += time.perf_counter() - started


class Interleaved:
    """mlmkit's batches with one plain-loop step run (and timed apart) after each, so that whatever else
    the machine does slows both sides alike; train_epoch cannot tell it from ChipBatches."""

    def __init__(self, batches: ChipBatches, plain: PlainLoop):
        self.batches, self.plain = batches, plain

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            yield batch
            self.plain.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlmkit-bench-") as tmp:
        work = Path(tmp)
        scene = write_scene_item(work / "scene")
        rule_labels(work / "scene", work / "labels.tif")
        build_chips(str(scene), str(work / "labels.tif"), DEMO_CLASSES, work / "chips", ChipOptions(bands=MODEL_BANDS))
        data = read_training_data(str(work / "chips"))
        stats = band_stats(data.splits["train"].images)
        config = TrainConfig("unet", 1, args.batch_size, width=args.width)
        train = data.splits["train"]
        batches = ChipBatches(train.images, train.labels, stats, len(train.images))
        images, labels = next(iter(batches))  # the whole split, normalised once, in memory
        print(f"{len(train.images)} train chips {tuple(train.images.shape[1:])}, U-Net width {args.width}, "
              f"batch {args.batch_size}, torch threads {torch.get_num_threads()}")
        loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        ours_model, ours_opt = _setup(config, data.task, images.shape[1], len(data.classes))
        plain = PlainLoop(*_setup(config, data.task, images.shape[1], len(data.classes)), loss_fn, images, labels,
                          args.batch_size)
        batches = Interleaved(ChipBatches(train.images, train.labels, stats, args.batch_size, shuffle=True), plain)
        train_epoch(ours_model, batches, ours_opt, loss_fn, len(data.classes), "warm-up", progress=False)
        plain.seconds = 0.0
        started = time.perf_counter()
        for _ in range(args.epochs):
            train_epoch(ours_model, batches, ours_opt, loss_fn, len(data.classes), "bench", progress=False)
        ours_seconds = time.perf_counter() - started - plain.seconds
        samples = len(images) * args.epochs
        ours, base = samples / ours_seconds, samples / plain.seconds
        print(f"training samples/s: mlmkit {ours:.1f}, plain PyTorch {base:.1f}; "
              f"ratio {ours / base:.3f} (goal >= 0.90)")
        result = fit(data, stats, TrainConfig("unet", 1, args.batch_size, width=args.width))
        validate = data.splits["validate"]
        real = [x for x, _ in ChipBatches(validate.images, validate.labels, stats, args.batch_size)]
        started = time.perf_counter()
        export_onnx(result.model, work / "model.onnx", real[0], dynamic_hw=True)
        exported = time.perf_counter() - started
        diff = compare_onnx(result.model, work / "model.onnx", real)
        print(f"ONNX export {exported:.2f} s; onnxruntime vs torch on {sum(len(x) for x in real)} real validation "
              f"chips: max abs difference {diff:.2e} (bound 1e-3)")


if __name__ == "__main__":
    main()
