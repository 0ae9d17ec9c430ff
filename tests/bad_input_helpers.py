"""What every bad-input case asserts: the exit status, exactly one `Error:` line on stderr, no traceback,
nothing written (or removed) outside the output directory, no catalog.json and no temporary directory."""

from __future__ import annotations

import gc
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from mlmkit.cli import main
from predict_helpers import conv_model, imagery_item, mlm_input, mlm_item, mlm_output, write_raster

SEG = (["semantic-segmentation"], [-1, 2, -1, -1], ["batch", "class", "height", "width"])
BANDS = ["B04", "B03", "B02"]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` with what identifies its content (size and mtime; directories by kind)."""
    state = {}
    for path in root.rglob("*"):
        stat = path.lstat()
        state[str(path.relative_to(root))] = ("dir",) if path.is_dir() and not path.is_symlink() else \
            (stat.st_size, stat.st_mtime_ns)
    return state


def changed_paths(root: Path, before: dict[str, tuple]) -> set[str]:
    after = snapshot(root)
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


@dataclass
class Sandbox:
    """A directory tree for one case: inputs three levels deep, so `../../../X` stays inside the sandbox and
    shows up in its snapshot, and an output directory beside them."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "a" / "b" / "c"

    @property
    def out(self) -> Path:
        return self.work / "out"

    def start(self) -> None:
        assert Path.cwd() == self.work  # relative writes of the command land in the snapshot
        self.before = snapshot(self.root)

    def outside_changes(self, outdir: Path | None = None) -> set[str]:
        """What changed in the sandbox outside `outdir` (default: the sandbox's output directory)."""
        outdir = outdir or self.out
        prefix = str(outdir.relative_to(self.root)) if outdir.is_relative_to(self.root) else None
        return {path for path in changed_paths(self.root, self.before)
                if prefix is None or (path != prefix and not path.startswith(prefix + "/"))}


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_one_line_failure(result: Result, status: int, match: str | None = None) -> str:
    """The command failed with `status` and said why in exactly one `Error:` line, without a traceback."""
    assert isinstance(result.exception, SystemExit), f"unexpected {result.exception!r}\n{result.output}"
    assert result.exit_code == status, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in result.output
    if match is not None:
        assert re.search(match, lines[0]), lines[0]
    return lines[0]


def assert_refused(box: Sandbox, args: list, status: int = 1, match: str | None = None,
                   outdir: Path | None = None) -> str:
    """Run the CLI in the sandbox and check the whole bad-input contract."""
    box.start()
    line = assert_one_line_failure(invoke(args), status, match)
    gc.collect()  # what a process exit would finalise (e.g. temporary directories of half-built objects)
    outdir = outdir or box.out
    assert not box.outside_changes(outdir), box.outside_changes(outdir)
    assert not (outdir / "catalog.json").exists()
    assert not list(outdir.parent.glob(f".{outdir.name}.*")), "temporary directory left behind"
    assert not leftovers(Path(tempfile.gettempdir())), "temporary files left behind"
    return line


def leftovers(folder: Path) -> list[Path]:
    """What a run left in a temporary or cache directory; onnxruntime's telemetry (a `.ses` session file and a
    Microsoft/DeveloperTools database, written when it is imported) is not a run's."""
    return [path for path in folder.rglob("*") if path.name != ".ses" and "Microsoft" not in path.parts
            and not path.is_dir()] + list(folder.glob("mlmkit-*"))


def assert_contained(box: Sandbox, args: list, outdir: Path | None = None) -> Path:
    """Run the CLI, expect success, and check that every file it wrote is inside the output directory."""
    box.start()
    result = invoke(args)
    assert result.exit_code == 0, result.output
    outdir = outdir or box.out
    assert not box.outside_changes(outdir), box.outside_changes(outdir)
    assert (outdir / "catalog.json").is_file()
    assert not list(outdir.parent.glob(f".{outdir.name}.*"))
    return outdir


def write_scene(folder: Path, item_id: str = "scene", size: tuple[int, int] = (40, 50)) -> Path:
    """A 3-band GeoTIFF and its STAC Item; returns the Item path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = (np.arange(3 * size[0] * size[1], dtype=np.uint16).reshape(3, *size) % 500) + 1
    write_raster(folder / "img.tif", data, nodata=0)
    return imagery_item(folder / "item.json", {"img": ("./img.tif", BANDS)}, item_id=item_id)


def write_model(folder: Path, bands: list | None = None, output_name: str = "out", name: str = "Test model") -> Path:
    """A 1×1-conv segmentation model and its MLM Item; returns the Item path."""
    folder.mkdir(parents=True, exist_ok=True)
    bands = bands if bands is not None else BANDS
    model = conv_model(folder / "m.onnx", np.ones((2, len(bands))), np.zeros(2))
    path = mlm_item(folder / "model.json", model, [mlm_input("input", bands, len(bands))],
                    [mlm_output(output_name, *SEG)])
    data = json.loads(path.read_text())
    data["properties"]["mlm:name"] = name
    path.write_text(json.dumps(data))
    return path


@pytest.fixture()
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A sandbox with its own temporary directory (so leftovers of a run are seen) and cache, and the working
    directory of the command: what a run writes to a relative path (`touch pwned`) lands in its snapshot."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sandbox = Sandbox(tmp_path / "sandbox")
    sandbox.work.mkdir(parents=True)
    monkeypatch.chdir(sandbox.work)
    return sandbox
