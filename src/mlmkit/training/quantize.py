"""`quantize`: a static int8 copy of an MLM model, calibrated on real imagery, as an MLM Item of its own.

Post-training quantization, checked: tiles of the imagery are read exactly as `predict` reads them for this
model (inference.pipeline.read_batches: bands bound, scaled, laid out), spread over every Item, and taken in
turn for calibration and as held-out tiles. The int8 ONNX model (runtimes/int8.py: QDQ, int8 weights per
channel, uint8 activations, MinMax ranges) is then run beside the float model on the held-out tiles, and their
class maps compared pixel by pixel (tile by tile for scene classifiers), as predict would write them.

The new catalog's Item is the float model's Item with the int8 file as its model asset: the same inputs,
outputs, bands and scaling, so `predict` runs it unchanged. It records what was done and how well it went:
`processing:lineage` in words, `mlmkit:quantization` in fields (method, calibration tiles and Items, the
agreement measured and its goal), `processing:software`, and `derived_from` links to the float model and the
calibration imagery. Where agreement falls below the goal, the Item's description and `meets_goal` say so
and a `QuantizationWarning` is raised: a worse model is never handed out silently.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime
import pystac

from mlmkit import __version__
from mlmkit.catalog.provenance import reference
from mlmkit.errors import InvalidInput, ModelRefused, QuantizationWarning, warn
from mlmkit.inference.pipeline import PredictOptions, ReadBatch, read_batches
from mlmkit.inference.outputs.raster import OutputPlan
from mlmkit.inference.runtime import ModelRunner, choose_asset
from mlmkit.catalog.model_catalog import write_model_catalog
from mlmkit.mlm.build import PROCESSING_SCHEMA_URL
from mlmkit.mlm.lint import enforce, lint_model
from mlmkit.mlm.spec import ModelSpec, read_model
from mlmkit.progress import QUIET, Progress
from mlmkit.runtimes.artifacts import ArtifactKind, declared_kind
from mlmkit.runtimes.int8 import PERCENTILE, Int8Settings, check_calibration, quantize_onnx
from mlmkit.runtimes.onnx import OnnxRunner
from mlmkit.runtimes.onnx_info import read_graph
from mlmkit.stac.atomic import check_output_dir
from mlmkit.stac.checksum import file_checksum
from mlmkit.stac.fetch import local_copy
from mlmkit.stac.read import document_href, is_url, iter_items
from mlmkit.training.output import derived_from_link

QUANTIZATION = "mlmkit:quantization"
CPU = ["CPUExecutionProvider"]
_KEPT_ROLES = ("mlm:source_code", "mlm:container", "mlm:training-runtime", "mlm:inference-runtime")


@dataclass
class QuantizeOptions:
    """How many tiles calibrate and check the int8 model, the agreement it must reach, how tiles are read."""

    calibration_tiles: int = 16
    held_out_tiles: int = 32
    min_agreement: float = 0.98           # share of held-out pixels whose class must stay the same
    calibration: str = "percentile"       # or "minmax" (runtimes/int8.py)
    per_channel: bool = True              # int8 weight scales per output channel
    keep_float: tuple[str, ...] = ()      # operator types left in float
    threads: int | None = None
    allow_python: bool = False            # trust `python` expressions in the MLM Item
    time_steps: int | None = None
    overwrite: bool = False
    model_href: str | None = None         # URL the float model is published at (derived_from)
    progress: Progress = field(default_factory=lambda: Progress(QUIET))


@dataclass(frozen=True)
class Agreement:
    """The int8 model against the float model on the held-out tiles."""

    per_output: dict[str, float]  # share of equal classes, per MLM output
    pixels: int                   # pixels (or tiles, for scene classes) compared per output
    tiles: int
    float_seconds: float          # both models over the same held-out batches, in turn, on this machine
    int8_seconds: float

    @property
    def lowest(self) -> float:
        return min(self.per_output.values())


@dataclass(frozen=True)
class QuantizeReport:
    """What `quantize` wrote and measured."""

    catalog: Path
    agreement: Agreement
    calibration_tiles: int
    min_agreement: float

    @property
    def meets_goal(self) -> bool:
        return self.agreement.lowest >= self.min_agreement


class _Recorder:
    """A runner that keeps a copy of every input it is given (the calibration batches) and runs the model."""

    def __init__(self, runner: ModelRunner) -> None:
        self.runner, self.inputs, self.outputs = runner, runner.inputs, runner.outputs
        self.feeds: list[dict[str, np.ndarray]] = []

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.feeds.append({name: np.array(array, copy=True) for name, array in feeds.items()})
        return self.runner.run(feeds)


def _kept(batch: ReadBatch) -> ReadBatch:
    """A batch copied out of the reader's reused buffers."""
    return ReadBatch(batch.feeder, batch.plans, {name: array.copy() for name, array in batch.buffers.items()},
                     [mask.copy() for mask in batch.valid])


