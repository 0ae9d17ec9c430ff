"""Real third-party ONNX models that a PyPI wheel ships: PP-OCR's text detector (a Paddle2ONNX DBNet, weights in
Constant nodes, one probability channel) and its text-direction classifier (48 × 192 crops, classes 0 and 180),
from rapidocr-onnxruntime 1.4.4 (Apache-2.0), installed without its dependencies by scripts/setup.sh."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

DETECTOR = "ch_PP-OCRv4_det_infer.onnx"
DIRECTION = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
# PP-OCR feeds 8-bit images as (x / 255 - 0.5) / 0.5 (rapidocr's config.yaml: mean 0.5, std 0.5)
PP_OCR_SCALING = [{"type": "z-score", "mean": 127.5, "stddev": 127.5}]


def rapidocr_model(name: str) -> Path:
    """The path of one of the wheel's models (the package itself is not imported: it needs OpenCV)."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("rapidocr-onnxruntime is not installed; scripts/setup.sh installs it (pip install --no-deps "
                    "rapidocr-onnxruntime==1.4.4)")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / name


def text_image(height: int, width: int, lines: list[str], flip: bool = False) -> np.ndarray:
    """(3, height, width) uint8: black text on white, upside down when `flip`."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    step = max(height // max(len(lines), 1), 12)
    for index, line in enumerate(lines):
        draw.text((6, 4 + index * step), line, fill="black")
    if flip:
        image = image.rotate(180)
    return np.asarray(image).transpose(2, 0, 1).copy()


def pp_ocr_input(image: np.ndarray) -> np.ndarray:
    """What PP-OCR's own pre-processing feeds the model for a (3, h, w) uint8 image: [1, 3, h, w] float32."""
    return ((image.astype(np.float32) / 255 - 0.5) / 0.5)[None]
