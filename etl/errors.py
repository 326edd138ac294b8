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
