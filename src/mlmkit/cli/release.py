"""`mlmkit release`: release copies of the CWL packages with pinned images, and MLM Items pointing at them."""

from __future__ import annotations

from pathlib import Path

import click

from mlmkit.cli.options import overwrite_option

from mlmkit import __version__
from mlmkit.packages.release import ReleaseSpec, packages_dir, parse_image_pin, point_runtime_assets, write_release


@click.command()
@click.option("--base-url", required=True,
              help="URL the released CWL files will be served from, e.g. the release's download URL.")
@click.option("--image", "images", multiple=True, required=True, metavar="TAG=REPO@sha256:DIGEST",
              help="Pin an image the packages name (repeat), e.g. mlmkit:0.2.0=ghcr.io/org/mlmkit@sha256:<digest>.")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the released inference.cwl, training.cwl and ogc/<process>.json.")
@click.option("--version", "version", default=__version__, show_default=True, help="Release version (s:softwareVersion).")
@click.option("--cwl-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=packages_dir(),
              show_default=True, help="Where the packages to release are.")
@click.option("--model", "models", multiple=True, metavar="CATALOG", type=click.Path(exists=True),
              help="Model catalog whose MLM Items' runtime assets should point at the released packages (repeat).")
@overwrite_option
def release(base_url: str, images: tuple[str, ...], output: Path, version: str, cwl_dir: Path,
            models: tuple[str, ...], overwrite: bool) -> None:
    """Write release copies of the CWL packages: images pinned by digest, version set, OGC descriptions.

    \b
    Example:
      mlmkit release --version 0.2.0 \\
        --base-url https://github.com/mlmkit/mlmkit/releases/download/v0.2.0 \\
        --image mlmkit:0.2.0=ghcr.io/mlmkit/mlmkit@sha256:<digest> \\
        --image mlmkit:0.2.0-training=ghcr.io/mlmkit/mlmkit@sha256:<digest> \\
        --output dist/cwl --model model/
    """
    spec = ReleaseSpec(version=version, base_url=base_url, images=dict(parse_image_pin(i) for i in images))
    for path in write_release(cwl_dir, output, spec, overwrite):
        click.echo(path)
    for catalog in models:
        count = point_runtime_assets(catalog, output, spec)
        click.echo(f"{catalog}: {count} runtime asset(s) now point at {spec.base_url}")
