"""A model file sent to the describe form: size-limited, kept in a temporary directory for one request under
a name mlmkit chooses, refused when it is a pickle or native code, and read into what it declares.

The page keeps what the file declared (`UploadedModel`, as JSON in a hidden field) so that checking the
metadata as it is typed needs no second upload and nothing stays on the server between requests.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mlmkit.errors import InvalidArgument, InvalidInput, LimitExceeded, ModelRefused
from mlmkit.mlm.build import ModelMetadata, read_described_file
from mlmkit.runtimes.artifacts import ArtifactKind, declared_kind, file_kind, refuse_pickle
from mlmkit.runtimes.info import ModelFileInfo
from mlmkit.runtimes.onnx_info import TensorInfo
from mlmkit.stac.checksum import file_checksum

# A model file's name keeps a suffix mlmkit reads; everything else about the name is made plain.
_SUFFIXES = (".onnx", ".pt2", ".pt", ".pth", ".ts", ".torchscript", ".jit")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_STEM_LENGTH = 64
# TorchScript files are run once on zeros of the declared shape to find their outputs.
MAX_PROBE_ELEMENTS = 1 << 26
_CHUNK = 1 << 20

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def upload_name(filename: str | None) -> str:
    """A plain file name for an uploaded file: its stem in [A-Za-z0-9_-], its suffix only if mlmkit reads it."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    stem, dot, suffix = name.rpartition(".")
    if not dot or f".{suffix.lower()}" not in _SUFFIXES:
        stem, suffix = name, ""
    plain = _UNSAFE.sub("-", stem).strip("-_")[:_STEM_LENGTH].strip("-_") or "model"
    return f"{plain}.{suffix.lower()}" if suffix else plain


def limited_receive(receive: Receive, max_bytes: int, message: str) -> Receive:
    """An ASGI `receive` that raises LimitExceeded(`message`) once the request body passes `max_bytes`."""
    seen = 0

    async def counted() -> MutableMapping[str, Any]:
        nonlocal seen
        received = await receive()
        seen += len(received.get("body", b""))
        if seen > max_bytes:
            raise LimitExceeded(message)
        return received

    return counted


def too_large(max_bytes: int) -> str:
    return (f"the upload is larger than this server's limit of {max_bytes / 2**20:g} MiB; expected a model file "
            "within it (the operator sets the limit)")


def save_upload(source: Any, target_dir: Path, filename: str | None) -> Path:
    """Copy an uploaded file object into `target_dir` under its plain name; an empty upload is refused."""
    target = target_dir / upload_name(filename)
    with open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            out.write(chunk)
    if target.stat().st_size == 0:
        raise ModelRefused(f"{target.name} is empty; expected a model file (ONNX, TorchScript or .pt2)")
    return target


@dataclass(frozen=True)
class UploadedModel:
    """What an uploaded model file declared, and which file it was (plain name, size, file:checksum)."""

    filename: str
    size: int
    checksum: str
    info: ModelFileInfo

    def to_json(self) -> str:
        return json.dumps({"filename": self.filename, "size": self.size, "checksum": self.checksum,
                           "info": {**asdict(self.info), "kind": self.info.kind.value}})

    @classmethod
    def from_json(cls, text: str) -> UploadedModel:
        """The page's copy, refused unless it has the shape `to_json` writes (it comes back from a browser)."""
        try:
            data = json.loads(text)
            info = data["info"]
            tensors = [tuple(TensorInfo(str(t["name"]), tuple(int(d) for d in t["shape"]), str(t["data_type"]))
                             for t in info[key]) for key in ("inputs", "outputs")]
            counts = [None if info[key] is None else int(info[key]) for key in ("total_parameters", "memory_size")]
            return cls(upload_name(data["filename"]), int(data["size"]), str(data["checksum"]),
                       ModelFileInfo(ArtifactKind(info["kind"]), *tensors, *counts, bool(info["onnx_ml"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"the page's model description is damaged ({type(exc).__name__}); expected the one "
                                  "this server wrote: read the model file again") from exc


def _refuse_native_code(kind: ArtifactKind, name: str) -> None:
    if kind.native_code:
        raise ModelRefused(f"{name} is an AOTInductor package: compiled native code, which this server never loads "
                           "from an upload; expected the ExportedProgram (.pt2 from torch.export.save), TorchScript "
                           "or ONNX file of the same model")


def _declared_input(spec: Mapping[str, Any]) -> ModelMetadata:
    """The metadata that reading a file uses: the input a file without recorded shapes is run with."""
    shape = spec.get("input_shape")
    elements = math.prod(max(int(d), 1) for d in shape or ())
    if elements > MAX_PROBE_ELEMENTS:
        raise LimitExceeded(f"input_shape {shape} has {elements} elements, more than the {MAX_PROBE_ELEMENTS} this "
                            "server runs the model on to find its outputs; expected a smaller tile size")
    return ModelMetadata(id="upload", name="upload", architecture="", tasks=[], input_name=spec.get("input_name"),
                         input_shape=shape, input_data_type=spec.get("input_data_type") or "float32")


def read_upload(path: Path, spec: Mapping[str, Any]) -> UploadedModel:
    """What the saved upload declares (`spec`'s input_shape stands in where the file records none); pickles and
    native code are refused before anything loads them."""
    kind = file_kind(path, declared_kind(path.name, None, None) or ArtifactKind.ONNX)
    refuse_pickle(kind, path.name)
    _refuse_native_code(kind, path.name)
    meta = _declared_input(spec)
    try:
        info = read_described_file(path, meta)
    except InvalidInput as exc:
        if kind is ArtifactKind.ONNX:  # what is neither a PyTorch archive nor a pickle was read as ONNX
            cause = str(exc.__cause__).strip().splitlines()[0] if exc.__cause__ else "it holds no graph"
            raise ModelRefused(f"{path.name} is not a model file: no PyTorch archive, and not ONNX ({cause}); "
                               "expected an ONNX, TorchScript or .pt2 file") from exc
        # messages name the temporary path: the user knows the file by its name
        raise type(exc)(str(exc).replace(f"{path.parent}/", "").splitlines()[0]) from exc
    return UploadedModel(path.name, path.stat().st_size, file_checksum(path), info)
