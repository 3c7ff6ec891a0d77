"""Errors a user can act on: each message names the file and line, or the params key."""


class Mta4dprError(Exception):
    """Base class: the message alone says what is wrong and where."""


class DataError(Mta4dprError):
    """Malformed or inconsistent input data (names the file and, where known, the line)."""

    def __init__(self, path, message, line=None):
        self.path, self.line = str(path), line
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")


class ParamsError(Mta4dprError):
    """A params profile is wrong (names the key, e.g. `training.steps`)."""

    def __init__(self, key, message, source=None):
        self.key = key
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}params key `{key}`: {message}")


class ModelNotFoundError(Mta4dprError):
    """A model name resolved nowhere; the message lists every place tried."""


class CacheError(Mta4dprError):
    """A cache file is corrupted or truncated (its checksum does not match)."""
