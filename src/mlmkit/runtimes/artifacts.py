"""Which kind of model file an MLM model asset holds: from what the asset declares, then from the file itself.

MLM names artifact types after the call that wrote them (`torch.jit.save`, `torch.export.save`, `torch.save`,
…). A declaration may be missing or wrong, so for PyTorch files the archive's own layout decides: a PT2
archive with compiled kernels is an AOTInductor package, one without is an ExportedProgram, an archive with
TorchScript code is TorchScript, and anything else that unpickles is a `torch.save` pickle, which mlmkit
never loads (it would run the pickle's code and needs the author's classes anyway).
"""

from __future__ import annotations

import zipfile
from enum import Enum
from pathlib import Path

from mlmkit.errors import ModelRefused


class ArtifactKind(str, Enum):
    """A model file format mlmkit tells apart; the value is the MLM `mlm:artifact_type` it writes."""

    ONNX = "onnx"
    TORCHSCRIPT = "torch.jit.save"
    EXPORTED_PROGRAM = "torch.export.save"
    AOTI_PACKAGE = "torch._inductor.aoti_compile_and_package"
    PICKLE = "torch.save"
    PT2 = "pt2"  # declared as a .pt2 / torch.export artifact: the archive says which of the two it is

    @property
    def native_code(self) -> bool:
        """Whether loading the file runs compiled native code from it (loaded only when its author is trusted)."""
        return self is ArtifactKind.AOTI_PACKAGE

    @property
    def label(self) -> str:
        """How messages name the format."""
        return _LABELS[self]

    @property
    def media_type(self) -> str:
        if self is ArtifactKind.ONNX:
            return "application/octet-stream; application=onnx"
        if self is ArtifactKind.AOTI_PACKAGE:
            return "application/octet-stream; framework=pytorch; profile=compiled"
        return "application/octet-stream; framework=pytorch"


_LABELS = {ArtifactKind.ONNX: "ONNX", ArtifactKind.TORCHSCRIPT: "TorchScript",
           ArtifactKind.EXPORTED_PROGRAM: "ExportedProgram", ArtifactKind.AOTI_PACKAGE: "AOTInductor package",
           ArtifactKind.PICKLE: "torch.save pickle", ArtifactKind.PT2: "PT2 archive"}
PT2_KINDS = (ArtifactKind.EXPORTED_PROGRAM, ArtifactKind.AOTI_PACKAGE)
# mlm:artifact_type spellings (the MLM best practices' and earlier README's) -> kind
_ARTIFACT_TYPES = {
    "onnx": ArtifactKind.ONNX,
    "torch.jit.save": ArtifactKind.TORCHSCRIPT, "torch.jit.script": ArtifactKind.TORCHSCRIPT,
    "torch.jit.trace": ArtifactKind.TORCHSCRIPT,
    "torch.export.save": ArtifactKind.PT2, "torch.export": ArtifactKind.PT2,
    ArtifactKind.AOTI_PACKAGE.value: ArtifactKind.AOTI_PACKAGE, "aoti": ArtifactKind.AOTI_PACKAGE,
    "torch.save": ArtifactKind.PICKLE,
}
_SUFFIXES = {".onnx": ArtifactKind.ONNX, ".pt2": ArtifactKind.PT2}
_TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")
SUPPORTED = ("ONNX (mlm:artifact_type 'onnx'), TorchScript ('torch.jit.save') or an ExportedProgram / "
             "AOTInductor package ('torch.export.save', .pt2)")
PICKLE_REFUSAL = ("is a torch.save pickle: loading it runs code stored in the file and needs the author's model "
                  "classes, so mlmkit never unpickles it; expected the model saved with torch.export.save (.pt2), "
                  "torch.jit.save or as ONNX")


def declared_kind(href: str, media_type: str | None, artifact_type: str | None) -> ArtifactKind | None:
    """The kind an asset declares: its mlm:artifact_type, else its media type, else its file extension."""
    if artifact_type:
        kind = _ARTIFACT_TYPES.get(artifact_type.strip().lower())
        if kind is not None:
            return kind
    media = (media_type or "").lower()
    if "onnx" in media:
        return ArtifactKind.ONNX
    suffix = Path(href.split("?")[0]).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if "pytorch" in media or "torch" in media or suffix in _TORCH_SUFFIXES:
        return ArtifactKind.TORCHSCRIPT  # the file decides between TorchScript and a pickle
    return None


def _archive_kind(names: list[str]) -> ArtifactKind | None:
    if any(name.endswith("/archive_format") for name in names):
        aoti = any("/data/aotinductor/" in name for name in names)
        return ArtifactKind.AOTI_PACKAGE if aoti else ArtifactKind.EXPORTED_PROGRAM
    if any("/code/__torch__/" in name or name.endswith("/constants.pkl") for name in names):
        return ArtifactKind.TORCHSCRIPT
    if any(name.endswith("data.pkl") for name in names):
        return ArtifactKind.PICKLE
    return None


def file_kind(path: str | Path, declared: ArtifactKind | None) -> ArtifactKind:
    """The kind of a local model file: PyTorch archives are told apart by their layout, never by a guess."""
    path = Path(path)
    kind = None
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            kind = _archive_kind(archive.namelist())
    if kind is not None:
        return kind
    with open(path, "rb") as stream:
        head = stream.read(1)
    if head == b"\x80" or declared is ArtifactKind.PICKLE:  # pickle protocol 2+: a legacy torch.save file
        return ArtifactKind.PICKLE
    if declared is ArtifactKind.ONNX:
        return declared
    raise ModelRefused(f"{path.name} is neither a PyTorch archive nor declared as ONNX; expected {SUPPORTED}")


def refuse_pickle(kind: ArtifactKind | None, where: str) -> None:
    """torch.save pickles are refused before anything reads them."""
    if kind is ArtifactKind.PICKLE:
        raise ModelRefused(f"{where} {PICKLE_REFUSAL}")
