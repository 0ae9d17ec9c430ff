"""write_model_catalog's file fields: right for every copied file, each file hashed once."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pystac
import pytest

import mlmkit.mlm.build
from mlmkit.runtimes.artifacts import ArtifactKind
from mlmkit.catalog.model_catalog import write_model_catalog
from mlmkit.mlm.build import build_model_item, model_asset
from mlm_fixtures import item_path, make_segmenter, water_metadata


def test_extra_files_are_hashed_once_and_described_by_their_copies(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    model = make_segmenter(tmp_path / "water.onnx")
    other = make_segmenter(tmp_path / "water-fp.onnx")  # a second mlm:model asset, as a trainer's .pt2 is
    notes = tmp_path / "notes.json"
    notes.write_text('{"epochs": 3}')
    hashed: Counter[str] = Counter()
    checksum = mlmkit.mlm.build.file_checksum

    def counting(path, *args):
        hashed[Path(path).name] += 1
        return checksum(path, *args)

    monkeypatch.setattr(mlmkit.mlm.build, "file_checksum", counting)
    meta = water_metadata()
    extra = {"model-copy": (other, model_asset(other, meta, ArtifactKind.ONNX)),
             "notes": (notes, pystac.Asset("", "notes", media_type="application/json", roles=["metadata"]))}
    catalog = write_model_catalog(build_model_item(model, meta), model, tmp_path / "out", extra)
    assert hashed == {"water.onnx": 1, "water-fp.onnx": 1, "notes.json": 1}
    item = item_path(catalog)
    assets = json.loads(item.read_text())["assets"]
    for key in ("model", "model-copy", "notes"):
        written = item.parent / assets[key]["href"]
        assert assets[key]["file:size"] == written.stat().st_size
        assert assets[key]["file:checksum"] == "1220" + hashlib.sha256(written.read_bytes()).hexdigest()
