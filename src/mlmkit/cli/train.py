"""`mlmkit chips` (build a STAC training catalog) and `mlmkit train` (train, export ONNX + MLM Item)."""

from __future__ import annotations

from pathlib import Path

import click

from mlmkit import api
from mlmkit.cli.options import overwrite_option, progress_options, schema_dir_option
from mlmkit.progress import Progress

_CTX = {"help_option_names": ["-h", "--help"]}


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


@click.command(context_settings=_CTX)
@click.option("--imagery", help="STAC imagery Item (file, URL or catalog directory holding one Item).")
@click.option("--labels", help="Label raster (class values; reprojected onto the imagery grid) or GeoJSON polygons.")
@click.option("--classes", help="Class list: '0=water,1=vegetation' or a JSON file of [{value, name, color_hint}].")
@click.option("--label-property", help="GeoJSON feature property holding the class (name or value).")
@click.option("--eurosat", "eurosat_folder", type=click.Path(file_okay=False, path_type=Path),
              help="Convert a EuroSAT-style folder (one sub-folder of GeoTIFF chips per class) instead.")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path), help="Training catalog directory.")
@click.option("--bands", help="Imagery bands to keep, comma-separated names or common names (default: all).")
@click.option("--band-names", help="EuroSAT: band names of the chips (default: the 13 EuroSAT MS bands B01..B12).")
@click.option("--chip-size", default=64, show_default=True, help="Chip width and height in pixels.")
@click.option("--split", "split_spec", default="0.7,0.15,0.15", show_default=True,
              help="train,validate,test fractions of the chips.")
@click.option("--block-size", default=4, show_default=True,
              help="Spatial block edge in chips; whole blocks go to one split.")
@click.option("--block-deg", default=0.05, show_default=True, help="EuroSAT: spatial block edge in degrees.")
@click.option("--min-labelled", default=0.5, show_default=True, help="Keep chips with at least this labelled share.")
@click.option("--seed", default=0, show_default=True, help="Seed of the block split.")
@click.option("--name", default="training-data", show_default=True, help="Catalog id (collections: NAME-SPLIT).")
@click.option("--source-href", help="URL the --imagery Item is published at, for the chips' source links "
                                    "(default: its canonical link or the URL it was read from).")
@overwrite_option
@progress_options
def chips(imagery, labels, classes, label_property, eurosat_folder, output, bands, band_names, chip_size, split_spec,
          block_size, block_deg, min_labelled, seed, name, source_href, overwrite, progress) -> None:
    """Build a STAC training catalog: N x N chip COGs, label + ml-aoi extensions, one collection per split.

    \b
    Examples:
      mlmkit chips --imagery scene/item.json --labels landcover.tif \\
          --classes 0=water,1=forest,2=crops --bands B02,B03,B04,B08 --output training-data/
      mlmkit chips --eurosat EuroSAT_MS/ --output eurosat-catalog/
    """
    from mlmkit.training.chips import ChipOptions, build_chips
    from mlmkit.training.eurosat import convert_eurosat
    from mlmkit.training.layout import parse_classes
    from mlmkit.training.splits import parse_fractions

    fractions = parse_fractions(split_spec)
    if eurosat_folder is not None:
        if imagery or labels:
            raise click.UsageError("--eurosat converts a folder on its own; expected no --imagery/--labels with it")
        convert_eurosat(eurosat_folder, output, fractions, block_deg, seed, _names(band_names), name, overwrite,
                        progress)
    else:
        if not (imagery and labels and classes):
            raise click.UsageError("--imagery, --labels and --classes are needed; expected all three (or --eurosat FOLDER)")
        options = ChipOptions(chip_size, _names(bands), fractions, block_size, seed, min_labelled, name,
                              f"Training chips of {Path(imagery).name} labelled by {Path(labels).name}", source_href)
        build_chips(imagery, labels, parse_classes(classes), output, options, label_property, overwrite, progress)
    click.echo(f"training catalog: {Path(output).absolute() / 'catalog.json'}")


@click.command(context_settings=_CTX)
@click.option("--data", required=True, help="Training catalog: directory with catalog.json, catalog.json or URL.")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path), help="Model catalog directory.")
@click.option("--task", type=click.Choice(["scene-classification", "semantic-segmentation"]),
              help="Task (default: from the labels, raster -> segmentation, vector -> scene classification).")
@click.option("--arch", "--architecture", "arch",
              type=click.Choice(["small-cnn", "resnet18", "unet", "random-forest", "gradient-boosting"]),
              help="Architecture (default: small-cnn for scenes, unet for segmentation). random-forest and "
                   "gradient-boosting are scikit-learn pixel classifiers (one row of band values per pixel).")
