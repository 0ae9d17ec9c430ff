"""The training run's catalog: MLM Item (via mlmkit.mlm.build), metrics JSON, confusion-matrix PNG,
extra artefacts (e.g. a checkpoint), runtime CWL assets and derived_from links to the split collections
it learned from. Shared by every trainer (PyTorch nets, scikit-learn pixel classifiers): no torch here."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
from PIL import Image, ImageDraw
from pystac.utils import make_relative_href

from mlmkit.stac.atomic import check_output_dir
from mlmkit.drawing import PAD, TEXT_SIZE, font, text_width, vertical_text
from mlmkit.errors import InvalidArgument, InvalidMetadata
from mlmkit.catalog.model_catalog import write_model_catalog
from mlmkit.mlm.build import ModelMetadata, build_model_item
from mlmkit.catalog.provenance import is_file_uri, lineage_href
from mlmkit.packages.release import INFERENCE_IMAGE, PACKAGES, packages_dir, source_code_url
from mlmkit.stac.read import is_url
from mlmkit.training.catalog_reader import TrainingData, read_training_data
from mlmkit.training.layout import ML_AOI_EXT, SEGMENTATION

CELL = 56
# The papers that introduced the architectures mlmkit trains (sci:publications of the trained models).
PUBLICATIONS = {
    "unet": {"doi": "10.1007/978-3-319-24574-4_28",
             "citation": "Ronneberger, O., Fischer, P., Brox, T. (2015). U-Net: Convolutional Networks for Biomedical "
                         "Image Segmentation. MICCAI 2015, LNCS 9351, 234-241."},
    "resnet18": {"doi": "10.1109/CVPR.2016.90",
                 "citation": "He, K., Zhang, X., Ren, S., Sun, J. (2016). Deep Residual Learning for Image "
                             "Recognition. CVPR 2016, 770-778."},
    "random-forest": {"doi": "10.1023/A:1010933404324",
                      "citation": "Breiman, L. (2001). Random Forests. Machine Learning 45, 5-32."},
    "gradient-boosting": {"doi": "10.1214/aos/1013203451",
                          "citation": "Friedman, J. H. (2001). Greedy function approximation: A gradient boosting "
                                      "machine. The Annals of Statistics 29(5), 1189-1232."},
}


class _DerivedFromLink(pystac.Link):
    """A derived_from link that keeps its `ml-aoi:split` through Link.clone (which drops extra fields) and,
    when `relative`, is written relative to the Item like hierarchical links, so the model and training
    catalogs can move together (pystac leaves other local links absolute: here, inside a temporary directory
    beside the output, so the relative href is the same as from the output)."""

    relative = True

    def clone(self) -> _DerivedFromLink:
        link = super().clone()
        link.extra_fields = dict(self.extra_fields)
        link.relative = self.relative
        return link

    def get_href(self, transform_href: bool = True) -> str | None:
        href = super().get_href(transform_href)
        owner = self.owner.get_self_href() if self.owner is not None else None
        if self.relative and transform_href and href and owner and os.path.isabs(href) and not is_url(owner):
            return make_relative_href(href, os.path.realpath(owner))
        return href


def training_catalog_name(data: TrainingData) -> str:
    """How a model's description names its training data: the catalog's URL, else its id (never a local,
    perhaps temporary, path)."""
    return f"the training catalog {data.source if is_url(data.source) else repr(data.catalog_id)}"


def derived_from_link(href: str, outdir: Path, what: str, option: str,
                      extra_fields: dict | None = None) -> pystac.Link | None:
    """A derived_from link from a model catalog at `outdir` to `href`, by mlmkit.catalog.provenance's rules;
    None (with a warning naming `option`) where `href` lies in a temporary place the catalog does not share."""
    settled = lineage_href(href, Path(outdir).absolute() / "catalog.json", what, option)
    if settled is None:
        return None
    relative = not (is_url(settled) or is_file_uri(settled) or os.path.isabs(settled))  # made relative when written
    link = _DerivedFromLink("derived_from", os.path.realpath(href) if relative else settled,
                            media_type="application/json", title=what, extra_fields=dict(extra_fields or {}))
    link.relative = relative
    return link


def training_data_links(data: TrainingData, outdir: Path) -> list[pystac.Link]:
    """derived_from links to the split collections, by mlmkit.catalog.provenance's rules for a model catalog at `outdir`."""
    links = [derived_from_link(href, outdir, f"training data ({split} split)",
                               "the CWL package's training_data_href input, or train's training_data_href argument",
                               {"ml-aoi:split": split})
             for split, split_data in data.splits.items() for href in split_data.collections]
    return [link for link in links if link is not None]


