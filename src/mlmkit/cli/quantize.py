"""`mlmkit quantize`: an int8 copy of an MLM model, calibrated and checked on real imagery, as a new MLM Item."""

from __future__ import annotations

from pathlib import Path

import click

from mlmkit.cli.options import progress_options
from mlmkit.progress import Progress


@click.command()
@click.argument("model", metavar="MODEL")
@click.option("--calibrate-with", "imagery", required=True, metavar="STAC",
              help="Imagery to calibrate and check on: a STAC Item, or a catalog with Items, that the model runs on.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory: a catalog with the int8 model's MLM Item.")
@click.option("--calibration-tiles", type=click.IntRange(min=1), default=16, show_default=True,
              help="Tiles the int8 ranges are calibrated on.")
@click.option("--calibration", type=click.Choice(["percentile", "minmax"]), default="percentile", show_default=True,
              help="Activation ranges: 0.001-99.999th percentiles of the values seen, or their extremes (faster).")
@click.option("--held-out-tiles", type=click.IntRange(min=1), default=32, show_default=True,
              help="Other tiles on which the int8 model is checked against the float model.")
@click.option("--min-agreement", type=click.FloatRange(0, 100, min_open=True), default=98.0, show_default=True,
              help="Per cent of held-out pixels whose class must stay the same; below it the Item says so and "
                   "a warning is printed.")
@click.option("--per-tensor", is_flag=True, help="One int8 scale per weight tensor instead of per output channel.")
@click.option("--keep-float", metavar="OPS",
              help="Comma-separated operator types left in float, e.g. Sigmoid,Mul (slower, closer to float).")
@click.option("--threads", type=click.IntRange(min=1), help="Model threads (default: all cores).")
@click.option("--allow-python-expressions", is_flag=True,
              help="Trust 'python' pre-processing expressions in the MLM Item (imports and runs that code).")
@click.option("--model-href", metavar="URL", help="URL the MODEL document is published at, for the derived_from link "
              "(default: its canonical link or the URL it was read from).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output directory.")
@progress_options
def quantize(model: str, imagery: str, output: Path, calibration_tiles: int, calibration: str, held_out_tiles: int,
             min_agreement: float, per_tensor: bool, keep_float: str | None, threads: int | None,
             allow_python_expressions: bool, model_href: str | None, overwrite: bool, progress: Progress) -> None:
    """Quantize the ONNX model an MLM Item describes to int8 (static, QDQ), calibrated on real imagery.

    Tiles of the imagery are read as `predict` reads them for this model; some calibrate the int8 ranges,
    others are held out to measure how often the int8 model gives the float model's class. The new catalog's
    Item is the float model's, with the int8 file as its model asset (predict runs it unchanged), what was done
    and the agreement measured (processing:lineage, mlmkit:quantization) and a derived_from link to MODEL.

    \b
    Example:
      mlmkit quantize model/catalog.json --calibrate-with scene/item.json -o model-int8/
    """
    from mlmkit import api

    report = api.quantize(model, imagery, output=output, calibration_tiles=calibration_tiles, calibration=calibration,
                          held_out_tiles=held_out_tiles, min_agreement=min_agreement, per_tensor=per_tensor,
                          keep_float=[op.strip() for op in (keep_float or "").split(",") if op.strip()],
                          threads=threads, allow_python_expressions=allow_python_expressions,
                          model_href=model_href, overwrite=overwrite, progress=progress)
    agreement = report.agreement
    progress.info(f"quantize: class agreement with the float model {agreement.lowest:.2%} on "
                  f"{agreement.tiles} held-out tiles (goal {report.min_agreement:.0%}); int8 "
                  f"{agreement.float_seconds / agreement.int8_seconds:.2f}× the float model's speed on them here")
    click.echo(str(report.catalog))
