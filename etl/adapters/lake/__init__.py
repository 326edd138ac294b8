"""The data lake: a local directory or an S3 prefix, behind one small file interface.

``open_lake(uri)`` gives the lake a ``UFO_STORAGE`` value names. Callers use the ``Lake``
interface only (``etl/adapters/lake/base.py``); which kind it is matters nowhere else.
"""

from __future__ import annotations

from etl.adapters.lake.base import Lake, NotAFile, TooLarge
from etl.adapters.lake.local import LocalLake
from etl.adapters.lake.s3 import S3Lake
from etl.errors import StorageError

__all__ = ["Lake", "LocalLake", "NotAFile", "S3Lake", "TooLarge", "open_lake"]


def open_lake(uri: str) -> Lake:
    """The lake at ``uri``: a local directory (or ``file://``), or ``s3://bucket/prefix``."""
    if uri.startswith(("s3://", "s3a://")):
        return S3Lake(uri)
    if "://" in uri and not uri.startswith("file://"):
        raise StorageError(
            f"UFO_STORAGE={uri!r} is neither a local directory nor an s3://bucket/prefix URL."
        )
    return LocalLake(uri.removeprefix("file://"))
