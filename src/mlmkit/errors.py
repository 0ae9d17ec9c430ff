"""One exception type whose message is the single line a user sees."""

from __future__ import annotations

import errno

# How the C libraries (GDAL, libtiff, PyTorch's zip writer) word a full disk in the errors they raise.
_NO_SPACE_TEXTS = ("no space left on device", "free disk space available", "disk quota exceeded")


class MlmkitError(Exception):
    """A user-facing failure: the message says what was wrong and what was expected."""


class InvalidInput(MlmkitError):
    """The data, metadata or arguments given cannot be used as they are."""


class ModelRunError(InvalidInput):
    """The model failed on the input it was given (mostly a tile size or layout it cannot take)."""


class TileSizeError(InvalidInput):
    """A per-pixel model output came back at another size than the tile it was given."""


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
