"""Small models that train in minutes on a CPU and export to ONNX without custom ops."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mlmkit.errors import InvalidArgument
from mlmkit.training.layout import SCENE_CLASSIFICATION, SEGMENTATION


def _conv(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Four conv/pool stages and global pooling: a quick scene classifier for 64x64 chips."""

    def __init__(self, in_channels: int, classes: int, width: int = 32):
        super().__init__()
        widths = [width, width * 2, width * 4, width * 4]
        layers, previous = [], in_channels
        for w in widths:
            layers += [_conv(previous, w), nn.MaxPool2d(2)]
            previous = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(previous, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a (projected when needed) shortcut, as in ResNet-18."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(_conv(in_ch, out_ch, stride), nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(out_ch))
        self.skip = (nn.Identity() if stride == 1 and in_ch == out_ch else
                     nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.skip(x))


class ResNet18(nn.Module):
    """ResNet-18 layout (2-2-2-2 basic blocks) with a 3x3 stride-2 stem sized for 64x64 chips."""

    def __init__(self, in_channels: int, classes: int, width: int = 64):
        super().__init__()
        widths = [width, width * 2, width * 4, width * 8]
        self.stem = _conv(in_channels, width, stride=2)
        blocks, previous = [], width
        for stage, w in enumerate(widths):
            stride = 1 if stage == 0 else 2
            blocks += [BasicBlock(previous, w, stride), BasicBlock(w, w, 1)]
            previous = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(previous, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


class UNet(nn.Module):
    """A small U-Net; fully convolutional, so any H and W divisible by 2**depth work."""

    def __init__(self, in_channels: int, classes: int, width: int = 16, depth: int = 3):
        super().__init__()
        widths = [width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        previous = in_channels
        for w in widths[:-1]:
            self.down.append(nn.Sequential(_conv(previous, w), _conv(w, w)))
            previous = w
        self.bottom = nn.Sequential(_conv(previous, widths[-1]), _conv(widths[-1], widths[-1]))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2) for i in reversed(range(depth)))
        self.merge = nn.ModuleList(nn.Sequential(_conv(2 * widths[i], widths[i]), _conv(widths[i], widths[i]))
                                   for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], classes, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


# architecture -> (constructor, task, name for mlm:architecture)
ARCHITECTURES: dict[str, tuple[Callable[..., nn.Module], str, str]] = {
    "small-cnn": (SmallCNN, SCENE_CLASSIFICATION, "CNN"),
    "resnet18": (ResNet18, SCENE_CLASSIFICATION, "ResNet-18"),
    "unet": (UNet, SEGMENTATION, "U-Net"),
}
DEFAULT_ARCH = {SCENE_CLASSIFICATION: "small-cnn", SEGMENTATION: "unet"}


def build_model(arch: str, task: str, in_channels: int, classes: int, width: int | None = None) -> nn.Module:
    """A fresh model of `arch`, which must suit `task`."""
    if arch not in ARCHITECTURES:
        raise InvalidArgument(f"unknown architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    constructor, arch_task, _ = ARCHITECTURES[arch]
    if arch_task != task:
        suitable = sorted(a for a, (_, t, _) in ARCHITECTURES.items() if t == task)
        raise InvalidArgument(f"architecture {arch!r} is for {arch_task}; expected one of {suitable} for {task}")
    return constructor(in_channels, classes) if width is None else constructor(in_channels, classes, width=width)
