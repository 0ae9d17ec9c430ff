"""The Python API: one function per verb, designed as one; `import mlmkit` exposes them.

One options style for every verb: what it works on comes first, positionally; every option is a keyword, named
as the CLI option is (`--tile-size` is `tile_size=`). Verbs that write take `output` and `overwrite`, verbs that
validate take `schema_dir`, verbs that report progress take `progress` (a `mlmkit.progress.Progress`; None is
silent). Paths may be `str` or `Path`; documents may also be URLs. A verb returns what the CLI prints: the
`catalog.json` it wrote, a report, or the matches it found.

Failures raise `mlmkit.errors.MlmkitError` subclasses whose names say what went wrong (`NotFound`,
`InvalidArgument`, `InvalidMetadata`, `UnsafePath`, `RemoteFailure`, ...); notes that do not stop a run are
`mlmkit.errors.MlmkitWarning` subclasses, filterable with the `warnings` module. Each verb imports the modules it
needs when called, so `import mlmkit` loads neither onnxruntime nor torch. The examples run where the tutorial
left `demo-output/` (the documentation's tests run every one of them there).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlmkit.errors import InvalidArgument

if TYPE_CHECKING:
    import pystac
    import xarray as xr

    from mlmkit.matching import Match
    from mlmkit.catalog.publish import PublishSummary
    from mlmkit.catalog.search import ModelMatch
    from mlmkit.catalog.validate import SourceReport
    from mlmkit.progress import Progress
    from mlmkit.training.classical import PixelTrainSummary
    from mlmkit.training.pipeline import TrainSummary
    from mlmkit.training.quantize import QuantizeReport

PathLike = str | os.PathLike[str]
PIXEL_ARCHITECTURES = ("random-forest", "gradient-boosting")

__all__ = ["describe", "validate", "predict", "predict_xarray", "train", "quantize", "match", "search", "publish",
           "run", "stage_in", "stage_out"]


def describe(model: PathLike, *, output: PathLike, spec: Mapping[str, Any] | PathLike | None = None,
             overwrite: bool = False, schema_dir: PathLike | None = None) -> Path:
    """Describe a model file (ONNX, TorchScript, ExportedProgram, AOTInductor) as an MLM Item in a new catalog.

    Shapes, dim orders, data types, parameter count, size and checksum come from the file; what it cannot tell
    (name, architecture, tasks, bands, classes, value scaling, runtimes, ...) comes from `spec`: a mapping of the
    describe spec fields, or a YAML/JSON spec file. The catalog is validated before it is written; a contradiction
    (3 bands for a 4-channel input) raises and writes nothing.

    Returns the `catalog.json` written.

    Example:
        ```python
        from pathlib import Path

        import mlmkit

        onnx = next(Path("demo-output/model").glob("*/*/model.onnx"))  # the tutorial's U-Net
        classes = ["water", "dense-vegetation", "sparse-vegetation", "bare-or-built"]
        catalog = mlmkit.describe(onnx, output="described-api", spec={
            "name": "Rule land cover U-Net", "architecture": "U-Net", "tasks": ["semantic-segmentation"],
            "bands": [{"name": "B02"}, {"name": "B03"}, {"name": "B04"}, {"name": "B08", "common_name": "nir"}],
            "classes": [{"value": value, "name": name} for value, name in enumerate(classes)],
            "license": "Apache-2.0"})
        ```
    """
    from mlmkit.catalog.model_catalog import describe_model
    from mlmkit.mlm.describe import load_spec

    fields = load_spec(spec) if isinstance(spec, (str, os.PathLike)) else dict(spec or {})
    return describe_model(model, output, fields, overwrite=overwrite, schema_dir=_path(schema_dir))


def validate(sources: PathLike | Iterable[PathLike], *, schema_dir: PathLike | None = None, semantic: bool = True,
             progress: Progress | None = None) -> SourceReport:
    """Validate STAC Items, Collections and Catalogs (children followed) against every schema they declare, and
    MLM Items against what schemas cannot check (model files, shapes, bands, classes, checksums, lineage).

    `sources` is one path, URL or catalog directory, or several. The schemas ship with mlmkit (a schema it does
    not ship is downloaded once and cached); `schema_dir` names a mirror laid out `<host>/<path>` to use instead.
    `semantic=False` checks the schemas only. Returns the problems (model shapes `predict` cannot run are among
    them as warnings) and how many documents were checked; a document is valid when no problem that is not a
    warning names it.

    Example:
        ```python
        import mlmkit

        report = mlmkit.validate("demo-output/model")
        assert not [problem for problem in report.problems if not problem.warning], report.problems
        print(report.documents, "documents valid")
        ```
    """
    from mlmkit.catalog.validate import SourceReport, check_source

    listed = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    if not listed:
        raise InvalidArgument("no sources to validate; expected one or more paths, URLs or catalog directories")
    problems, documents = [], 0
    for source in listed:
        report = check_source(source, _path(schema_dir), semantic=semantic, warnings=True, progress=progress)
        problems += report.problems
        documents += report.documents
    return SourceReport(problems, documents)


def predict(model: PathLike, input: PathLike, *, output: PathLike, tile_size: int | None = None,  # noqa: A002
            overlap: int = 0, blend: str = "smooth", batch_size: int = 4, threads: int | None = None,
            providers: Sequence[str] | None = None, device: str = "auto", model_asset: str | None = None,
            cache: bool = True, allow_native_code: bool = False, probabilities: bool = False,
            resolution: float | None = None, resampling: str | None = None, time_steps: int | None = None,
            score_threshold: float | None = None, iou_threshold: float | None = None,
            allow_python_expressions: bool = False, source_href: str | None = None,
            source_item_hrefs: Sequence[str] = (), model_href: str | None = None, overwrite: bool = False,
            progress: Progress | None = None) -> Path:
    """Run the model an MLM Item describes over STAC imagery; write COGs (or boxes) and a STAC catalog.

    `model` is the MLM Item (path, URL or the directory of its catalog); `input` a STAC Item or a catalog
    (path, URL or directory) whose every Item gets a result. Bands, scaling, band math, tile size and classes
    come from the MLM Item; the options only tune the run (`tile_size`, `overlap` and `blend` for tiling,
    `device`/`providers`/`threads` for the runtime, `probabilities` for class scores, `resolution`/`resampling`
    for the grid, `score_threshold`/`iou_threshold` for detectors, `time_steps` for time series). `cache=False`
    downloads a remote model into a temporary directory; `allow_native_code` loads AOTInductor packages;
    `allow_python_expressions` trusts `python` pre-processing expressions. `source_href`/`model_href` are the
    URLs the input and model are published at, for the results' provenance links (`source_item_hrefs`: the URLs
    of single input Items, each matched to the Item its path names).

    Returns the `catalog.json` written in `output`.

    Example:
        ```python
        import mlmkit

        catalog = mlmkit.predict("demo-output/model", "demo-output/scene", output="prediction-api", overlap=16)
        print(catalog)  # prediction-api/catalog.json: one result Item per input Item
        ```
    """
    from mlmkit.inference import PredictOptions, predict as run_predict
    from mlmkit.progress import QUIET, Progress

    options = PredictOptions(
        tile_size=tile_size, overlap=overlap, blend=blend, batch_size=batch_size, threads=threads,
        providers=tuple(providers) if providers else None, probabilities=probabilities, resolution=resolution,
        resampling=resampling, allow_python=allow_python_expressions, overwrite=overwrite, time_steps=time_steps,
        score_threshold=score_threshold, iou_threshold=iou_threshold, device=device, model_asset=model_asset,
        model_cache=cache, allow_native_code=allow_native_code, progress=progress or Progress(QUIET),
        source_href=source_href, source_item_hrefs=tuple(source_item_hrefs), model_href=model_href)
    return run_predict(str(model), str(input), Path(output), options)


def predict_xarray(model: PathLike, data: xr.DataArray | xr.Dataset, *, tile_size: int | None = None,
                   overlap: int = 0, blend: str = "smooth", batch_size: int = 4, threads: int | None = None,
                   providers: Sequence[str] | None = None, device: str = "auto", model_asset: str | None = None,
                   cache: bool = True, allow_native_code: bool = False, probabilities: bool = False,
                   allow_python_expressions: bool = False) -> xr.DataArray | xr.Dataset:
    """Run the model an MLM Item describes over xarray data, lazily with Dask, as `predict` runs it over files.

    `data` is a DataArray with a band dimension (band names or common names as its coordinate) and y/x
    coordinates with a CRS (rioxarray's `rio.crs`), or a Dataset of such bands, e.g. what odc-stac loads from STAC
    Items. The options are `predict`'s that concern the model, not files (no resolution or resampling: regrid with
    xarray first). Returns a Dask-backed DataArray when the run gives one raster (a class map, or values), else a
    Dataset of them (`classes` and `scores` with `probabilities=True`); nothing runs until it is computed. Needs
    the `xarray` extra.

    Example:
        ```python
        import mlmkit
        import rioxarray
        import xarray as xr

        bands = ["B02", "B03", "B04", "B08"]
        data = xr.concat([rioxarray.open_rasterio(f"demo-output/scene/{band}.tif", chunks=1024).squeeze("band",
                          drop=True) for band in bands], dim="band").assign_coords(band=bands)
        classes = mlmkit.predict_xarray("demo-output/model", data, tile_size=256, overlap=32).compute()
        print(classes.shape, sorted(set(classes.values.ravel().tolist())))
        ```
    """
    from mlmkit.inference.arrays import predict_xarray as run_predict_xarray

    return run_predict_xarray(str(model), data, tile_size=tile_size, overlap=overlap, blend=blend,
                              batch_size=batch_size, threads=threads, providers=tuple(providers) if providers else None,
                              device=device, model_asset=model_asset, model_cache=cache,
                              allow_native_code=allow_native_code, probabilities=probabilities,
                              allow_python=allow_python_expressions)


def train(data: PathLike, *, output: PathLike, task: str | None = None, architecture: str | None = None,
          epochs: int = 10, batch_size: int = 32, lr: float = 1e-3, seed: int = 0, width: int | None = None,
          device: str = "auto", trees: int = 100, max_samples: int = 100_000, bands: Sequence[str] = (),
          model_id: str | None = None, training_cwl_href: str | None = None, inference_cwl_href: str | None = None,
          model_version: str = "1.0.0", experimental: bool = False, citation: str | None = None,
          doi: str | None = None, training_data_href: str | None = None, overwrite: bool = False,
          schema_dir: PathLike | None = None, progress: Progress | None = None) -> TrainSummary | PixelTrainSummary:
    """Train a model on a STAC training catalog and write it, with its MLM Item, as a model catalog.

    `data` is the training catalog (directory, catalog.json or URL) that `mlmkit chips` writes. Nets
    (`architecture` small-cnn, resnet18 or unet; PyTorch) use `epochs`, `batch_size`, `lr`, `width` and `device`;
    pixel classifiers (random-forest, gradient-boosting; scikit-learn) use `trees` and `max_samples`. The model is
    exported to ONNX (nets also to a PyTorch ExportedProgram), compared with the trained model, and described by
    an MLM Item validated before it is written, with the CWL packages as runtime assets (`training_cwl_href` and
    `inference_cwl_href` name released ones instead of copies of the shipped packages).

    Returns the summary: `catalog` (the `catalog.json` written), metrics, sample counts.

    Example:
        ```python
        import mlmkit

        summary = mlmkit.train("demo-output/training-data", output="model-api", epochs=1, width=4)
        print(summary.catalog, summary.result.validation["miou"])
        ```
    """
    common = dict(task=task, seed=seed, bands=tuple(bands), model_id=model_id, training_cwl=training_cwl_href,
                  inference_cwl=inference_cwl_href, overwrite=overwrite, version=model_version,
                  experimental=experimental, citation=citation, doi=doi, schema_dir=_path(schema_dir),
                  training_data_href=training_data_href)
    if architecture in PIXEL_ARCHITECTURES:
        from mlmkit.training.classical import train_pixel_classifier

        return train_pixel_classifier(str(data), output, arch=architecture, trees=trees, max_samples=max_samples,
                                      **common)
    from mlmkit.training.pipeline import train_model

    return train_model(str(data), output, arch=architecture, epochs=epochs, batch_size=batch_size, lr=lr,
                       width=width, device=device, progress=progress, **common)


def quantize(model: PathLike, imagery: PathLike, *, output: PathLike, calibration_tiles: int = 16,
             calibration: str = "percentile", held_out_tiles: int = 32, min_agreement: float = 98.0,
             per_tensor: bool = False, keep_float: Sequence[str] = (), threads: int | None = None,
             allow_python_expressions: bool = False, model_href: str | None = None, overwrite: bool = False,
             progress: Progress | None = None) -> QuantizeReport:
    """Make an int8 copy of an ONNX model an MLM Item describes, calibrated on `imagery` (an Item or catalog) and
    checked against the float model on held-out tiles, as a new MLM Item whose lineage records both.

    `calibration_tiles` tiles set the int8 ranges (`calibration`: "percentile" or "minmax"); `held_out_tiles`
    other tiles measure how often the class stays the same. Below `min_agreement` (per cent of held-out pixels) the
    catalog is still written, with a `mlmkit.errors.QuantizationWarning`. `per_tensor` uses one int8 scale per
    weight tensor instead of one per output channel; `keep_float` names operator types left in float.

    Returns the report: the `catalog` written and the measured `agreement`.

    Example:
        ```python
        import mlmkit

        report = mlmkit.quantize("demo-output/model", "demo-output/scene", output="model-int8-api",
                                 calibration_tiles=4, held_out_tiles=4)
        print(report.catalog, f"{report.agreement.lowest:.2%}")
        ```
    """
    from mlmkit.progress import QUIET, Progress
    from mlmkit.training.quantize import QuantizeOptions, quantize as run_quantize

    options = QuantizeOptions(calibration_tiles=calibration_tiles, held_out_tiles=held_out_tiles,
                              min_agreement=min_agreement / 100, calibration=calibration, per_channel=not per_tensor,
                              keep_float=tuple(keep_float), threads=threads, allow_python=allow_python_expressions,
                              overwrite=overwrite, model_href=model_href, progress=progress or Progress(QUIET))
    return run_quantize(str(model), str(imagery), Path(output), options)


def match(models: PathLike | pystac.Item | Sequence[PathLike | pystac.Item] = (),
          imagery: PathLike | pystac.Item | Sequence[PathLike | pystac.Item] = (), *, model_api: str | None = None,
          model_collections: Sequence[str] = (), api: str | None = None, collections: Sequence[str] = (),
          bbox: tuple[float, float, float, float] | None = None, datetime: str | None = None, limit: int = 100,
          time_steps: int | None = None, token: str | None = None,
          headers: Mapping[str, str] | None = None) -> list[Match]:
    """Which models can run on which imagery, decided from metadata alone by the rules `predict` applies before it
    reads a pixel: every (model, Item) pair with its verdict, the first reason a refused pair fails, and how a
    runnable one would run (bands, grid, dates).

    `models` are MLM Items or catalogs of them (paths, URLs, pystac Items), or come from the STAC API at `model_api`
    (its `model_collections`); `imagery` are imagery Items or catalogs, or come from a search of the STAC API at
    `api` (its `collections`, narrowed by `bbox`, `datetime` and each model's footprint and time range; at most
    `limit` Items per search). `time_steps` is the number of dates per stack for models with a dynamic time
    dimension; `token` (else `$MLMKIT_API_TOKEN`) and `headers` authenticate.

    Returns the pairs, runnable ones first.

    Example:
        ```python
        import mlmkit

        for pair in mlmkit.match("demo-output/model", "demo-output/scene"):
            print(pair.model, [item.id for item in pair.items], pair.runnable, pair.problems[:1])
        ```
    """
    from mlmkit.catalog.publish import auth_headers
    from mlmkit.matching import pair_up, read_imagery, read_models
    from mlmkit.matching.api import ApiSearch, imagery_from_api, models_from_api
    from mlmkit.matching.pairs import ranked

    model_list, imagery_list = _listed(models), _listed(imagery)
    if not model_list and model_api is None:
        raise InvalidArgument("no models; expected one or more MLM Items or catalogs, or a model_api URL")
    if not imagery_list and api is None:
        raise InvalidArgument("no imagery; expected one or more STAC Items or catalogs, or an api URL")
    area, sent = _bbox(bbox), auth_headers(token, headers)
    specs = read_models(model_list) if model_list else []
    if model_api is not None:
        specs += models_from_api(ApiSearch(model_api, tuple(model_collections), area, datetime, limit, sent))
    items = read_imagery(imagery_list) if imagery_list else []
    if api is not None:
        items += imagery_from_api(ApiSearch(api, tuple(collections), area, datetime, limit, sent), specs)
    known: dict = {}  # each Item's bands, listed once for all models
    return ranked(pair for spec in specs for pair in pair_up(spec, items, time_steps, known=known))


def search(catalog: PathLike | None = None, *, api: str | None = None, task: str | None = None,
           bands: Sequence[str] = (), framework: str | None = None,
           bbox: tuple[float, float, float, float] | None = None, datetime: str | None = None,
           text: str | None = None, collections: Sequence[str] = (), limit: int | None = 100,
           token: str | None = None, headers: Mapping[str, str] | None = None,
           server_filter: str = "auto") -> list[ModelMatch]:
    """Find MLM models by what they do and eat, in a local `catalog` or in the STAC API at `api` (one of the two).

    Every criterion given must hold: `task` (in `mlm:tasks`), `bands` (each a model input band, by name or common
    name), `framework` (case-insensitive), `bbox` (west, south, east, north) and `datetime` (an RFC 3339 instant
    or a `start/end` interval, `..` open) against the model's extent, `text` (every word in the id, title,
    description, name, architecture or keywords), `collections`. Against an API the server narrows the candidates
    with what it supports (`server_filter`: auto, filter, query or client) and the same predicate as the local
    search decides; `token` (else `$MLMKIT_API_TOKEN`) and `headers` authenticate.

    Returns at most `limit` matches: each Item as JSON, where it was found and its MLM view (`spec`).

    Example:
        ```python
        import mlmkit

        for match in mlmkit.search("demo-output/model", task="semantic-segmentation", bands=["red"]):
            print(match.item["id"], match.spec.name)
        ```
    """
    from mlmkit.catalog.publish import auth_headers
    from mlmkit.catalog.search import ModelQuery, search_api, search_local

    if (catalog is None) == (api is None):
        raise InvalidArgument("give either a local catalog or an api URL; expected exactly one place to search")
    query = ModelQuery(task=task, bands=tuple(bands), framework=framework, bbox=_bbox(bbox), datetime=datetime,
                       text=text, collections=tuple(collections))
    if api is not None:
        return search_api(api, query, limit=limit, headers=auth_headers(token, headers), mode=server_filter)
    return search_local(catalog, query, limit=limit)


def publish(catalog: PathLike, *, api: str, collection: str | None = None, base_href: str | None = None,
            token: str | None = None, headers: Mapping[str, str] | None = None, schema_dir: PathLike | None = None,
            progress: Progress | None = None) -> PublishSummary:
    """Validate a local catalog, then upsert its collections and items into the STAC API at `api` (Transactions).

    Nothing is uploaded when any document is invalid. Collections first, then items (POST, then PUT when the API
    has it already); an item goes into its nearest Collection, or into `collection` (created from the items'
    extent if the API lacks it). Structural links are dropped; local files under the catalog directory get URLs
    under `base_href`. `token` (else `$MLMKIT_API_TOKEN`) is sent as a bearer token, `headers` as they are.

    Returns what was created, updated or kept.

    Example:
        ```python
        import os

        import mlmkit

        # STAC_API: the root URL of a STAC API; the token for writes from $MLMKIT_API_TOKEN
        summary = mlmkit.publish("demo-output/scene", api=os.environ["STAC_API"],
                                 base_href="https://data.example.org/demo-scene/", collection="demo-scenes")
        print(summary.counts())
        ```
    """
    from mlmkit.catalog.publish import auth_headers, publish as publish_catalog

    return publish_catalog(catalog, api, collection=collection, base_href=base_href,
                           headers=auth_headers(token, headers), schema_dir=_path(schema_dir), progress=progress)


def run(model: PathLike, inputs: Sequence[PathLike], *, output: PathLike = ".", engine: str = "cwltool",
        batch_system: str | None = None, container: bool = True, train: bool = False,
        params: Mapping[str, str] | Sequence[tuple[str, str]] = (), engine_args: Sequence[str] = (),
        engine_url: str | None = None, engine_process: str | None = None, engine_timeout: float | None = None,
        log: PathLike | None = None, overwrite: bool = False) -> Path:
    """Run a model through the CWL application package its MLM Item names (`mlm:inference-runtime`, or
    `mlm:training-runtime` with `train=True`), as its author shipped it.

    Each of `inputs` (STAC Items or catalogs, paths or URLs; URLs are staged first) is one scattered job; the
    model's catalog is handed in as the package's `model` input, `params` set its other inputs. `engine` is
    cwltool or toil (`batch_system`: single_machine, slurm, kubernetes, ...), or ogcapi: an OGC API - Processes
    server at `engine_url` (the package is deployed there with `$MLMKIT_ENGINE_TOKEN`, unless `engine_process`
    names one deployed already; the remote job is dismissed after `engine_timeout` seconds). `container=False`
    runs the tools with the mlmkit on PATH instead of the package's image; `engine_args` go to the engine as they
    are; `log` keeps the engine's log (kept anyway when the run fails).

    Returns the result catalog, `output/<output name>/catalog.json`.

    Example:
        ```python
        import mlmkit

        catalog = mlmkit.run("demo-output/model", ["demo-output/scene"], output="runs-api", container=False,
                             params={"overlap": "16"})
        ```
    """
    from mlmkit.packages.runner import RunOptions, run_model

    pairs = tuple(params.items()) if isinstance(params, Mapping) else tuple(params)
    remote = {"engine_timeout": engine_timeout} if engine_timeout is not None else {}
    options = RunOptions(engine=engine, batch_system=batch_system, container=container, train=train,
                         params=tuple((name, str(value)) for name, value in pairs), engine_args=tuple(engine_args),
                         log=_path(log), overwrite=overwrite, engine_url=engine_url, engine_process=engine_process,
                         **remote)
    return run_model(str(model), [str(source) for source in inputs], output, options)


def stage_in(hrefs: Sequence[str], *, output: PathLike, assets: Sequence[str] = (), overwrite: bool = False) -> Path:
    """Copy STAC Items, Catalogs or Collections (URLs or paths) and their assets into a new local catalog, as an
    ADES stage-in step does; each copy keeps a `canonical` link to where it is published.

    `assets` limits the assets downloaded (the others keep absolute hrefs). Returns the `catalog.json` written.

    Example:
        ```python
        import mlmkit

        catalog = mlmkit.stage_in(["demo-output/scene/catalog.json"], output="staged")  # paths or URLs
        ```
    """
    from mlmkit.packages.stage import stage_in as run_stage_in

    return run_stage_in([str(href) for href in hrefs], Path(output), assets, overwrite) / "catalog.json"


def stage_out(catalog: PathLike, *, s3_url: str, endpoint_url: str | None = None) -> str:
    """Upload a self-contained STAC catalog directory to `s3_url` (s3://bucket/prefix), assets first and
    catalog.json last, as an ADES stage-out step does. Credentials come from the usual AWS settings;
    `endpoint_url` (else `$AWS_ENDPOINT_URL`) points at another S3 service.

    Returns the URL of the uploaded catalog.json.

    Example:
        ```python
        import mlmkit

        url = mlmkit.stage_out("staged", s3_url="s3://my-bucket/runs/42")
        ```
    """
    from mlmkit.packages.stage import stage_out as run_stage_out

    return run_stage_out(Path(catalog), s3_url, endpoint_url)


def _listed(sources: object) -> list:
    """One source (a path, URL or pystac Item) or several, as a list; paths as strings."""
    items = list(sources) if isinstance(sources, (list, tuple)) else [sources] if sources else []
    return [str(item) if isinstance(item, os.PathLike) else item for item in items]


def _path(value: PathLike | None) -> Path | None:
    return None if value is None else Path(value)


def _bbox(bbox: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    if len(bbox) != 4:
        raise InvalidArgument(f"bbox {list(bbox)} has {len(bbox)} numbers; expected west, south, east, north")
    west, south, east, north = (float(value) for value in bbox)
    if west > east or south > north:
        raise InvalidArgument(f"bbox {list(bbox)} has west > east or south > north; expected west, south, east, north")
    return west, south, east, north
