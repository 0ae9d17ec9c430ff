"""What a killed or interrupted run leaves beside OUTDIR is recovered, never taken for an empty OUTDIR, and an
interrupted replacement of OUTDIR leaves the previous output in place."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pystac
import pytest
from click.testing import CliRunner

from mlmkit.stac.atomic import OWNER_MARK, atomic_output_dir
from mlmkit.cli import main
from mlmkit.errors import InvalidInput, Terminated


def _dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def _killed_mid_replacement(outdir: Path) -> Path:
    """What `kill -9` between moving the old OUTDIR aside and moving the new one in leaves: OUTDIR missing,
    its previous content in a marked `.OUTDIR.<random>.old` of a dead process."""
    trash = outdir.parent / f".{outdir.name}.x1y2.old"
    (trash / outdir.name).mkdir(parents=True)
    (trash / outdir.name / "keep.txt").write_text("previous output")
    mark = {"outdir": str(outdir.absolute()), "host": socket.gethostname(), "pid": _dead_pid(), "started": None}
    (trash / OWNER_MARK).write_text(json.dumps(mark))
    return trash


def _catalog(root: Path) -> Path:
    catalog = pystac.Catalog(id="results", description="one result")
    catalog.add_item(pystac.Item(id="scene", geometry=None, bbox=None, datetime=pystac.utils.str_to_datetime(
        "2024-01-01T00:00:00Z"), properties={}))
    catalog.normalize_and_save(str(root), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def test_a_previous_output_caught_mid_replacement_is_not_replaced_without_overwrite(tmp_path: Path) -> None:
    outdir = tmp_path / "mo"
    trash = _killed_mid_replacement(outdir)
    with pytest.raises(InvalidInput, match="is not empty"), atomic_output_dir(outdir) as work:
        (work / "new.txt").write_text("new output")
    assert (outdir / "keep.txt").read_text() == "previous output"
    assert not trash.exists() and sorted(path.name for path in tmp_path.iterdir()) == ["mo"]


def test_merge_without_overwrite_keeps_a_recovered_previous_output(tmp_path: Path, monkeypatch) -> None:
    source = _catalog(tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    _killed_mid_replacement(tmp_path / "mo")
    result = CliRunner().invoke(main, ["merge", str(source), "-o", "mo"])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"Error: output directory {tmp_path / 'mo'} is not empty; expected a "
                                          "new or empty directory (or the overwrite option)"]
    assert sorted(path.name for path in (tmp_path / "mo").iterdir()) == ["keep.txt"]
    result = CliRunner().invoke(main, ["merge", str(source), "-o", "mo", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mo" / "catalog.json").is_file() and not (tmp_path / "mo" / "keep.txt").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mo", "results"]


def test_an_interruption_between_the_renames_leaves_the_previous_output_in_place(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "keep.txt").write_text("previous output")
    rename = Path.rename

    def interrupted(self: Path, target):
        if self.name.endswith(".partial"):  # the new output's move into place, after the old one moved aside
            raise Terminated()
        return rename(self, target)

    with pytest.raises(Terminated), atomic_output_dir(outdir, overwrite=True) as work:
        (work / "new.txt").write_text("new output")
        monkeypatch.setattr(Path, "rename", interrupted)
    monkeypatch.undo()
    assert sorted(path.name for path in outdir.iterdir()) == ["keep.txt"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no .partial, no .old


def test_a_finished_replacement_leaves_only_the_new_output(tmp_path: Path) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "keep.txt").write_text("previous output")
    with atomic_output_dir(outdir, overwrite=True) as work:
        (work / "new.txt").write_text("new output")
    assert sorted(path.name for path in outdir.iterdir()) == ["new.txt"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
