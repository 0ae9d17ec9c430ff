"""What goes wrong, by name: one base error whose message is the single line a user sees, and named warnings.

Errors: `MlmkitError` is the base; each subclass says what went wrong (`NotFound`, `InvalidArgument`,
`InvalidMetadata`, `UnsafePath`, `LimitExceeded`, `ModelRefused`, `ModelRunError`, `RemoteFailure`, `NoSpace`,
...). The CLI maps them to exit statuses in one table (`mlmkit.cli.EXIT_STATUS`). Messages speak of arguments and
fields, never of CLI flags.

Warnings: every note a run has for its user is a `warnings.warn` of an `MlmkitWarning` subclass (`warn` below);
the CLI holds them until the run succeeds and prints each as one `Warning:` line. A library caller sees them as
ordinary Python warnings and can filter them by class.
"""

from __future__ import annotations

import errno
import warnings

# How the C libraries (GDAL, libtiff, PyTorch's zip writer) word a full disk in the errors they raise.
_NO_SPACE_TEXTS = ("no space left on device", "free disk space available", "disk quota exceeded")


class MlmkitError(Exception):
    """A user-facing failure: the message says what was wrong and what was expected."""


class InvalidInput(MlmkitError):
    """The data, metadata or arguments given cannot be used as they are."""


class NotFound(InvalidInput):
    """A path given as an argument does not exist, or a directory given lacks the catalog.json it should hold."""


class InvalidArgument(InvalidInput):
    """An argument's value has the wrong form, is out of range, or contradicts another argument."""


class InvalidMetadata(InvalidInput):
    """A STAC or MLM document says something that cannot be used or contradicts itself (the field is named)."""


class UnsafePath(InvalidInput):
    """An id, key or href would name a path outside the output, or a local file a remote document may not name."""


class LimitExceeded(InvalidInput):
    """An input is larger or deeper than the stated limit (request size, expression depth, upload size, ...)."""


class ModelRefused(InvalidInput):
    """A model file or layout mlmkit will not run: a pickle, an unsupported format or shape, a constraint."""


class NotRunnable(InvalidInput):
    """This model cannot run on this imagery: the first rule it fails is named (see `mlmkit.match`)."""


class ModelRunError(InvalidInput):
    """The model failed on the input it was given (mostly a tile size or layout it cannot take)."""


class TileSizeError(ModelRunError):
    """A per-pixel model output came back at another size than the tile it was given."""


class RemoteFailure(InvalidInput):
    """A server or object store did not give what was asked (HTTP error, timeout, not JSON, missing object)."""


class SchemaUnavailable(MlmkitError):
    """A JSON schema needed for validation is neither shipped, nor in the schema mirror given, nor downloadable."""


class NoSpace(MlmkitError):
    """The disk (or quota) filled up while writing output."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error from Python or a C library means the disk or the quota is full."""
    if isinstance(exc, NoSpace):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return isinstance(exc, Exception) and any(marker in text for marker in _NO_SPACE_TEXTS)


def no_space(path: object, exc: BaseException) -> NoSpace:
    """The one-line error for a full disk while writing `path`."""
    filename = getattr(exc, "filename", None)
    where = f"{filename} (output {path})" if filename and str(filename) != str(path) else str(path)
    return NoSpace(f"no space left on the device while writing {where}; expected free space for the output "
                   "(nothing was kept)")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt for SIGINT, so every `finally` and context
    manager (temporary output, downloaded model files) cleans up before the process exits."""

    def __init__(self, signum: int = 15) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


class MlmkitWarning(UserWarning):
    """Something a user should know that does not stop the run; the CLI prints it as one line."""


class MetadataWarning(MlmkitWarning):
    """Metadata that is probably wrong, or a rule that could not be checked because a field is absent."""


class ResamplingWarning(MlmkitWarning):
    """The imagery is resampled to another resolution than it has (or than the model expects)."""


class OptionAdjusted(MlmkitWarning):
    """An option was changed to a value the model can take (a tile size rounded to the model's multiple)."""


class CacheWarning(MlmkitWarning):
    """A cached download no longer matched its file:checksum and was fetched again."""


class LineageWarning(MlmkitWarning):
    """A provenance link could not be written as a lasting URL (the input came from a temporary place)."""


class QuantizationWarning(MlmkitWarning):
    """A quantized model agrees with its float model less than the goal: its results are measurably worse."""


def warn(message: str, category: type[MlmkitWarning] = MlmkitWarning) -> None:
    """Say `message` to the user through the one warning channel (see the module docstring)."""
    warnings.warn(message, category, stacklevel=2)