@dataclass(frozen=True)
class RunInfo:
    """What the output catalog records about the run beyond the trained model."""

    model_id: str
    onnx_max_abs_diff: float
    training_cwl: str | None = None
    inference_cwl: str | None = None
    exported_program: Path | None = None   # the model as a torch.export.save file: a second mlm:model asset
    exported_max_abs_diff: float | None = None
    version: str = "1.0.0"
    experimental: bool = False
    citation: str | None = None
    doi: str | None = None


# mlm:name as the MLM v1.5.2 schema allows it; a trained model's id is its name too
MLM_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.\-\s]+[a-zA-Z0-9]$")


def check_model_id(model_id: str | None) -> None:
    """Refuse a model id the model Item could not carry as mlm:name, before any training time is spent."""
    if model_id is not None and not MLM_NAME.fullmatch(model_id):
        raise InvalidArgument(f"model id {model_id!r} is not a valid mlm:name (the model's id is its name); expected a letter first, then letters, "
                           "digits, '_', '.', '-' or spaces, ending in a letter or digit (e.g. unet-s2-water)")


def read_run_data(data: str, outdir: Path, *, overwrite: bool, model_id: str | None, task: str | None,
                  bands: Sequence[str], published: str | None) -> TrainingData:
    """What every trainer checks and reads before it spends training time: an output directory apart from the
    training catalog `data` and from every file read from it, a valid model id, and the training data, read
    with `published` (the URL `data` is published at) for the MLM Item's derived_from links."""
    check_output_dir(outdir, overwrite, inputs=[data])
    check_model_id(model_id)
    training = read_training_data(data, task, bands, published)
    check_output_dir(outdir, overwrite, inputs=training.files)
    return training


def runtime_hrefs(training: str | None, inference: str | None) -> dict[str, str]:
    """Given hrefs (release URLs or files) win; otherwise the repository's CWL files where they exist."""
    hrefs = {}
    for role, given in (("mlm:training-runtime", training), ("mlm:inference-runtime", inference)):
        default = packages_dir() / PACKAGES[role]
        if given:
            hrefs[role] = given
        elif default.is_file():
            hrefs[role] = str(default)
    return hrefs


