"""Open the model an MLM Item describes in the runtime its artifact type needs.

The model asset is chosen (`--model-asset`, else the first one mlmkit runs: ONNX before PyTorch files, as
it needs no torch), fetched through the download cache with its `file:checksum` verified, recognised by
its content, and loaded on the device that `--device` and `mlm:accelerator` agree on. `torch.save`
pickles are refused before they are downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlmkit.runtimes.artifacts import SUPPORTED, ArtifactKind, declared_kind, file_kind, refuse_pickle
from mlmkit.errors import InvalidArgument, ModelRefused
from mlmkit.stac.fetch import ProgressHook, local_copy
from mlmkit.mlm.spec import ModelAsset, ModelInput, ModelOutput, ModelSpec
from mlmkit.runtimes.base import ModelRunner, OpenOptions, TensorInfo, TensorSpec
from mlmkit.runtimes.registry import RUNTIMES, runtime_for

__all__ = ["DEVICES", "ModelRunner", "RuntimeOptions", "TensorSpec", "choose_asset", "choose_device", "open_runtime"]

DEVICES = ("auto", "cpu", "cuda")
_CPU_ACCELERATORS = ("amd64", "intel-ipex-cpu", "macos-arm")


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run the model: threads, onnxruntime providers, device, which model asset, the download cache."""

    threads: int | None = None
    providers: tuple[str, ...] | None = None
    device: str = "auto"
    asset_key: str | None = None
    cache: bool = True
    allow_native_code: bool = False
    progress: ProgressHook | None = None


def choose_device(requested: str, accelerator: str | None, constrained: bool, cuda_available: bool) -> str:
    """cpu or cuda: --device, where `auto` follows mlm:accelerator (cuda when the Item says cuda or nothing)."""
    if requested not in DEVICES:
        raise InvalidArgument(f"device {requested!r} is unknown; expected one of {', '.join(DEVICES)}")
    accelerator = (accelerator or "").lower() or None
    wants_cuda = accelerator == "cuda"
    if requested == "auto":
        device = "cuda" if cuda_available and (wants_cuda or accelerator is None) else "cpu"
    else:
        device = requested
    if constrained and accelerator not in ("cuda", *_CPU_ACCELERATORS):
        raise ModelRefused(f"the model is constrained to mlm:accelerator {accelerator!r}; mlmkit runs models on "
                           "cpu or cuda")
    if constrained and accelerator is not None and wants_cuda != (device == "cuda"):
        raise ModelRefused(f"the model is constrained to mlm:accelerator {accelerator!r} and cannot run on {device}"
                           f"{' (CUDA is not available here)' if wants_cuda and not cuda_available else ''}")
    if device == "cuda" and not cuda_available:
        raise InvalidArgument("device 'cuda': CUDA is not available to this runtime here; expected the device "
                              "argument cpu or auto")
    return device


def _tensors(tensors: Sequence[ModelInput | ModelOutput]) -> tuple[TensorInfo, ...]:
    return tuple(TensorInfo(tensor.name, tensor.shape, tensor.data_type) for tensor in tensors)


def _kind(asset: ModelAsset) -> ArtifactKind | None:
    return declared_kind(asset.href, asset.media_type, asset.artifact_type)


def choose_asset(spec: ModelSpec, key: str | None) -> ModelAsset:
    """The mlm:model asset to run: the one named `key`, else the first of the most runnable kind."""
    assets = spec.model_assets or (spec.model_asset,)
    if key is not None:
        chosen = next((asset for asset in assets if asset.key == key), None)
        if chosen is None:
            raise InvalidArgument(f"the MLM Item has no mlm:model asset {key!r}; expected one of "
                                  f"{', '.join(asset.key for asset in assets)}")
        return chosen
    for kind in RUNTIMES:  # in the registry's order: what needs the fewest dependencies first
        for asset in assets:
            if _kind(asset) is kind:
                return asset
    described = ", ".join(f"{a.key!r} ({a.artifact_type or a.media_type or 'of unknown type'}, {a.href})"
                          for a in assets)
    refuse_pickle(_kind(assets[0]), f"model asset {assets[0].key!r} ({assets[0].href})")
    raise ModelRefused(f"model asset(s) {described} are of no type mlmkit runs; mlmkit predict runs {SUPPORTED}")


def open_runtime(spec: ModelSpec, options: RuntimeOptions | None = None) -> ModelRunner:
    """The chosen model asset, loaded; its downloaded file is gone once the model is in memory."""
    options = options or RuntimeOptions()
    asset = choose_asset(spec, options.asset_key)
    where = f"model asset {asset.key!r} ({asset.href})"
    declared = _kind(asset)
    refuse_pickle(declared, where)
    if declared is None:
        raise ModelRefused(f"{where} is {asset.artifact_type or asset.media_type or 'of unknown type'}; "
                           f"mlmkit predict runs {SUPPORTED}")
    constrained = bool(spec.accelerator_constrained)
    with local_copy(asset.href, asset.file_checksum, cache=options.cache, progress=options.progress) as path:
        kind = file_kind(path, declared)
        refuse_pickle(kind, where)
        runtime = runtime_for(kind)
        device = choose_device(options.device, spec.accelerator, constrained,
                               runtime.cuda_available(f"the {kind.value} model {path.name}"))
        return runtime.open(path, kind, OpenOptions(
            device, options.threads, options.providers, options.allow_native_code, asset.href, options.cache,
            asset.file_checksum, _tensors(spec.inputs), _tensors(spec.outputs)))
