"""`import mlmkit`: the verbs designed as one API (one options style, typed, documented with an example, lazy),
behaving as the CLI does on the same inputs, and failing with errors whose class says what went wrong."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import warnings
from pathlib import Path

import click
import numpy as np
import pytest
import rasterio
from PIL import Image

import mlmkit
from cwl_fixtures import WINDOWS, expected_vegetation, staged_scene, vegetation_model
from mlmkit import api
from mlmkit.cli import COMMANDS, main
from mlmkit.errors import InvalidArgument, MlmkitError, NotFound

VERBS = [name for name in mlmkit.__all__ if name != "__version__"]
# API keyword -> the CLI option that sets it, where the two are not the same name (a negated flag, a repeated
# option whose values the keyword holds).
CLI_SPELLING = {"cache": "no_cache", "container": "no_container", "headers": "header", "collections": "collection",
                "assets": "asset", "params": "param", "engine_args": "engine_arg", "architecture": "arch",
                "source_item_hrefs": "source_item_href", "api": "api_url"}
SUBJECTS = {"describe": ["model"], "validate": ["sources"], "predict": ["model", "input"], "train": ["data"],
            "search": ["catalog"], "publish": ["catalog"], "run": ["model", "inputs"], "stage_in": ["hrefs"],
            "stage_out": ["catalog"], "match": ["models", "imagery"], "predict_xarray": ["model", "data"],
            "quantize": ["model", "imagery"]}


def test_the_verbs_are_the_public_names() -> None:
    assert VERBS == ["describe", "validate", "predict", "predict_xarray", "train", "quantize", "match", "search",
                     "publish", "run", "stage_in", "stage_out"]
    assert VERBS == api.__all__
    assert all(getattr(mlmkit, name) is getattr(api, name) for name in VERBS)
    with pytest.raises(AttributeError):
        mlmkit.no_such_verb  # noqa: B018


def test_import_mlmkit_loads_no_runtime() -> None:
    """The verbs import what they need when called: `import mlmkit` (and looking a verb up) stays light."""
    code = ("import sys, mlmkit; mlmkit.predict; mlmkit.train; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'onnx', 'rasterio', 'pystac', 'sklearn') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", VERBS)
def test_one_options_style_typed_and_documented(name: str) -> None:
    verb = getattr(mlmkit, name)
    signature = inspect.signature(verb)
    hints = verb.__annotations__  # strings: the types of mlmkit's own results are imported only to check types
    positional = [p.name for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == SUBJECTS[name]  # what it works on, positionally; every option a keyword
    assert all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in signature.parameters.values())
    assert set(hints) == set(signature.parameters) | {"return"}  # every parameter and the result typed
    for option, default in (("overwrite", False), ("schema_dir", None), ("progress", None)):
        if option in signature.parameters:
            assert signature.parameters[option].default is default, (name, option)
    doc = inspect.getdoc(verb)
    assert f"mlmkit.{name}(" in doc.split("Example:")[1] and "```python" in doc


@pytest.mark.parametrize("name", [verb for verb in VERBS if verb not in ("describe", "predict_xarray")])
def test_keywords_are_the_cli_options(name: str) -> None:
    """Each keyword is the option of the command of the same name (describe takes its metadata as `spec`;
    predict_xarray has no command: its keywords are predict's)."""
    command = main.get_command(click.Context(main), name.replace("_", "-"))
    options = {opt.lstrip("-").replace("-", "_") for param in command.params for opt in param.opts}
    keywords = [p.name for p in inspect.signature(getattr(mlmkit, name)).parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.name not in ("progress", "semantic")]
    missing = [word for word in keywords if word not in options and CLI_SPELLING.get(word) not in options]
    assert not missing, f"{name}: {missing} are no options of `mlmkit {name}`"
    assert name.replace("_", "-") in COMMANDS


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api")
    staged_scene(root / "scene", *WINDOWS[0], "s2-window-0")
    vegetation_model(root / "cli-model")
    return root


def test_describe_validate_predict_search_as_the_cli_does(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from predict_helpers import conv_model

    onnx = conv_model(work / "vegetation.onnx", np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros(2))
    spec = {"name": "NIR over red", "architecture": "1x1 conv", "tasks": ["semantic-segmentation"],
            "bands": [{"name": "B04", "common_name": "red"}, {"name": "B08", "common_name": "nir"}],
            "classes": [{"value": 0, "name": "other"}, {"value": 1, "name": "vegetation", "color_hint": "2CA02C"}],
            "license": "Apache-2.0"}
    catalog = mlmkit.describe(onnx, output=work / "model", spec=spec)
    assert catalog == work / "model" / "catalog.json"
    described = json.loads(next((work / "model").rglob("nir-over-red.json")).read_text())
    by_cli = json.loads(next((work / "cli-model").rglob("nir-over-red.json")).read_text())
    assert described["properties"] == by_cli["properties"]  # the CLI's options and the API's spec give one Item
    report = mlmkit.validate([work / "model", work / "cli-model"])
    assert report.problems == [] and report.documents == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about on this input
        result = mlmkit.predict(work / "model", work / "scene", output=work / "prediction", overlap=16)
    assert result == (work / "prediction" / "catalog.json").absolute()
    with rasterio.open(next((work / "prediction").rglob("classes.tif"))) as dataset:
        np.testing.assert_array_equal(dataset.read(1), expected_vegetation(*WINDOWS[0]))
    look = np.asarray(Image.open(next((work / "prediction").rglob("quicklook.png"))).convert("RGB"))
    assert look.shape[0] > 256 + 20  # the class map, a title above it and a legend below it
    title_rows = look[:20]
    assert (title_rows < 64).all(axis=2).any() and (title_rows == 255).all(axis=2).mean() > 0.5  # dark text on white
    matches = mlmkit.search(work / "model", task="semantic-segmentation", bands=["nir", "B04"])
    assert [match.item["id"] for match in matches] == ["nir-over-red"]
    assert mlmkit.search(work / "model", bands=["swir16"]) == []


def test_errors_say_what_went_wrong(work: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        mlmkit.predict(work / "no-model", work / "scene", output=work / "out")
    with pytest.raises(NotFound, match="without catalog.json"):
        mlmkit.validate(work / "scene" / "s2-window-0" / ".." / "..")
    with pytest.raises(InvalidArgument, match="exactly one place"):
        mlmkit.search()
    with pytest.raises(InvalidArgument, match="west > east"):
        mlmkit.search(work / "model", bbox=(5, 0, 1, 1))
    with pytest.raises(InvalidArgument, match="not RFC 3339"):
        mlmkit.search(work / "model", datetime="yesterday")
    with pytest.raises(MlmkitError) as raised:
        mlmkit.train(work / "scene", output=work / "trained", epochs=1)
    assert "expected items with the label extension" in str(raised.value) and "--" not in str(raised.value)


def test_predict_xarray_takes_predicts_keywords_that_concern_the_model() -> None:
    keywords = {p.name for p in inspect.signature(mlmkit.predict_xarray).parameters.values() if p.kind is p.KEYWORD_ONLY}
    predict = {p.name: p.default for p in inspect.signature(mlmkit.predict).parameters.values()}
    assert keywords <= set(predict) and "resolution" not in keywords and "output" not in keywords
    assert all(inspect.signature(mlmkit.predict_xarray).parameters[word].default == predict[word] for word in keywords)
