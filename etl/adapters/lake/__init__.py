"""The data lake: a local directory or an S3 prefix, behind one small file interface.

``open_lake(uri)`` gives the lake a ``UFO_STORAGE`` value names. Callers use the ``Lake``
interface only (``etl/adapters/lake/base.py``); which kind it is matters nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.adapters.lake.base import Lake, NotAFile, TooLarge
from etl.adapters.lake.local import LocalLake
from etl.errors import StorageError

if TYPE_CHECKING:
    from etl.adapters.lake.s3 import S3Lake

__all__ = ["Lake", "LocalLake", "NotAFile", "S3Lake", "TooLarge", "open_lake"]


def __getattr__(name: str) -> object:
    # S3's client (boto3, Luigi's S3 module: about 0.1 s) is imported when a lake on S3 is
    # opened, not by every run on a local lake.
    if name == "S3Lake":
        from etl.adapters.lake.s3 import S3Lake

        return S3Lake
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_lake(uri: str) -> Lake:
    """The lake at ``uri``: a local directory (or ``file://``), or ``s3://bucket/prefix``."""
    if uri.startswith(("s3://", "s3a://")):
        from etl.adapters.lake.s3 import S3Lake

        return S3Lake(uri)
    if "://" in uri and not uri.startswith("file://"):
        raise StorageError(
            f"UFO_STORAGE={uri!r} is neither a local directory nor an s3://bucket/prefix URL."
        )
    return LocalLake(uri.removeprefix("file://"))