def _check(options: QuantizeOptions) -> None:
    if options.calibration_tiles < 1 or options.held_out_tiles < 1:
        raise InvalidInput(f"calibration_tiles {options.calibration_tiles} and held_out_tiles "
                           f"{options.held_out_tiles}: expected at least 1 of each")
    check_calibration(options.calibration)
    if not 0 < options.min_agreement <= 1:
        raise InvalidInput(f"min_agreement {options.min_agreement} is not a share; expected a number in (0, 1]")


def _onnx_asset(spec: ModelSpec, model: str):
    asset = choose_asset(spec, None)
    if declared_kind(asset.href, asset.media_type, asset.artifact_type) is not ArtifactKind.ONNX:
        raise ModelRefused(f"the MLM Item {model} has no ONNX model asset (its model is {asset.href}); expected an "
                           "ONNX model, which is what quantize makes int8")
    return asset


def _class_plans(batch: ReadBatch) -> list[OutputPlan]:
    """The output plans, refused unless every one gives classes (agreement is measured on classes)."""
    for plan in batch.plans:
        if not isinstance(plan, OutputPlan) or not plan.is_classes:
            what = "boxes" if not isinstance(plan, OutputPlan) else "values (regression)"
            raise ModelRefused(f"the model's output {plan.key!r} gives {what}; expected class scores or labels, "
                               "on which quantize measures the int8 model's agreement with the float model")
    return batch.plans


def _sample(spec: ModelSpec, runner: ModelRunner, imagery: str,
            options: QuantizeOptions) -> tuple[list[dict[str, np.ndarray]], int, list[ReadBatch]]:
    """Calibration inputs (as the model takes them) and their tile count, and held-out batches: tiles spread over
    every Item, read one a batch (a model with a fixed batch size: that many), taken in turn until each side has
    its count."""
    recorder = _Recorder(runner)
    wanted = options.calibration_tiles + options.held_out_tiles
    items = sum(1 for _ in iter_items(imagery))
    read = PredictOptions(batch_size=1, allow_python=options.allow_python, time_steps=options.time_steps,
                          sample_tiles=math.ceil(wanted / max(items, 1)))
    calibration = 0
    held: list[ReadBatch] = []
    held_tiles = 0
    for index, batch in enumerate(read_batches(spec, runner, imagery, read)):
        _class_plans(batch)
        calibrate = calibration < options.calibration_tiles and (index % 2 == 0 or
                                                                 held_tiles >= options.held_out_tiles)
        if calibrate:
            batch.feeder.run(recorder, batch.buffers, batch.valid)
            calibration += len(batch.valid)
        elif held_tiles < options.held_out_tiles:
            held.append(_kept(batch))
            held_tiles += len(batch.valid)
        if calibration >= options.calibration_tiles and held_tiles >= options.held_out_tiles:
            break
    if not held:
        raise InvalidInput(f"{imagery} gave {calibration} tile(s) with data, all needed for calibration; expected "
                           "more imagery, or fewer calibration tiles, so that some are held out")
    return recorder.feeds, calibration, held


