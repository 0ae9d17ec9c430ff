"""`mlmkit predict`: run any MLM-described model over STAC imagery."""

from __future__ import annotations

from pathlib import Path

import click

from mlmkit import api
from mlmkit.cli.options import overwrite_option, progress_options
from mlmkit.progress import Progress


@click.command()
@click.option("--model", "-m", required=True, metavar="MLM",
              help="MLM Item: path, URL, or a directory holding its catalog.json.")
@click.option("--input", "-i", "inputs", required=True, metavar="STAC",
              help="Imagery: a STAC Item path/URL, or a catalog (directory or file) with one or more Items.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory; gets catalog.json, one result Item per input Item, COGs and quicklooks.")
@click.option("--tile-size", type=click.IntRange(min=16), help="Tile size for models with dynamic height/width (default 256).")
@click.option("--overlap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Pixels shared by neighbouring tiles; results are blended there.")
@click.option("--blend", type=click.Choice(["smooth", "crop"]), default="smooth", show_default=True,
              help="Where tiles overlap: smooth weight ramps, or keep each tile's centre only.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Tiles per model call.")
@click.option("--threads", type=click.IntRange(min=1),
              help="Model threads (onnxruntime intra-op, torch; default: all cores).")
@click.option("--providers", help="Comma-separated onnxruntime execution providers, e.g. CUDAExecutionProvider,CPUExecutionProvider.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the model runs; auto follows the Item's mlm:accelerator and what is available.")
@click.option("--model-asset", metavar="KEY",
              help="Which mlm:model asset to run when the Item has several (default: ONNX, else a PyTorch file).")
@click.option("--no-cache", is_flag=True,
              help="Download a remote model to a temporary directory instead of the model cache.")
@click.option("--allow-native-code", is_flag=True,
              help="Load AOTInductor packages (.pt2 with compiled shared libraries that run with your privileges).")
@click.option("--probabilities", is_flag=True, help="Also write the class scores as a float COG.")
@click.option("--resolution", type=float, help="Grid resolution in CRS units (default: the finest band's).")
@click.option("--resampling", help="How bands on other grids are resampled onto the output grid (nearest, bilinear, "
                                   "cubic, ...; default: the MLM resize_type's interpolation, else bilinear).")
@click.option("--time-steps", type=click.IntRange(min=1),
              help="Dates per stack for a time-series model whose time dimension is dynamic (-1).")
@click.option("--score-threshold", type=click.FloatRange(0, 1),
              help="Object detection: drop boxes scored lower (default: the Item's mlm:hyperparameters "
                   "score_threshold, else 0.25).")
@click.option("--iou-threshold", type=click.FloatRange(0, 1),
              help="Object detection: merge same-class boxes overlapping more, across tiles (default: the Item's "
                   "mlm:hyperparameters iou_threshold, else 0.5).")
@click.option("--allow-python-expressions", is_flag=True,
              help="Trust 'python' pre-processing expressions in the MLM Item (imports and runs that code).")
@click.option("--source-href", metavar="URL", help="URL the --input document is published at, for the results' "
              "derived_from links (default: its canonical link or the URL it was read from).")
@click.option("--source-item-href", "source_item_hrefs", metavar="URL", multiple=True,
              help="URL an input Item is published at, taken for the Item its path names (.../<id>.json or "
                   ".../items/<id>); repeatable. For inputs staged without their self link.")
@click.option("--model-href", metavar="URL", help="URL the --model document is published at, for derived_from and "
              "processing:expression (default: its canonical link or the URL it was read from).")
@overwrite_option
@progress_options
def predict(model: str, inputs: str, output: Path, tile_size: int | None, overlap: int, blend: str, batch_size: int,
            threads: int | None, providers: str | None, device: str, model_asset: str | None, no_cache: bool,
            allow_native_code: bool, probabilities: bool, resolution: float | None,
            resampling: str | None, time_steps: int | None, score_threshold: float | None,
            iou_threshold: float | None, allow_python_expressions: bool, source_href: str | None,
            source_item_hrefs: tuple[str, ...], model_href: str | None, overwrite: bool, progress: Progress) -> None:
    """Run the model an MLM Item describes over STAC imagery; write COGs (or boxes) and a STAC catalog.

    Bands, scaling, band math, tile size and classes all come from the MLM Item; the output catalog
    links each result to its source Item(s) and to the model. Pixel-wise models ([batch, bands]) run on
    the valid pixels; object detectors give GeoParquet boxes; a model with a time dimension gets stacks of
    Items sharing a grid, in date order. Progress goes to stderr: a bar per item (tiles, Mpx/s, ETA) on a
    terminal, one summary line per item otherwise.

    \b
    Example:
      mlmkit predict --model model/catalog.json --input scene/item.json --output out/ --overlap 32
    """
    catalog = api.predict(
        model, inputs, output=output, tile_size=tile_size, overlap=overlap, blend=blend, batch_size=batch_size,
        threads=threads, providers=[p.strip() for p in providers.split(",") if p.strip()] if providers else None,
        device=device, model_asset=model_asset, cache=not no_cache, allow_native_code=allow_native_code,
        probabilities=probabilities, resolution=resolution, resampling=resampling, time_steps=time_steps,
        score_threshold=score_threshold, iou_threshold=iou_threshold, allow_python_expressions=allow_python_expressions,
        source_href=source_href, source_item_hrefs=source_item_hrefs, model_href=model_href, overwrite=overwrite,
        progress=progress)
    click.echo(str(catalog))
