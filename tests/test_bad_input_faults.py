"""Faults of the machine: a full disk, SIGTERM/SIGINT mid-run (what cwltool, Toil, Slurm and Kubernetes send
on cancel), and `kill -9` followed by the next run, which clears what the killed run left."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bad_input_helpers import (BANDS, Sandbox, assert_refused, box, invoke, leftovers, write_model,  # noqa: F401
                               write_scene)
from conftest import require_services
from http_helpers import scripted_server
from mlm_fixtures import make_segmenter
from mlmkit.stac.atomic import OWNER_MARK, remove_stale
from predict_helpers import imagery_item, mlm_input, mlm_item, mlm_output, write_raster
from train_fixtures import write_eurosat_folder, write_scene as write_training_scene

REPO = Path(__file__).resolve().parents[1]
SEG = (["semantic-segmentation"], [-1, 2, -1, -1], ["batch", "class", "height", "width"])


# --- a full disk -------------------------------------------------------------------------------------------------

@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: room for the run's temporary directory, not for its output."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        message = f"cannot mount a tmpfs to fill ({done.stderr.strip()}); the disk-full tests need root"
        if require_services():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _big_scene(folder: Path, size: int = 300) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).integers(1, 500, (3, size, size)).astype("uint16")
    write_raster(folder / "img.tif", data)
    return imagery_item(folder / "item.json", {"img": ("./img.tif", BANDS)})


def _disk_full_args(box: Sandbox, command: str, out: Path) -> list:
    work = box.work
    if command == "predict":
        return ["predict", "-m", write_model(work / "model"), "-i", _big_scene(work / "scene"), "-o", out]
    if command == "chips":
        item, labels = write_training_scene(work / "scene", size=96)
        return ["chips", "--imagery", item, "--labels", labels, "--classes", "0=water,1=forest,2=field",
                "--chip-size", "16", "-o", out]
    if command == "chips --eurosat":
        return ["chips", "--eurosat", write_eurosat_folder(work / "eurosat", size=32), "-o", out, "--block-deg",
                "0.001"]
    if command == "merge":
        return ["merge", _big_scene(work / "scene").parent / "item.json", "-o", out]
    if command == "describe":
        model = make_segmenter(work / "seg.onnx", channels=3)
        graph = onnx.load(str(model))
        graph.graph.initializer.append(numpy_helper.from_array(np.ones(100_000, np.float32), "padding"))
        onnx.save(graph, str(model))
        return ["describe", model, "-o", out, "--name", "n", "--architecture", "a", "--task", "t"]
    return ["train", "--data", _training_catalog(work), "-o", out, "--epochs", "1", "--quiet"]


def _training_catalog(work: Path) -> Path:
    item, labels = write_training_scene(work / "scene", size=64)
    result = invoke(["chips", "--imagery", item, "--labels", labels, "--classes", "0=water,1=forest,2=field",
                     "--chip-size", "16", "--block-size", "1", "-o", work / "training"])
    assert result.exit_code == 0, result.output
    return work / "training"


@pytest.mark.parametrize("command", ["predict", "chips", "chips --eurosat", "merge", "describe", "train"])
def test_disk_full_is_one_line_naming_the_path(box: Sandbox, small_disk: Path, command: str):
    out = small_disk / "out"
    line = assert_refused(box, _disk_full_args(box, command, out), outdir=out, match="no space left")
    assert str(out) in line
    assert not list(small_disk.iterdir())  # no partial output on the full disk either


# --- signals mid-run ---------------------------------------------------------------------------------------------

def _slow_model(folder: Path, depth: int = 24, width: int = 32) -> Path:
    """A chain of 3×3 convolutions: about a second per 256×256 tile, so a run can be caught mid-way."""
    rng = np.random.default_rng(0)
    nodes, weights, previous, channels = [], [], "input", 3
    for index in range(depth):
        name = f"w{index}"
        weights.append(numpy_helper.from_array(
            (rng.normal(size=(width, channels, 3, 3)) * 0.05).astype(np.float32), name))
        nodes.append(helper.make_node("Conv", [previous, name], [f"h{index}"], pads=[1, 1, 1, 1]))
        previous, channels = f"h{index}", width
    weights.append(numpy_helper.from_array(rng.normal(size=(2, width, 1, 1)).astype(np.float32), "head"))
    nodes.append(helper.make_node("Conv", [previous, "head"], ["output"]))
    graph = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 2, "H", "W"])],
                              weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "slow.onnx"))
    return mlm_item(folder / "model.json", folder / "slow.onnx", [mlm_input("input", BANDS, 3)],
                    [mlm_output("out", *SEG)])


def _start(box: Sandbox, args: list) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(box.root.parent / "tmp"), "XDG_CACHE_HOME": str(box.root.parent / "cache"),
           "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, "-m", "mlmkit", *map(str, args)], cwd=box.work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process: subprocess.Popen, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _partials(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*.partial"))


def _writing_tiles(out: Path) -> bool:
    """The run is past its set-up: a result directory with files exists in its temporary output."""
    return any(path.is_file() for partial in _partials(out) for path in partial.glob("*/*"))


def _predict_slowly(box: Sandbox) -> list:
    return ["predict", "-m", _slow_model(box.work / "model"), "-i", _big_scene(box.work / "scene", 768),
            "-o", box.out, "--threads", "1", "--batch-size", "1", "--tile-size", "256"]


@pytest.mark.parametrize("signum,status,word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130,
                                                                                      "interrupted")])
def test_signal_mid_run_removes_the_temporary_output(box: Sandbox, signum: int, status: int, word: str):
    args = _predict_slowly(box)
    box.start()
    process = _start(box, args)
    _wait_for(lambda: _writing_tiles(box.out), process, "the first tiles")
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    assert stderr.splitlines() == [f"Error: {word} ({signal.Signals(signum).name}); temporary output removed"]
    assert not _partials(box.out) and not box.out.exists()
    assert not box.outside_changes()
    assert not leftovers(box.root.parent / "tmp")


def test_sigterm_during_the_model_download_removes_it(box: Sandbox):
    item = write_scene(box.work / "scene")
    model = write_model(box.work / "model")
    blob = (box.work / "model" / "m.onnx").read_bytes()
    with scripted_server({"/m.onnx": (200, "application/octet-stream", blob, 60)}) as base:
        data = json.loads(model.read_text())
        data["assets"]["model"]["href"] = f"{base}/m.onnx"
        model.write_text(json.dumps(data))
        box.start()
        process = _start(box, ["predict", "-m", model, "-i", item, "-o", box.out])
        places = [box.root.parent / "tmp", box.root.parent / "cache"]

        def downloading() -> bool:
            return any(path.is_file() and path.stat().st_size > 0 for place in places for path in leftovers(place))

        _wait_for(downloading, process, "the download to start")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert len(stderr.splitlines()) == 1 and "terminated (SIGTERM)" in stderr
    assert not [path for place in places if place.exists() for path in leftovers(place)]
    assert not box.out.exists() and not _partials(box.out)


def _mark(path: Path, outdir: Path, pid: int) -> None:
    path.mkdir()
    (path / OWNER_MARK).write_text(json.dumps({"outdir": str(outdir), "host": socket.gethostname(), "pid": pid,
                                               "started": None}))


def test_after_kill_9_the_next_run_removes_its_own_stale_partial_only(box: Sandbox):
    args = _predict_slowly(box)
    process = _start(box, args)
    _wait_for(lambda: _writing_tiles(box.out), process, "the first tiles")
    process.kill()
    process.wait()
    stale = _partials(box.out)
    assert len(stale) == 1 and (stale[0] / OWNER_MARK).is_file()  # what kill -9 leaves
    foreign = box.work / ".out.someone-else.partial"  # not marked: never ours to delete
    foreign.mkdir()
    running = box.work / ".out.running.partial"  # marked by a live process (this one)
    _mark(running, box.out, os.getpid())
    other_output = box.work / ".out2.dead.partial"  # a dead run's, but for another OUTDIR
    _mark(other_output, box.work / "out2", process.pid)
    result = invoke(["predict", "-m", write_model(box.work / "fast"), "-i", write_scene(box.work / "small"),
                     "-o", box.out])
    assert result.exit_code == 0, result.output
    assert not stale[0].exists()
    assert foreign.is_dir() and running.is_dir() and other_output.is_dir()
    assert (box.out / "catalog.json").is_file() and not (box.out / OWNER_MARK).exists()


def test_a_replaced_output_caught_mid_rename_is_restored(tmp_path: Path):
    """kill -9 between moving the old OUTDIR aside and moving the new one in: the next run puts it back."""
    outdir = tmp_path / "out"
    finished = subprocess.Popen(["true"])
    finished.wait()
    trash = tmp_path / ".out.abc.old"
    _mark(trash, outdir, finished.pid)
    (trash / "out").mkdir()
    (trash / "out" / "catalog.json").write_text("{}")
    assert remove_stale(outdir) == [trash]
    assert (outdir / "catalog.json").read_text() == "{}" and not trash.exists()
