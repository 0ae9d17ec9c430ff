"""The distribution as a user gets it, not the checkout.

`python -m build` makes an sdist and, from it, a wheel. The wheel goes into a fresh venv in a temporary folder
outside the checkout, with no schema mirror, an empty cache and every HTTP(S) request sent to a closed port; there
it runs describe, validate, predict, chips, train, release and run (cwltool without containers). The fresh venv
holds nothing but the wheel: mlmkit's dependencies (numpy, rasterio, onnxruntime, torch, cwltool, ...) are read from
the test's own venv through a path file, which Python does not scan for further path files, so the checkout's
editable install stays out of reach (checked). Installing those dependencies again would only test pip and the
package index, and take most of the CI budget.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio

from cwl_fixtures import WINDOWS, expected_vegetation, staged_scene
from predict_helpers import conv_model
from train_fixtures import CLASSES_SPEC, write_scene
from mlmkit import __version__

REPO = Path(__file__).resolve().parents[1]
DIGEST = "sha256:" + "ab" * 32
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Fresh:
    root: Path   # the working directory of every command, outside the checkout
    venv: Path
    env: dict[str, str]
    cache: Path

    def run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(arg) for arg in args], capture_output=True, text=True, cwd=self.root,
                                env=self.env)
        if check:
            assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
        return result

    def mlmkit(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(self.venv / "bin" / "mlmkit", *args, check=check)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def fresh(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Fresh:
    root = tmp_path_factory.mktemp("fresh")
    assert not root.resolve().is_relative_to(REPO)
    venv.EnvBuilder(with_pip=False).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    wheel = next(dist.glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    closed = "http://127.0.0.1:9"  # nothing listens there: any download fails at once
    env = {key: value for key, value in os.environ.items()
           if key not in ("MLMKIT_SCHEMA_DIR", "MLMKIT_CWL_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{root / 'venv' / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
               XDG_CACHE_HOME=str(root / "cache"), HOME=str(root), NO_PROXY="", no_proxy="",
               **{name: closed for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")})
    return Fresh(root, root / "venv", env, root / "cache")


def tracked_packages() -> set[str]:
    return {path.relative_to(REPO / "cwl").as_posix() for pattern in ("*.cwl", "stage/*.cwl", "params/*.yml")
            for path in (REPO / "cwl").glob(pattern)}


def test_sdist_and_wheel_carry_packages_schemas_and_typing(dist: Path) -> None:
    wheel = dist / f"mlmkit-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"mlmkit-{__version__}.dist-info/METADATA").decode()
        for name in tracked_packages():
            assert archive.read(f"mlmkit/cwl/{name}") == (REPO / "cwl" / name).read_bytes(), name
    schemas = REPO / "src" / "mlmkit" / "stac" / "json-schemas"
    expected = {f"mlmkit/stac/json-schemas/{path.relative_to(schemas).as_posix()}" for path in schemas.rglob("*.json")}
    assert len(expected) >= 50 and expected <= names
    assert {"mlmkit/py.typed", f"mlmkit-{__version__}.dist-info/licenses/NOTICE",
            f"mlmkit-{__version__}.dist-info/licenses/LICENSE"} <= names
    assert re.search(rf"^Version: {re.escape(__version__)}$", metadata, re.M)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    required = re.findall(r"^Requires-Dist: ([^;\n]+)$", metadata, re.M)
    assert {dep.replace(" ", "") for dep in declared} <= {dep.replace(" ", "") for dep in required}
    with tarfile.open(dist / f"mlmkit-{__version__}.tar.gz") as sdist:
        members = {member.name.split("/", 1)[1]: member for member in sdist.getmembers() if "/" in member.name}
    for name in ("CHANGELOG.md", "NOTICE", "LICENSE", "README.md", "src/mlmkit/py.typed",
                 *(f"src/mlmkit/cwl/{name}" for name in tracked_packages())):
        assert members[name].isfile(), name  # files, not the checkout's link to cwl/


def test_the_installed_wheel_runs_not_the_checkout(fresh: Fresh) -> None:
    assert fresh.mlmkit("--version").stdout.strip() == f"mlmkit, version {__version__}"
    probe = fresh.run(fresh.venv / "bin" / "python", "-c", (
        "import importlib.resources, sys, mlmkit; "
        "assert not any(name in sys.modules for name in ('torch', 'onnxruntime', 'rasterio')); "
        "print(mlmkit.__file__); print(importlib.resources.files('mlmkit') / 'cwl' / 'inference.cwl'); "
        "print(all('src' not in entry.split('/') for entry in sys.path))"))
    module, package, clean = probe.stdout.split()
    assert Path(module).is_relative_to(fresh.venv) and Path(package).is_file() and clean == "True"


def test_validate_with_no_flags_is_offline(fresh: Fresh, mlm_examples: Path) -> None:
    sources = sorted(mlm_examples.glob("*.json"))
    result = fresh.mlmkit("validate", *sources)
    assert result.stderr.strip() == f"validate: 19 documents in {len(sources)} sources valid"
    assert not (fresh.cache / "mlmkit" / "schemas").exists()  # nothing was downloaded


def test_describe_validate_predict_release(fresh: Fresh) -> None:
    onnx = conv_model(fresh.root / "vegetation.onnx", np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros(2))
    fresh.mlmkit("describe", onnx, "-o", "model", "--name", "NIR over red", "--architecture", "1x1 conv",
                 "--task", "semantic-segmentation", "--band", "B04:red", "--band", "B08:nir", "--class", "0:other",
                 "--class", "1:vegetation:2CA02C", "--license", "Apache-2.0")
    fresh.mlmkit("validate", "model")
    staged_scene(fresh.root / "scene", *WINDOWS[0], "s2-window-0")
    fresh.mlmkit("predict", "--model", "model", "--input", "scene", "--output", "prediction", "-q")
    classes = next((fresh.root / "prediction").rglob("classes.tif"))
    with rasterio.open(classes) as dataset:
        np.testing.assert_array_equal(dataset.read(1), expected_vegetation(*WINDOWS[0]))
    fresh.mlmkit("release", "--base-url", "https://example.org/v1/", "-o", "release",
                 "--image", f"mlmkit:{__version__}=ghcr.io/mlmkit/mlmkit@{DIGEST}",
                 "--image", f"mlmkit:{__version__}-training=ghcr.io/mlmkit/mlmkit-training@{DIGEST}")
    released = (fresh.root / "release" / "inference.cwl").read_text()
    assert f"ghcr.io/mlmkit/mlmkit@{DIGEST}" in released and f"mlmkit:{__version__}\n" not in released
    assert json.loads((fresh.root / "release" / "ogc" / "mlmkit-inference.json").read_text())["version"] == __version__


def test_train_writes_runtime_assets_and_run_uses_them(fresh: Fresh) -> None:
    """The trained model's runtime assets are the wheel's packages; `mlmkit run` runs its inference package with
    cwltool and gives the classes `mlmkit predict` gives."""
    scene, labels = write_scene(fresh.root / "synthetic")
    fresh.mlmkit("chips", "--imagery", scene, "--labels", labels, "--classes", CLASSES_SPEC, "--chip-size", "16",
                 "--block-size", "2", "--split", "0.5,0.25,0.25", "-o", "chips", "-q")
    fresh.mlmkit("train", "--data", "chips", "-o", "trained", "--epochs", "1", "--width", "4", "--batch-size", "8",
                 "--model-id", "wheel-unet", "-q")
    item = json.loads(next((fresh.root / "trained").rglob("wheel-unet.json")).read_text())
    runtimes = {role: asset["href"] for asset in item["assets"].values() for role in asset["roles"]
                if role in ("mlm:inference-runtime", "mlm:training-runtime")}
    assert set(runtimes) == {"mlm:inference-runtime", "mlm:training-runtime"}
    item_dir = next((fresh.root / "trained").rglob("wheel-unet.json")).parent
    for role, name in (("mlm:inference-runtime", "inference.cwl"), ("mlm:training-runtime", "training.cwl")):
        assert (item_dir / runtimes[role]).read_bytes() == (REPO / "cwl" / name).read_bytes()
    fresh.mlmkit("validate", "trained")
    fresh.mlmkit("predict", "--model", "trained", "--input", scene, "--output", "direct", "-q")
    run = fresh.mlmkit("run", "--model", "trained", "--input", scene, "--outdir", "runs", "--no-container")
    assert run.stdout.strip() == str(fresh.root / "runs" / "results" / "catalog.json")
    through_cwl, direct = (next((fresh.root / folder).rglob("classes.tif")) for folder in ("runs", "direct"))
    with rasterio.open(through_cwl) as one, rasterio.open(direct) as other:
        assert one.read(1).shape == (96, 96)
        np.testing.assert_array_equal(one.read(1), other.read(1))
