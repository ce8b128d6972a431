"""The storage layer's one error type, below every storage module."""


class StorageError(RuntimeError):
    """A lake operation failed; the message names the path and what to check."""
