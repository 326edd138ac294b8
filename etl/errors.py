"""The project's exception types: each message says what the user should fix."""


class UfoError(Exception):
    """A failure the user can fix; the message says how."""


class ConfigError(UfoError):
    """The configuration (environment or luigi.cfg) is missing or wrong."""


class SourceError(UfoError):
    """The raw report file is missing, unreadable, empty or of another layout."""


class StorageError(UfoError):
    """The data lake (local directory or S3 bucket) cannot be used."""


class DatabaseError(UfoError):
    """The PostgreSQL database cannot be reached or written."""


class DataError(UfoError):
    """An intermediate output is empty or has the wrong shape."""


#: Characters of a value that an error message shows: a value can be megabytes long (a request,
#: a declaration, a setting), and an error line holding it whole is unreadable.
SHOWN_CHARS = 80


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` as an error message shows it: cut after ``limit`` characters, saying so."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value) - limit} more characters)"
    text = repr(value)
    return text if len(text) <= 2 * limit else f"{text[:limit]}... ({len(text) - limit} more)"
