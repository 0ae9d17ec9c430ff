"""Models from where models live: the download cache keyed by file:checksum (a hit skips the download, a
corrupt copy is refetched), resumed and verified downloads, temporary copies that never outlive the run,
and models and imagery on S3 (a moto server on loopback), with one-line errors for missing or denied objects."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import boto3
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from mlmkit.stac.checksum import file_checksum, verify_checksum
from mlmkit.cli import main
from mlmkit.errors import CacheWarning, InvalidInput
from mlmkit.stac.fetch import cache_root, cache_size, local_copy
from mlmkit.stac.objstore import gdal_config, gdal_path, store_config
from mlmkit.inference import PredictOptions, predict
from mlmkit.progress import NORMAL, Progress
from mlmkit.stac.read import resolve_href
from http_helpers import counting_server
from predict_helpers import conv_model, imagery_item, mlm_input, mlm_item, mlm_output, write_raster
from s3_helpers import moto_s3, s3_environment

WEIGHTS = np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, -0.5]])
CLASSES = [{"value": 0, "name": "a", "description": "a"}, {"value": 1, "name": "b", "description": "b"}]
SEG = ["batch", "class", "height", "width"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where temporary downloads would stay


@pytest.fixture()
def scene(tmp_path: Path) -> Path:
    data = (np.arange(3 * 40 * 48, dtype=np.uint16).reshape(3, 40, 48) * 7) % 500 + 1
    write_raster(tmp_path / "img.tif", data)
    return imagery_item(tmp_path / "item.json", {"img": ("./img.tif", ["B04", "B03", "B02"])})


@pytest.fixture()
def served(tmp_path: Path) -> Path:
    """A directory with the model file, to be served."""
    folder = tmp_path / "served"
    folder.mkdir()
    conv_model(folder / "m.onnx", WEIGHTS, np.zeros(2))
    return folder


def _item(tmp_path: Path, model: Path, href: str, checksum: str | None = "auto") -> Path:
    path = mlm_item(tmp_path / "model.json", model, [mlm_input("input", ["B04", "B03", "B02"], 3)],
                    [mlm_output("out", ["semantic-segmentation"], [-1, 2, -1, -1], SEG, CLASSES)], checksum=checksum)
    data = json.loads(path.read_text())
    data["assets"]["model"]["href"] = href
    path.write_text(json.dumps(data))
    return path


def _classes(catalog: Path) -> np.ndarray:
    with rasterio.open(next(catalog.parent.rglob("classes.tif"))) as src:
        return src.read(1)


def _expected(scene: Path) -> np.ndarray:
    """argmax of the 1x1 convolution, computed here with numpy."""
    with rasterio.open(scene.parent / "img.tif") as src:
        pixels = src.read().astype(np.float64)
    return np.argmax(np.einsum("kc,chw->khw", WEIGHTS, pixels), axis=0)


def _run(model: Path, scene: Path, out: Path, **options) -> np.ndarray:
    options.setdefault("progress", Progress(NORMAL))  # as the CLI reports (library calls are silent)
    return _classes(predict(str(model), str(scene), out, PredictOptions(**options)))


def test_cache_hit_skips_the_download(tmp_path, scene, served, capsys):
    with counting_server(served) as server:
        model = _item(tmp_path, served / "m.onnx", f"{server.base}/m.onnx")
        first = _run(model, scene, tmp_path / "first")
        second = _run(model, scene, tmp_path / "second")
        assert len(server.gets("/m.onnx")) == 1  # the second run found it in the cache
    np.testing.assert_array_equal(first, _expected(scene))
    np.testing.assert_array_equal(second, first)
    cached = cache_root() / file_checksum(served / "m.onnx") / "m.onnx"
    assert cached.read_bytes() == (served / "m.onnx").read_bytes()
    assert cache_size() == cached.stat().st_size
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("download model:")]
    assert len(lines) == 1, lines  # one summary line, for the one download


def test_the_cache_command_reports_and_clears(tmp_path, served):
    checksum = file_checksum(served / "m.onnx")
    with counting_server(served) as server, local_copy(f"{server.base}/m.onnx", checksum):
        pass
    report = CliRunner().invoke(main, ["cache"])
    size = (served / "m.onnx").stat().st_size
    assert report.exit_code == 0
    assert report.output.splitlines() == [f"{cache_root()}: 1 file(s), {size} B",
                                          f"  {checksum[:16]}…/m.onnx  {size} B"]
    cleared = CliRunner().invoke(main, ["cache", "--clear"])
    assert cleared.output == f"{cache_root()}: 0 file(s), 0 B\n" and not cache_root().exists()


def test_a_corrupt_cached_copy_is_refused_and_fetched_again(tmp_path, scene, served):
    with counting_server(served) as server:
        model = _item(tmp_path, served / "m.onnx", f"{server.base}/m.onnx")
        _run(model, scene, tmp_path / "first")
        cached = cache_root() / file_checksum(served / "m.onnx") / "m.onnx"
        cached.write_bytes(b"not the model")
        with pytest.warns(CacheWarning, match="did not match its file:checksum; fetched it again"):
            classes = _run(model, scene, tmp_path / "second")
        assert len(server.gets("/m.onnx")) == 2
    verify_checksum(cached, file_checksum(served / "m.onnx"))
    np.testing.assert_array_equal(classes, _expected(scene))


def test_no_cache_downloads_to_a_temporary_place_that_is_removed(tmp_path, scene, served):
    with counting_server(served) as server:
        model = _item(tmp_path, served / "m.onnx", f"{server.base}/m.onnx")
        _run(model, scene, tmp_path / "first", model_cache=False)
        _run(model, scene, tmp_path / "second", model_cache=False)
        assert len(server.gets("/m.onnx")) == 2
    assert not cache_root().exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_model_without_checksum_is_not_cached(tmp_path, scene, served):
    with counting_server(served) as server:
        model = _item(tmp_path, served / "m.onnx", f"{server.base}/m.onnx", checksum=None)
        _run(model, scene, tmp_path / "first")
        _run(model, scene, tmp_path / "second")
        assert len(server.gets("/m.onnx")) == 2
    assert not cache_root().exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_dropped_connection_resumes_with_a_range_request(tmp_path, scene, served):
    size = (served / "m.onnx").stat().st_size
    with counting_server(served) as server:
        server.cut_after["/m.onnx"] = 100
        model = _item(tmp_path, served / "m.onnx", f"{server.base}/m.onnx")
        classes = _run(model, scene, tmp_path / "out")
        gets = server.gets("/m.onnx")
    assert [(r.range, r.sent) for r in gets] == [(None, 100), ("bytes=100-", size - 100)]
    np.testing.assert_array_equal(classes, _expected(scene))


def test_an_interrupted_download_resumes_from_its_part_file(tmp_path, served):
    checksum = file_checksum(served / "m.onnx")
    data = (served / "m.onnx").read_bytes()
    entry = cache_root() / checksum
    entry.mkdir(parents=True)
    (entry / "m.onnx.part").write_bytes(data[:150])  # what an interrupted earlier run left
    seen = []
    with counting_server(served) as server:
        with local_copy(f"{server.base}/m.onnx", checksum, progress=lambda done, total: seen.append((done, total))) \
                as path:
            assert path.read_bytes() == data
        assert [(r.range, r.sent) for r in server.gets("/m.onnx")] == [("bytes=150-", len(data) - 150)]
    assert seen[0] == (150, len(data)) and seen[-1] == (len(data), len(data))
    assert not (entry / "m.onnx.part").exists()


def test_a_library_download_without_progress_is_silent(tmp_path, served, capfd):
    """No progress hook (a library caller, e.g. predict_xarray): no line on stderr, the file still whole."""
    with counting_server(served) as server:
        with local_copy(f"{server.base}/m.onnx", file_checksum(served / "m.onnx"), progress=None) as path:
            assert path.read_bytes() == (served / "m.onnx").read_bytes()
        assert len(server.gets("/m.onnx")) == 1
    assert capfd.readouterr().err == ""


def test_an_interrupt_removes_the_temporary_download(tmp_path, served):
    def interrupt(done: int, total: int | None) -> None:
        if done:
            raise KeyboardInterrupt  # what SIGINT (or SIGTERM turned into an exception) does mid-download

    with counting_server(served) as server:
        with pytest.raises(KeyboardInterrupt):
            with local_copy(f"{server.base}/m.onnx", None, cache=False, progress=interrupt):
                pass
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_download_that_does_not_match_its_checksum_is_refused(tmp_path, scene, served):
    other = conv_model(tmp_path / "other.onnx", -WEIGHTS, np.ones(2))
    with counting_server(served) as server:
        model = _item(tmp_path, served / "m.onnx", f"{server.base}/m.onnx", checksum=file_checksum(other))
        with pytest.raises(InvalidInput, match="does not match its file:checksum") as info:
            _run(model, scene, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (cache_root() / file_checksum(other)).exists()  # nothing kept, not even an empty entry
    assert not (tmp_path / "out").exists()


def test_a_missing_model_url_is_one_line(tmp_path, scene, served):
    with counting_server(served) as server:
        model = _item(tmp_path, served / "m.onnx", f"{server.base}/gone.onnx")
        with pytest.raises(InvalidInput, match=r"gone.onnx does not exist \(HTTP 404\)"):
            _run(model, scene, tmp_path / "out")


def test_an_unreachable_server_is_one_line_after_retries(tmp_path, scene, served):
    with counting_server(served) as server:
        href = f"{server.base}/m.onnx"  # the port is free again once the server has stopped
    model = _item(tmp_path, served / "m.onnx", href)
    with pytest.raises(InvalidInput, match=r"cannot download .*m.onnx: .* \(4 attempts\)") as info:
        _run(model, scene, tmp_path / "out")
    assert "\n" not in str(info.value)


# --- object stores ---------------------------------------------------------------------------------------------

def test_object_hrefs_map_to_gdal_paths_and_store_settings():
    assert gdal_path("s3://bucket/a/b.tif") == "/vsis3/bucket/a/b.tif"
    assert gdal_path("gs://bucket/b.tif") == "/vsigs/bucket/b.tif"
    assert gdal_path("az://container/b.tif") == "/vsiaz/container/b.tif"
    assert gdal_path("/data/b.tif") == "/data/b.tif"
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}
    assert gdal_config(["s3://b/k.tif"], env) == {"AWS_S3_ENDPOINT": "127.0.0.1:9000", "AWS_HTTPS": "NO",
                                                  "AWS_VIRTUAL_HOSTING": "FALSE"}
    assert gdal_config(["/local.tif"], env) == {}
    assert gdal_config(["s3://b/k.tif"], {**env, "AWS_S3_ENDPOINT": "minio:9000"}) == {}  # GDAL's own wins
    assert store_config("s3", {**env, "AWS_NO_SIGN_REQUEST": "YES"}) == {
        "skip_signature": True, "endpoint": "http://127.0.0.1:9000", "virtual_hosted_style_request": False,
        "client_options": {"allow_http": True}}
    assert store_config("gs", {"GS_NO_SIGN_REQUEST": "YES"}) == {"skip_signature": True}
    assert store_config("az", {"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_NO_SIGN_REQUEST": "yes"}) == {
        "skip_signature": True, "account_name": "acct"}
    assert resolve_href("../img/b.tif", "s3://bucket/items/item.json") == "s3://bucket/img/b.tif"
    assert resolve_href("s3://bucket/b.tif", "/catalog/item.json") == "s3://bucket/b.tif"


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch):
    with moto_s3() as endpoint:
        s3_environment(monkeypatch, endpoint)
        yield boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")


def _upload(client, bucket: str, files: dict[str, Path], public: bool = False) -> None:
    client.create_bucket(Bucket=bucket)
    for key, path in files.items():
        client.upload_file(str(path), bucket, key, ExtraArgs={"ACL": "public-read"} if public else None)


def test_model_and_imagery_on_s3(tmp_path, scene, served, s3):
    _upload(s3, "models", {"seg/m.onnx": served / "m.onnx"})
    _upload(s3, "imagery", {"scenes/img.tif": scene.parent / "img.tif"})
    remote_scene = imagery_item(tmp_path / "remote-item.json", {"img": ("s3://imagery/scenes/img.tif",
                                                                        ["B04", "B03", "B02"])})
    model = _item(tmp_path, served / "m.onnx", "s3://models/seg/m.onnx")
    classes = _run(model, remote_scene, tmp_path / "out")
    np.testing.assert_array_equal(classes, _expected(scene))
    assert (cache_root() / file_checksum(served / "m.onnx") / "m.onnx").is_file()


def test_public_objects_are_read_anonymously(tmp_path, scene, served, s3, monkeypatch):
    _upload(s3, "open-data", {"m.onnx": served / "m.onnx", "img.tif": scene.parent / "img.tif"}, public=True)
    monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "YES")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    remote_scene = imagery_item(tmp_path / "remote-item.json", {"img": ("s3://open-data/img.tif",
                                                                        ["B04", "B03", "B02"])})
    classes = _run(_item(tmp_path, served / "m.onnx", "s3://open-data/m.onnx"), remote_scene, tmp_path / "out")
    np.testing.assert_array_equal(classes, _expected(scene))


@pytest.mark.parametrize("href, anonymous, message", [
    ("s3://models/missing.onnx", False, "s3://models/missing.onnx does not exist"),
    ("s3://no-such-bucket/m.onnx", False, "does not exist"),
    ("s3://models/m.onnx", True, "access to s3://models/m.onnx was denied"),
])
def test_s3_model_errors_are_one_line(tmp_path, scene, served, s3, monkeypatch, href, anonymous, message):
    _upload(s3, "models", {"m.onnx": served / "m.onnx"})  # private
    if anonymous:
        monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "YES")
    with pytest.raises(InvalidInput, match=message) as info:
        _run(_item(tmp_path, served / "m.onnx", href), scene, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_s3_imagery_is_one_line(tmp_path, served, s3):
    _upload(s3, "imagery", {})
    remote_scene = imagery_item(tmp_path / "remote-item.json",
                                {"img": ("s3://imagery/gone.tif", ["B04", "B03", "B02"])})
    with pytest.raises(InvalidInput, match="cannot read imagery asset s3://imagery/gone.tif") as info:
        _run(_item(tmp_path, served / "m.onnx", str(served / "m.onnx")), remote_scene, tmp_path / "out")
    assert "\n" not in str(info.value)
