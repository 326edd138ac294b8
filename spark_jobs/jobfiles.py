"""The job's own small file work (listing what Spark wrote, sizes, JSON reports), without the JVM.

Spark writes the job's data; the driver lists it, sums its input's size and writes its small
JSON files itself: local paths directly, ``s3://`` and ``s3a://`` ones with boto3 (its
credentials and endpoint from the usual ``AWS_*`` variables). Nothing here reaches into Spark's
JVM, so the job runs the same on a classic driver and against a Spark Connect server, where
the driver's JVM is out of reach. Local paths are read as the driver sees them: against a Spark
Connect server they must be the same on both sides (one machine, or a shared volume).
"""

from __future__ import annotations

import os
from functools import cache
from urllib.parse import urlparse

S3_SCHEMES = ("s3", "s3a")


def local(path: str) -> str | None:
    """The path on this machine of a plain path or a ``file://`` URI; None for any other scheme.

    The driver reads and writes its small files there directly: Hadoop's local filesystem forks
    a shell per file to read permissions while listing (12 ms a file: 4 s for a year of dates).
    """
    if path.startswith("file:"):
        return "/" + path.removeprefix("file:").lstrip("/")
    return None if "://" in path else path


def _s3(path: str) -> tuple[str, str]:
    parsed = urlparse(path)
    if parsed.scheme not in S3_SCHEMES:
        raise ValueError(
            f"{path}: the job's output and input must be local paths or s3:// or s3a:// URIs"
        )
    return parsed.netloc, parsed.path.lstrip("/")


@cache
def _client():
    try:
        import boto3
    except ImportError:
        raise RuntimeError(
            "the job reads and writes S3 with boto3 on the driver: pip install boto3"
        ) from None
    return boto3.client("s3")


def _keys(bucket: str, prefix: str):
    pages = _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for item in page.get("Contents", ()):
            if not item["Key"].endswith("/"):  # a folder's marker
                yield item["Key"], item["Size"]


def list_files(path: str) -> list[str]:
    """Paths (relative to ``path``) of the data files under ``path``, recursively: not those
    whose name or folder starts with ``_`` or ``.`` (``_SUCCESS``, checksums)."""
    root = local(path)
    if root is not None:
        found = (
            os.path.relpath(os.path.join(folder, name), root)
            for folder, _, names in os.walk(root)
            for name in names
        )
    else:
        bucket, key = _s3(path)
        prefix = key.rstrip("/") + "/"
        found = (name.removeprefix(prefix) for name, _ in _keys(bucket, prefix))
    return sorted(
        rel for rel in found if not any(part.startswith(("_", ".")) for part in rel.split("/"))
    )


def total_bytes(paths: list[str]) -> int:
    """The size of the files (or of everything under the folders) at ``paths``."""
    total = 0
    for path in paths:
        root = local(path)
        if root is None:
            bucket, key = _s3(path)
            found = dict(_keys(bucket, key))
            folder = key.rstrip("/") + "/"
            total += (
                found[key]
                if key in found
                else sum(size for name, size in found.items() if name.startswith(folder))
            )
        elif os.path.isdir(root):
            total += sum(
                os.path.getsize(os.path.join(folder, name))
                for folder, _, names in os.walk(root)
                for name in names
            )
        elif os.path.exists(root):
            total += os.path.getsize(root)
    return total


def fetch(path: str, folder: str) -> str:
    """A local path of the file at ``path``: itself when local, else a copy made in ``folder``."""
    root = local(path)
    if root is not None:
        return root
    bucket, key = _s3(path)
    copy = os.path.join(folder, os.path.basename(key) or "download")
    _client().download_file(bucket, key, copy)
    return copy


def upload(local_path: str, path: str) -> None:
    """The local file at ``local_path`` to ``path``, an ``s3://`` or ``s3a://`` URI."""
    bucket, key = _s3(path)
    _client().upload_file(local_path, bucket, key)


def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to the file at ``path`` (its folders made when local)."""
    root = local(path)
    if root is None:
        bucket, key = _s3(path)
        _client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    os.makedirs(os.path.dirname(root), exist_ok=True)
    with open(root, "wb") as handle:
        handle.write(data)
