"""`mlmkit train --architecture random-forest|gradient-boosting` keeps to the rules of the net trainer: it never
replaces its training data with the model catalog, and it links the published training data it was told of."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bad_input_helpers import assert_one_line_failure, invoke, snapshot
from train_fixtures import scene, training_catalog  # noqa: F401

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")
FAST = ["--trees", "5", "--max-samples", "300", "--seed", "1"]


@pytest.fixture()
def data(training_catalog: Path, tmp_path: Path) -> Path:
    """A copy of the training catalog this test may lose."""
    copy = tmp_path / "work" / "chips"
    shutil.copytree(training_catalog, copy)
    return copy


@pytest.mark.parametrize("arch", ["random-forest", "gradient-boosting"])
@pytest.mark.parametrize("where", ["the data", "its parent", "inside it", "a split of it"])
def test_output_over_the_training_data_is_refused(data: Path, arch: str, where: str) -> None:
    source, output = {"the data": (data, data), "its parent": (data, data.parent),
                      "inside it": (data, data / "model"),
                      # only the files read from the catalog tell that this output holds training data
                      "a split of it": (data / "catalog.json", data / "train")}[where]
    before = snapshot(data.parent)
    result = invoke(["train", "--data", source, "--output", output, "--overwrite", "--architecture", arch, *FAST])
    line = assert_one_line_failure(result, 1, r"expected an output directory apart from every input")
    assert str(output) in line
    assert snapshot(data.parent) == before  # nothing of the training data replaced, nothing added


def test_published_training_data_is_linked(data: Path, tmp_path: Path) -> None:
    url = "https://data.example.org/chips/catalog.json"
    out = tmp_path / "model"
    result = invoke(["train", "--data", data, "--output", out, "--architecture", "random-forest", *FAST,
                     "--training-data-href", url])
    assert result.exit_code == 0, result.output
    item = json.loads(next(out.rglob("random-forest-pixels.json")).read_text())
    expected = sorted(f"https://data.example.org/chips/{path.relative_to(data).as_posix()}"
                      for path in data.rglob("collection.json"))
    assert len(expected) == 3
    assert sorted(link["href"] for link in item["links"] if link["rel"] == "derived_from") == expected
    assert url in item["properties"]["description"] and str(data) not in json.dumps(item)