def _classes(plan: OutputPlan, raw: list, valid: list[np.ndarray]) -> list[np.ndarray]:
    """The class values predict would write for each tile of a batch: pixels with data (or the tile's class)."""
    scores = plan.results(raw)
    classes = []
    for tile, mask in zip(scores, valid):
        covered = mask if plan.spatial else np.ones((), dtype=bool)
        values = plan.finalize(np.array(tile, dtype=np.float32), covered)[0]
        classes.append(values[covered] if plan.spatial else values.reshape(1))
    return classes


def measure_agreement(held: list[ReadBatch], reference_runner: ModelRunner, candidate: ModelRunner) -> Agreement:
    """How often `candidate` gives the class `reference_runner` gives, over the held-out batches; both run each
    batch in turn, so their times are comparable."""
    equal: dict[str, int] = {}
    counted: dict[str, int] = {}
    seconds = [0.0, 0.0]
    for batch in held:
        raws = []
        for side, runner in enumerate((reference_runner, candidate)):
            start = time.perf_counter()
            raws.append(batch.feeder.run(runner, batch.buffers, batch.valid))
            seconds[side] += time.perf_counter() - start
        for plan in _class_plans(batch):
            name = plan.output.name
            for ours, theirs in zip(_classes(plan, raws[0], batch.valid), _classes(plan, raws[1], batch.valid)):
                equal[name] = equal.get(name, 0) + int(np.count_nonzero(ours == theirs))
                counted[name] = counted.get(name, 0) + ours.size
    if not counted or not all(counted.values()):
        raise InvalidInput("the held-out tiles hold no pixel with data; expected imagery the model can run on")
    return Agreement({name: equal[name] / counted[name] for name in counted}, max(counted.values()),
                     sum(len(batch.valid) for batch in held), seconds[0], seconds[1])


def _lineage(spec: ModelSpec, report: Agreement, calibration: int, items: list[str], options: QuantizeOptions,
             int8_path: Path) -> dict:
    """The Item's account of what was done, in words and fields."""
    agreement = report.lowest
    method = f"{PERCENTILE}th percentile" if options.calibration == "percentile" else "min-max"
    settings = {"format": "QDQ", "weights": "int8, per channel" if options.per_channel else "int8, per tensor",
                "activations": "uint8", "calibration_method": options.calibration,
                **({"percentile": PERCENTILE} if options.calibration == "percentile" else {}),
                **({"kept_float": list(options.keep_float)} if options.keep_float else {})}
    words = (f"Static int8 quantization (onnxruntime quantize_static, {settings['format']}, {settings['weights']} "
             f"weights, uint8 activations, {method} calibration) of the float model {spec.name!r}, calibrated on "
             f"{calibration} tiles of {len(items)} Item(s) read as mlmkit predict reads them; on {report.tiles} "
             f"held-out tiles ({report.pixels} pixels) the class maps agree with the float model's on "
             f"{agreement:.2%} of pixels (goal {options.min_agreement:.0%}).")
    fields = {
        "method": "static", **settings,
        "calibration": {"tiles": calibration, "items": items},  # ids: their hrefs are the derived_from links
        "held_out": {"tiles": report.tiles, "pixels": report.pixels},
        "agreement": {name: round(value, 6) for name, value in report.per_output.items()},
        "agreement_goal": options.min_agreement,
        "meets_goal": agreement >= options.min_agreement,
        "float_model": spec.name,
    }
    return {"processing:lineage": words, QUANTIZATION: fields,
            "processing:software": {"mlmkit": __version__, "onnxruntime": onnxruntime.__version__},
            "mlm:memory_size": read_graph(int8_path).memory_size}


