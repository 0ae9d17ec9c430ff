"""Models that survive any stage-in: a platform that copies only the MLM Item JSON, without its neighbours, still
runs it, because a published Item names its model and runtime assets by absolute URLs where they are served;
predict fetches the model through the download cache (once). S3 models: tests/test_fetch.py
(test_model_and_imagery_on_s3)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cwl_fixtures import BIN, check_vegetation_results, staged_scenes, vegetation_model
from http_helpers import counting_server
from mlmkit.catalog.publish import plan_publication
from mlmkit.stac.fetch import cache_size
from test_run import CWL


@pytest.fixture()
def model(tmp_path: Path, schema_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLMKIT_SCHEMA_DIR", str(schema_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return vegetation_model(tmp_path / "model", "--inference-cwl", str(CWL / "inference.cwl"))


def test_a_published_item_staged_alone_runs_from_its_urls(model: Path, tmp_path: Path) -> None:
    scene = staged_scenes(tmp_path / "scenes", 1)[0]
    with counting_server(model) as server:
        plan = plan_publication(model, base_href=server.base + "/")
        (upload,) = [u for u in plan.uploads if u.kind == "item"]
        assets = upload.data["assets"]
        roles = {role: asset["href"] for asset in assets.values() for role in asset.get("roles", [])}
        assert {"mlm:model", "mlm:inference-runtime"} <= set(roles)
        for asset in assets.values():  # every asset by an absolute URL on the server, naming a real file
            url = urlsplit(asset["href"])
            assert f"{url.scheme}://{url.netloc}" == server.base and (model / url.path.lstrip("/")).is_file()
        staged = tmp_path / "stage-in" / "item.json"  # what a stage-in that copies only the Item JSON leaves
        staged.parent.mkdir()
        staged.write_text(json.dumps(upload.data))
        for n in range(2):
            run = subprocess.run([BIN / "mlmkit", "predict", "-m", staged, "-i", scene, "-o", tmp_path / f"out{n}"],
                                 capture_output=True, text=True)
            assert run.returncode == 0, run.stderr
        model_path = urlsplit(roles["mlm:model"]).path
        assert len(server.gets(model_path)) == 1  # the second run took the cached copy
    assert cache_size(tmp_path / "xdg-cache" / "mlmkit" / "models") > 0
    for n in range(2):
        check_vegetation_results(tmp_path / f"out{n}", 1)  # class map exactly NIR > red, catalog valid
