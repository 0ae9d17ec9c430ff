"""`mlmkit describe`: give an existing model file (ONNX, TorchScript, .pt2) a validated MLM Item inside a STAC
catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlmkit import api
from mlmkit.cli.options import overwrite_option, schema_dir_option
from mlmkit.mlm.describe import load_spec


def _band(text: str) -> dict:
    name, _, common_name = text.partition(":")
    return {"name": name, "common_name": common_name} if common_name else {"name": name}


def _class(text: str) -> dict:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0].lstrip("-").isdigit():
        raise click.BadParameter(f"{text!r} is not VALUE:NAME[:RRGGBB]; expected e.g. 1:water:0000FF",
                                 param_hint="'--class'")
    entry: dict[str, Any] = {"value": int(parts[0]), "name": parts[1]}
    if len(parts) == 3:
        entry["color_hint"] = parts[2]
    return entry


def _bbox(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise click.BadParameter(f"{text!r} is not W,S,E,N; expected four comma-separated numbers",
                                 param_hint="'--bbox'")
    return values


def _shape(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not comma-separated integers; expected e.g. -1,4,-1,-1",
                                 param_hint="'--input-shape'") from exc


def _json(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not JSON: {exc}", param_hint=f"'{option}'") from exc


def _overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Spec fields from the options that were given."""
    converters = {
        "bands": lambda v: [_band(b) for b in v], "classes": lambda v: [_class(c) for c in v],
        "bbox": _bbox, "value_scaling": lambda v: _json(v, "--value-scaling"),
        "hyperparameters": lambda v: _json(v, "--hyperparameters"), "tasks": list, "keywords": list,
        "input_shape": _shape,
    }
    out = {}
    for key, value in options.items():
        if value is None or value == ():
            continue
        out[key] = converters.get(key, lambda v: v)(value)
    return out


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the STAC catalog (catalog.json -> collection -> item + model).")
@click.option("--spec", "spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML/JSON file with the metadata fields below (options override it).")
@click.option("--id", "id", help="Item id (default: from the name).")
@click.option("--name", help="mlm:name, e.g. 'Sentinel-2 water segmenter'.")
@click.option("--architecture", help="mlm:architecture, e.g. U-Net.")
@click.option("--task", "tasks", multiple=True, help="mlm:tasks entry (repeat), e.g. semantic-segmentation.")
@click.option("--band", "bands", multiple=True, help="Input band NAME[:COMMON_NAME] in channel order (repeat).")
@click.option("--value-scaling", help='JSON list of MLM value_scaling objects, e.g. \'[{"type":"scale","value":0.0001}]\'.')
@click.option("--class", "classes", multiple=True, help="Output class VALUE:NAME[:RRGGBB] (repeat).")
@click.option("--bbox", help="W,S,E,N of the area the model is meant for (default: the world).")
@click.option("--start", "start_datetime", help="Start of the period the model is meant for (ISO 8601).")
@click.option("--end", "end_datetime", help="End of that period (ISO 8601).")
@click.option("--license", help="SPDX license id of the model, e.g. Apache-2.0.")
@click.option("--framework", help="Framework the model was trained with (default: ONNX, or PyTorch for PyTorch files).")
@click.option("--framework-version", help="Version of that framework, e.g. 2.3.0.")
@click.option("--accelerator", help="mlm:accelerator (default amd64).")
@click.option("--hyperparameters", help="JSON object of hyperparameters.")
@click.option("--input-name", help="Model input to describe when the model has several.")
@click.option("--output-name", help="Model output to describe when the model has several.")
@click.option("--input-shape", help="Input shape, -1 for dynamic dims: for files that do not record it "
                                   "(TorchScript, AOTInductor), e.g. -1,4,-1,-1; for ONNX, the size the model was "
                                   "made for (fixes dynamic dims, checked by one run), e.g. -1,3,48,192.")
@click.option("--input-data-type", help="Input data type with --input-shape (default float32).")
@click.option("--resize-type", help="MLM resize_type, e.g. crop.")
@click.option("--post-processing", help="The output's post_processing_function as a gdal-calc expression over its "
                                        "channels A, B, ..., e.g. 'A > 0.3'.")
@click.option("--detection-layout", help="A YOLO tensor's values per box: cxcywh-class (4 + K) or cxcywh-obj-class "
                                         "(5 + K, with an objectness score).")
@click.option("--description", help="Item description.")
@click.option("--keyword", "keywords", multiple=True, help="Keyword (repeat).")
@click.option("--processing-level", help="Product level of the imagery the model expects, e.g. L1C or L2A.")
@click.option("--processing-lineage", help="How that imagery was processed, e.g. 'Sen2Cor surface reflectance'.")
@click.option("--source-code", help="URL of the model's code (a repository at a tag/commit, or a script).")
@click.option("--entrypoint", help="mlm:entrypoint in that code, e.g. package.module:predict.")
@click.option("--container", help="Container image that runs the model, e.g. ghcr.io/org/model@sha256:<digest>.")
@click.option("--citation", help="How to cite the model (sci:citation).")
@click.option("--doi", help="DOI of the model's publication (sci:doi).")
@click.option("--model-version", "version", help="Version of the model (version extension), e.g. 1.2.0.")
@click.option("--inference-cwl", "inference_runtime", help="CWL application package (path or URL) to run the model.")
@click.option("--training-cwl", "training_runtime", help="CWL application package (path or URL) to train it.")
@overwrite_option
@schema_dir_option
def describe(model: Path, outdir: Path, spec_file: Path | None, overwrite: bool, schema_dir: Path | None,
             **options: Any) -> None:
    """Describe a model file as an MLM v1.5.2 Item in a self-contained STAC catalog.

    ONNX, TorchScript (torch.jit.save), ExportedProgram and AOTInductor (.pt2) files are read; shapes,
    dim orders and data types come from the file (a TorchScript or AOTInductor file needs --input-shape;
    its outputs are found by running it on zeros), file:size and file:checksum from the file. torch.save
    pickles are refused. The catalog is validated before it is written.

    \b
    Example:
      mlmkit describe model.onnx -o model-catalog --spec docs/describe-spec.example.yaml
      mlmkit describe model.onnx -o model-catalog --name "Water segmenter" --architecture U-Net \\
        --task semantic-segmentation --band B04:red --band B03:green --band B02:blue \\
        --class 0:land --class 1:water:0000FF --license Apache-2.0
      mlmkit describe unet.pt -o unet-catalog --spec spec.yaml --input-shape -1,4,-1,-1
    """
    spec = load_spec(spec_file) if spec_file else {}
    spec.update(_overrides(options))
    catalog = api.describe(model, output=outdir, spec=spec, overwrite=overwrite, schema_dir=schema_dir)
    click.echo(str(catalog))