def _int8_item(spec: ModelSpec, int8_path: Path, properties: dict, links: list[pystac.Link]) -> pystac.Item:
    """The float model's Item with the int8 file as its only model asset, and what was done recorded."""
    item = spec.item.clone()
    item.id = f"{spec.item.id}-int8"
    item.properties["mlm:name"] = f"{spec.name} int8"
    item.properties.update(properties)
    quantization = properties[QUANTIZATION]
    note = (f"int8 copy of {spec.name}: class agreement with the float model "
            f"{min(quantization['agreement'].values()):.2%} on held-out tiles")
    if not quantization["meets_goal"]:
        note += f", BELOW the goal of {quantization['agreement_goal']:.0%}: its results differ measurably"
    description = item.properties.get("description")
    item.properties["description"] = f"{note}. {description}" if description else f"{note}."
    if PROCESSING_SCHEMA_URL not in item.stac_extensions:
        item.stac_extensions.append(PROCESSING_SCHEMA_URL)
    float_key = next(key for key, asset in item.assets.items() if "mlm:model" in (asset.roles or []))
    model = item.assets[float_key].clone()
    model.href = str(int8_path)
    model.title = f"{spec.name} int8 (ONNX, QDQ)"
    model.media_type = ArtifactKind.ONNX.media_type
    model.extra_fields.update({"mlm:artifact_type": ArtifactKind.ONNX.value, "file:size": int8_path.stat().st_size,
                               "file:checksum": file_checksum(int8_path)})
    kept = {key: asset.clone() for key, asset in item.assets.items()
            if is_url(asset.href) and set(asset.roles or []) & set(_KEPT_ROLES)}
    item.assets = {"model": model, **kept}
    item.links = []
    for link in links:
        item.add_link(link)
    return item


def quantize(model: str, imagery: str, output: Path, options: QuantizeOptions | None = None) -> QuantizeReport:
    """Write to `output` a catalog with the int8 copy of the MLM model `model`, calibrated on `imagery`."""
    options = options or QuantizeOptions()
    _check(options)
    spec = read_model(model)
    enforce(lint_model(spec), f"model {spec.name!r}")  # what predict refuses is not quantized either
    asset = _onnx_asset(spec, model)
    check_output_dir(output, options.overwrite, inputs=[model, imagery, asset.href])
    model_href = reference(spec.item, document_href(model), options.model_href) or document_href(model)
    imagery_href = document_href(imagery)
    sources = list(iter_items(imagery))
    items = [reference(item, imagery_href) or imagery_href for item in sources]
    with local_copy(asset.href, asset.file_checksum, progress=options.progress.download_hook("download model")) \
            as path, tempfile.TemporaryDirectory(prefix="mlmkit-quantize-") as work:
        runner = OnnxRunner(path, options.threads, CPU, asset.href)
        feeds, calibration, held = _sample(spec, runner, imagery, options)
        options.progress.info(f"quantize: calibrating on {calibration} tiles, {sum(len(b.valid) for b in held)} "
                              "held out")
        int8_path = Path(work) / f"{Path(asset.href).stem}-int8.onnx"
        quantize_onnx(path, feeds, int8_path, Int8Settings(options.calibration, options.per_channel,
                                                           tuple(options.keep_float)))
        agreement = measure_agreement(held, runner,
                                      OnnxRunner(int8_path, options.threads, CPU, str(int8_path)))
        links = [derived_from_link(model_href, output, f"float model {spec.name}", "model_href")]
        links += [derived_from_link(href, output, "calibration imagery", "imagery URL") for href in items]
        properties = _lineage(spec, agreement, calibration, [item.id for item in sources], options, int8_path)
        item = _int8_item(spec, int8_path, properties, [link for link in links if link is not None])
        catalog = write_model_catalog(item, int8_path, output, runtime=_runtime_files(spec),
                                      overwrite=options.overwrite)
    report = QuantizeReport(catalog, agreement, calibration, options.min_agreement)
    if not report.meets_goal:
        warn(f"the int8 model agrees with the float model on {agreement.lowest:.2%} of held-out pixels, below the "
             f"goal of {options.min_agreement:.0%}: its results differ measurably (recorded in its Item)",
             QuantizationWarning)
    return report


def _runtime_files(spec: ModelSpec) -> dict[str, str]:
    """The float Item's CWL runtime packages that are local files, copied beside the int8 model."""
    return {role: asset.href for asset in spec.runtime_assets for role in asset.roles
            if role in ("mlm:training-runtime", "mlm:inference-runtime") and not is_url(asset.href)}
