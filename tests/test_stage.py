"""Staging for real, in-process: STAC over a loopback HTTP server into a local catalog (stage-in), predict on
it with provenance pointing at the served URLs, and the results uploaded to a loopback moto S3 server
(stage-out) and read back. The same steps run in containers under cwltool in test_cwl_staged.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from http_helpers import download_prefix, s3_server
from mlmkit.stac.checksum import file_checksum
from mlmkit.cli import main
from mlmkit.errors import UnsafePath
from mlmkit.inference import PredictOptions, predict
from mlmkit.stac.safepath import safe_name
from mlmkit.packages.stage import stage_in, stage_out
from mlmkit.catalog.validate import validate_source

BIN = Path(sys.executable).parent
ITEM = "s2-window-{n}/s2-window-{n}.json"


def _links(item: dict, rel: str) -> list[str]:
    return [link["href"] for link in item["links"] if link["rel"] == rel]


def _item_urls(base: str) -> list[str]:
    return [f"{base}/scenes/scene-{n}/{ITEM.format(n=n)}" for n in range(2)]


def _model_url(root: Path, base: str) -> str:
    item = next((root / "model").rglob("nir-over-red.json"))
    return f"{base}/{item.relative_to(root).as_posix()}"


def test_stage_in_copies_items_and_assets_keeping_canonical_links(served, tmp_path: Path) -> None:
    root, base = served
    out = stage_in(_item_urls(base), tmp_path / "staged")
    catalog = json.loads((out / "catalog.json").read_text())
    hrefs = _links(catalog, "item")
    assert len(hrefs) == 2
    for n, href in enumerate(hrefs):
        item_path = out / href
        item = json.loads(item_path.read_text())
        assert _links(item, "canonical") == [_item_urls(base)[n]]
        assert _links(item, "self") == [] and _links(item, "root") == ["../../catalog.json"]
        for key, asset in item["assets"].items():
            assert asset["href"] == f"./{key}.tif"
            served_file = root / "scenes" / f"scene-{n}" / f"s2-window-{n}" / f"{key}.tif"
            assert (item_path.parent / asset["href"]).read_bytes() == served_file.read_bytes()
    assert validate_source(out) == []


def test_predict_on_staged_inputs_names_the_served_urls(served, tmp_path: Path) -> None:
    """The model staged from its catalog URL, the imagery from Item URLs: derived_from and
    processing:expression name the URLs, not the staging directory, and the result validates."""
    root, base = served
    model = stage_in([f"{base}/model/catalog.json"], tmp_path / "model")
    onnx = next(model.rglob("*.onnx"))
    assert file_checksum(onnx) == file_checksum(next((root / "model").rglob("*.onnx")))
    imagery = stage_in(_item_urls(base)[:1], tmp_path / "imagery")
    out = tmp_path / "out"
    predict(str(model), str(imagery), out, PredictOptions(tile_size=128))
    item_path = next(out.glob("*/*.json"))
    item = json.loads(item_path.read_text())
    assert sorted(_links(item, "derived_from")) == sorted([_item_urls(base)[0], _model_url(root, base)])
    assert item["properties"]["processing:expression"] == {"format": "stac-mlm", "expression": _model_url(root, base)}
    assert validate_source(out) == []


def test_stage_out_uploads_the_catalog_and_it_reads_back_valid(served, tmp_path: Path) -> None:
    root, base = served
    imagery = stage_in(_item_urls(base), tmp_path / "imagery")
    with s3_server("results") as endpoint:
        url = stage_out(imagery, "s3://results/runs/1", endpoint)
        assert url == "s3://results/runs/1/catalog.json"
        types = download_prefix(endpoint, "results", "runs/1", tmp_path / "back")
    back = tmp_path / "back"
    assert validate_source(back) == []
    assert sorted(p.relative_to(back) for p in back.rglob("*") if p.is_file()) == \
        sorted(p.relative_to(imagery) for p in imagery.rglob("*") if p.is_file())
    assert types["runs/1/catalog.json"] == "application/json"
    assert types["runs/1/items/s2-window-0/s2-window-0.json"] == "application/geo+json"
    assert types["runs/1/items/s2-window-0/B04.tif"] == "image/tiff; application=geotiff"


def test_stage_commands_print_one_line_each(served, tmp_path: Path) -> None:
    root, base = served
    staged = tmp_path / "staged"
    run = subprocess.run([BIN / "mlmkit", "stage-in", _item_urls(base)[0], "--output", staged],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(staged.absolute() / "catalog.json")
    with s3_server("bucket") as endpoint:
        run = subprocess.run([BIN / "mlmkit", "stage-out", staged, "--s3-url", "s3://bucket/x", "--endpoint-url",
                              endpoint], capture_output=True, text=True)
        missing = subprocess.run([BIN / "mlmkit", "stage-out", staged, "--s3-url", "s3://no-such-bucket/x",
                                  "--endpoint-url", endpoint], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout == "s3://bucket/x/catalog.json\n", run.stderr
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert "cannot upload" in missing.stderr and "NoSuchBucket" in missing.stderr


def test_stage_in_keeps_untrusted_ids_and_names_inside_the_output(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "data.tif").write_bytes(b"not really a tiff")
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "../../escape", "geometry": None, "properties":
            {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
            "assets": {"../../evil": {"href": "./data.tif"}, "other": {"href": "./data.tif"}}}
    (src / "item.json").write_text(json.dumps(item))
    out = stage_in([str(src / "item.json")], tmp_path / "out")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    folder = safe_name("../../escape", "document")  # a slug plus a hash of the id: "escape-<hash>"
    assert folder.startswith("escape-") and "/" not in folder
    assert files == ["catalog.json", f"items/{folder}/data.tif", f"items/{folder}/{folder}.json",
                     f"items/{folder}/other-data.tif"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


def test_stage_in_refuses_a_wrong_checksum_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.onnx").write_bytes(b"tampered")
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "m", "geometry": None, "links": [],
            "properties": {"datetime": "2024-01-01T00:00:00Z"},
            "assets": {"model": {"href": "./model.onnx", "file:checksum": "1220" + "00" * 32}}}
    (src / "item.json").write_text(json.dumps(item))
    result = CliRunner().invoke(main, ["stage-in", str(src / "item.json"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.output.startswith("Error: checksum mismatch for ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_stage_in_of_a_missing_url_fails_in_one_line(served, tmp_path: Path) -> None:
    root, base = served
    result = CliRunner().invoke(main, ["stage-in", f"{base}/nothing.json", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot read {base}/nothing.json: 404")
    assert not (tmp_path / "out").exists()


def test_stage_out_refuses_a_catalog_with_assets_outside_it(served, tmp_path: Path) -> None:
    root, base = served
    catalog = tmp_path / "catalog"
    shutil.copytree(root / "scenes" / "scene-0", catalog)
    item_path = catalog / ITEM.format(n=0)
    item = json.loads(item_path.read_text())
    outside = str(root / "scenes" / "scene-1" / ITEM.format(n=1))
    item["assets"]["B04"]["href"] = outside
    item_path.write_text(json.dumps(item))
    with pytest.raises(UnsafePath, match="lies outside") as info:
        stage_out(catalog, "s3://bucket/x", "http://127.0.0.1:9")
    assert f"asset 'B04' of {item_path} is {outside}, which lies outside {catalog}; " in str(info.value)