@click.option("--epochs", default=10, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--lr", default=1e-3, show_default=True, help="AdamW learning rate (cosine schedule).")
@click.option("--seed", default=0, show_default=True,
              help="Seed of weights and batch order (deterministic per device).")
@click.option("--width", type=int, help="Base channel width of the model (default: the architecture's).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto (CUDA when present).")
@click.option("--trees", default=100, show_default=True,
              help="random-forest/gradient-boosting: number of trees (boosting stages).")
@click.option("--max-samples", default=100_000, show_default=True,
              help="random-forest/gradient-boosting: training pixels, at most this many / classes per class.")
@click.option("--bands", help="Train on these chip bands only, comma-separated (default: all).")
@click.option("--model-id", help="Id of the MLM Item (default: ARCH-TASK).")
@click.option("--training-cwl-href", help="href of the training CWL package, e.g. a release URL "
                                          "(default: a copy of the training.cwl mlmkit ships).")
@click.option("--inference-cwl-href", help="href of the inference CWL package (default: a copy of the inference.cwl mlmkit ships).")
@click.option("--model-version", default="1.0.0", show_default=True, help="Version of the model (version extension).")
@click.option("--experimental", is_flag=True, help="Mark the model experimental (trials, teaching), not for production.")
@click.option("--citation", help="How to cite the model (sci:citation).")
@click.option("--doi", help="DOI of the model's publication (sci:doi).")
@schema_dir_option
@click.option("--training-data-href", help="URL the --data catalog is published at, for the MLM Item's derived_from "
                                           "links (default: its canonical link or the URL it was read from).")
@overwrite_option
@progress_options
def train(data, output, task, arch, epochs, batch_size, lr, seed, width, device, trees, max_samples, bands, model_id,
          training_cwl_href, inference_cwl_href, model_version, experimental, citation, doi, schema_dir,
          training_data_href, overwrite, progress: Progress) -> None:
    """Train on a STAC training catalog; write ONNX + MLM Item (+ metrics, confusion matrix) as a catalog.

    Nets (PyTorch) use --epochs, --batch-size, --lr, --width, --device; pixel classifiers (scikit-learn,
    --arch random-forest or gradient-boosting) use --trees and --max-samples. The catalog is validated
    against the STAC and MLM schemas (shipped with mlmkit) before it is written. Each epoch prints one line
    with its metrics, its time and the ETA of the run (a live bar on a terminal).

    \b
    Examples:
      mlmkit train --data training-data/ --output model/ --task semantic-segmentation --epochs 10
      mlmkit train --data training-data/ --output rf-model/ --architecture random-forest
      mlmkit predict --model model/catalog.json --input scene/item.json --output prediction/
    """
    summary = api.train(data, output=output, task=task, architecture=arch, epochs=epochs, batch_size=batch_size, lr=lr,
                        seed=seed, width=width, device=device, trees=trees, max_samples=max_samples,
                        bands=_names(bands), model_id=model_id, training_cwl_href=training_cwl_href,
                        inference_cwl_href=inference_cwl_href, model_version=model_version, experimental=experimental,
                        citation=citation, doi=doi, training_data_href=training_data_href, overwrite=overwrite,
                        schema_dir=schema_dir, progress=progress)
    if arch in api.PIXEL_ARCHITECTURES:
        click.echo("pixels: " + ", ".join(f"{split} {count}" for split, count in summary.samples.items()))
        _report(summary.validation, summary.test, f"ONNX vs scikit-learn max abs probability difference: "
                f"{summary.onnx_max_abs_diff:.2e}", summary.catalog)
        return
    click.echo("chips: " + ", ".join(f"{split} {count}" for split, count in summary.samples.items()))
    click.echo(f"best epoch {summary.result.best_epoch}")
    _report(summary.result.validation, summary.result.test,
            f"ONNX vs torch max abs difference: {summary.onnx_max_abs_diff:.2e}; "
            f"ExportedProgram vs torch: {summary.exported_max_abs_diff:.2e}", summary.catalog)


def _report(validation: dict, test: dict | None, onnx_line: str, catalog: Path) -> None:
    click.echo(f"validate accuracy {validation['overall_accuracy']:.3f}, "
               f"mean F1 {validation['mean_f1']:.3f}, mIoU {validation['miou']:.3f}")
    if test:
        click.echo(f"test accuracy {test['overall_accuracy']:.3f}")
    click.echo(onnx_line)
    click.echo(f"model catalog: {catalog}")
