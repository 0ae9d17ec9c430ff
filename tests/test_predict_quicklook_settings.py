"""The boxes quicklook: the imagery with a 2–98 % stretch per band (as numpy computes it here), boxes outlined in
their class colour, saved with the same PNG settings as every other quicklook (zlib level 6)."""

from __future__ import annotations

import io

import numpy as np
from affine import Affine
from PIL import Image
from rasterio.crs import CRS

from mlmkit.inference.outputs.boxes import GeoParquetWriter, boxes_quicklook


def test_boxes_quicklook_pixels_and_png_settings(tmp_path):
    rng = np.random.default_rng(12)
    background = rng.normal(500, 120, size=(3, 60, 80)).astype(np.float32)
    background[1, :5, :5] = np.nan  # no data: left out of the stretch, drawn as 0
    transform = Affine(10, 0, 500000, 0, -10, 5000000)
    writer = GeoParquetWriter(tmp_path / "boxes.parquet", CRS.from_epsg(32631))
    writer.write(np.array([[500100.0, 4999500.0, 500300.0, 4999800.0]]), np.array([1]), ["ship"], np.array([0.9]))
    writer.close()

    look = boxes_quicklook(tmp_path / "boxes.parquet", tmp_path / "look.png", background, transform, (60, 80),
                           {1: (255, 0, 0)})

    pixels = np.asarray(Image.open(look))
    expected = np.zeros((60, 80, 3), np.uint8)
    for index, band in enumerate(background):
        low, high = np.nanpercentile(band, (2, 98))
        expected[..., index] = np.clip((np.nan_to_num(band) - low) / (high - low) * 255, 0, 255)
    outline = np.zeros((60, 80), bool)  # columns 10-30, rows 20-50 of the grid
    outline[20:51, [10, 30]] = outline[[20, 50], 10:31] = True
    assert (pixels[outline] == (255, 0, 0)).all()
    assert np.array_equal(pixels[~outline], expected[~outline])
    again = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(again, format="PNG", compress_level=6)
    assert look.read_bytes() == again.getvalue()
