"""Progress feedback: bars on a terminal, one summary line otherwise, silence with -q, details with -v."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlmkit.cli import main
from mlmkit.progress import NORMAL, QUIET, VERBOSE, Progress
from mlm_fixtures import item_path, write_water_catalog
from predict_helpers import imagery_item, write_raster


class Clock:
    """A perf_counter that advances by hand, so rates and ETAs are exact."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("mlmkit.progress.time.perf_counter", fake)
    return fake


def test_summary_line_without_a_terminal(clock: Clock) -> None:
    stream = io.StringIO()
    with Progress(NORMAL, stream).task("predict scene", total=64, unit="tiles", pixels=4_000_000) as task:
        clock.now += 8.0
        task.advance(64)
    assert stream.getvalue() == "predict scene: 64 tiles, 4.0 Mpx in 8.0 s (8.0 tiles/s, 0.50 Mpx/s)\n"


def test_live_bar_shows_rate_and_eta_then_gives_way_to_the_summary(clock: Clock) -> None:
    stream = io.StringIO()
    task = Progress(NORMAL, stream, live=True).task("chips s2", total=100, unit="chips")
    clock.now += 10.0
    task.advance(25)  # 2.5 chips/s, 75 left: 30 s
    bar = stream.getvalue()
    assert bar.startswith("\rchips s2 |#####               | 25/100 chips  ETA 0:30  2.5 chips/s")
    task.finish()
    assert stream.getvalue().endswith("\rchips s2: 25 chips in 10.0 s (2.5 chips/s)\n")


def test_quiet_prints_nothing_but_still_counts(clock: Clock) -> None:
    stream = io.StringIO()
    progress = Progress(QUIET, stream, live=True)
    with progress.task("validate x", unit="documents") as task:
        task.advance(3)
    progress.info("said")
    progress.detail("details")
    assert stream.getvalue() == "" and task.done == 3


def test_details_only_when_verbose() -> None:
    normal, verbose = io.StringIO(), io.StringIO()
    Progress(NORMAL, normal).detail("grid 10x10")
    Progress(VERBOSE, verbose).detail("grid 10x10")
    assert normal.getvalue() == "" and verbose.getvalue() == "grid 10x10\n"


def test_a_failed_task_leaves_no_summary(clock: Clock) -> None:
    stream = io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress(NORMAL, stream, live=True).task("predict x", total=4, unit="tiles") as task:
            clock.now += 1
            task.advance()
            raise RuntimeError("boom")
    assert stream.getvalue().endswith("\r") and "in 1.0 s" not in stream.getvalue()  # the bar cleared, no summary


def test_download_counts_megabytes(clock: Clock) -> None:
    stream = io.StringIO()
    with Progress(NORMAL, stream).download("model.onnx", 50_000_000) as task:
        clock.now += 2.0
        task.advance(50_000_000)
    assert stream.getvalue() == "model.onnx: 50.0 MB in 2.0 s (25.0 MB/s)\n"


def _predict_args(tmp_path: Path) -> list[str]:
    catalog = write_water_catalog(tmp_path, bbox=[-180.0, -90.0, 180.0, 90.0])  # where the imagery is
    write_raster(tmp_path / "rgb.tif", np.full((3, 80, 90), 500, np.uint16))
    item = imagery_item(tmp_path / "item.json", {"rgb": ("./rgb.tif", ["B04", "B03", "B02"])})
    return ["predict", "--model", str(catalog), "--input", str(item), "--tile-size", "32"]


def test_predict_cli_reports_each_item_once(tmp_path: Path) -> None:
    args = _predict_args(tmp_path)
    normal = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "a")])
    verbose = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "b"), "-v"])
    quiet = CliRunner().invoke(main, [*args, "--output", str(tmp_path / "c"), "-q"])
    assert normal.exit_code == verbose.exit_code == quiet.exit_code == 0, normal.output
    summary = [line for line in normal.stderr.splitlines() if line.startswith("predict ")]
    assert len(summary) == 1 and " 9 tiles, 0.0 Mpx in " in summary[0]  # 3 x 3 tiles of 32 over 90 x 80 px
    assert all(match in verbose.stderr for match in ("B04 <- rgb[1]", "B03 <- rgb[2]", "B02 <- rgb[3]"))
    assert "3x3 tiles of 32x32 px" in verbose.stderr and "onnxruntime providers" in verbose.stderr
    assert quiet.stderr == ""


def test_validate_counts_documents(tmp_path: Path) -> None:
    catalog = write_water_catalog(tmp_path)
    ok = CliRunner().invoke(main, ["validate", str(catalog)])
    assert ok.exit_code == 0 and ok.stderr.strip().endswith("validate: 3 documents valid")
    item = item_path(catalog)
    data = json.loads(item.read_text())
    data["properties"]["mlm:name"] = ""
    item.write_text(json.dumps(data))
    bad = CliRunner().invoke(main, ["validate", str(catalog)])
    assert bad.exit_code == 1 and bad.stderr.strip().splitlines()[-1].startswith("validate: 1 of 3 documents invalid")