def confusion_png(matrix: np.ndarray, names: list[str], path: Path) -> None:
    """Row-normalised confusion matrix with counts: true classes down the rows, predicted across the columns,
    full class names and axis titles."""
    matrix = np.asarray(matrix)
    k = len(names)
    label = max(text_width(name) for name in names) + 2 * PAD
    axis = TEXT_SIZE + 2 * PAD
    title_h = TEXT_SIZE + 2 + 2 * PAD
    left, top = axis + label, title_h + axis + label
    title = "Validation confusion matrix (counts; shade: share of the true class)"
    image = Image.new("RGBA", (max(left + k * CELL + PAD, text_width(title) + 2 * PAD), top + k * CELL + PAD), "white")
    draw = ImageDraw.Draw(image)
    draw.text(((image.width - text_width(title)) // 2, PAD), title, fill="black", font=font())
    heading = "predicted class"
    draw.text((left + (k * CELL - text_width(heading)) // 2, title_h), heading, fill="black", font=font())
    true_axis = vertical_text("true class")
    image.alpha_composite(true_axis, (PAD // 2, top + max(0, (k * CELL - true_axis.height) // 2)))
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    for i, name in enumerate(names):
        draw.text((left - PAD - text_width(name), top + i * CELL + (CELL - TEXT_SIZE) // 2), name, fill="black",
                  font=font())
        column = vertical_text(name)
        image.alpha_composite(column, (left + i * CELL + (CELL - column.width) // 2, top - PAD - column.height))
        for j in range(k):
            shade = int(255 * (1 - share[i, j]))
            box = (left + j * CELL, top + i * CELL, left + (j + 1) * CELL - 1, top + (i + 1) * CELL - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline="grey")
            count = str(int(matrix[i, j]))
            draw.text((box[0] + (CELL - text_width(count, TEXT_SIZE - 2)) // 2, box[1] + (CELL - TEXT_SIZE) // 2),
                      count, fill="white" if share[i, j] > 0.5 else "black", font=font(TEXT_SIZE - 2))
    image.convert("RGB").save(path)


def training_extent(data: TrainingData) -> tuple[list[float], str, str]:
    boxes = np.array([b for s in data.splits.values() for b in s.bboxes])
    times = sorted(t for s in data.splits.values() for period in s.periods for t in period if t is not None)
    if not times:
        raise InvalidMetadata(f"no chip of {data.source} has a datetime; expected datetime or start/end_datetime")
    bbox = [float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max())]
    return bbox, times[0].isoformat(), times[-1].isoformat()


def task_names(task: str) -> list[str]:
    """mlm:tasks of a model trained for `task`: the specific task and its generic one."""
    return [task, "segmentation"] if task == SEGMENTATION else [task, "classification"]


def validation_metrics(validation: dict, test: dict | None, task: str) -> dict:
    """The `mlmkit:` properties a model Item carries about how well it scored."""
    metrics = {"mlmkit:validate_overall_accuracy": validation["overall_accuracy"],
               "mlmkit:validate_mean_f1": validation["mean_f1"], "mlmkit:validate_f1": validation["f1"]}
    if task == SEGMENTATION:
        metrics["mlmkit:validate_miou"] = validation["miou"]
    if test:
        metrics["mlmkit:test_overall_accuracy"] = test["overall_accuracy"]
    return metrics


def documentation(data: TrainingData, run: RunInfo, arch: str) -> dict:
    """The ModelMetadata fields the MLM best practices ask for beyond the model itself: the product the model
    eats, its code and container, how to cite it, its version."""
    return dict(processing_level=data.processing.get("processing:level"),
                processing_lineage=data.processing.get("processing:lineage"),
                source_code=source_code_url(), entrypoint="mlmkit.inference:predict", container=INFERENCE_IMAGE,
                citation=run.citation, doi=run.doi, publications=[PUBLICATIONS[arch]] if arch in PUBLICATIONS else [],
                version=run.version, experimental=run.experimental)


def write_training_catalog(outdir: Path, workdir: Path, onnx_path: Path, meta: ModelMetadata, data: TrainingData,
                           metrics: dict, confusion: np.ndarray, run: RunInfo,
                           extra: dict[str, tuple[Path, pystac.Asset]] | None = None, overwrite: bool = False,
                           schema_dir: Path | None = None) -> Path:
    """Write the model catalog at `outdir`: the MLM Item of `onnx_path`, metrics, confusion matrix, `extra` files."""
    metrics_path, png_path = workdir / "metrics.json", workdir / "confusion_matrix.png"
    metrics_path.write_text(json.dumps(metrics, indent=2))
    confusion_png(confusion, [c.name for c in data.classes], png_path)
    item = build_model_item(onnx_path, meta)
    item.stac_extensions.append(ML_AOI_EXT)
    item.add_links(training_data_links(data, outdir))
    assets = {
        "metrics": (metrics_path, pystac.Asset("", "training and validation metrics", media_type="application/json",
                                               roles=["metadata"])),
        "confusion-matrix": (png_path, pystac.Asset("", "validation confusion matrix (rows: true class, "
                                                        "columns: predicted class)",
                                                    media_type="image/png", roles=["overview", "visual"])),
        **(extra or {}),
    }
    return write_model_catalog(item, onnx_path, outdir, assets, runtime_hrefs(run.training_cwl, run.inference_cwl),
                               overwrite, schema_dir)
