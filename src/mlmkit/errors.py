"""One exception type whose message is the single line a user sees."""


class MlmkitError(Exception):
    """A user-facing failure: the message says what was wrong and what was expected."""


class InvalidInput(MlmkitError):
    """The data, metadata or arguments given cannot be used as they are."""


class MlmkitWarning(UserWarning):
    """Something a user should know that does not stop the run; the CLI prints it as one line."""
