"""One exception type whose message is the single line a user sees."""


class MlmkitError(Exception):
    """A user-facing failure: the message says what was wrong and what was expected."""


class InvalidInput(MlmkitError):
    """The data, metadata or arguments given cannot be used as they are."""


class ModelRunError(InvalidInput):
    """The model failed on the input it was given (mostly a tile size or layout it cannot take)."""


class TileSizeError(InvalidInput):
    """A per-pixel model output came back at another size than the tile it was given."""
