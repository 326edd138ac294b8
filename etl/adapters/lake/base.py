"""The data lake's file interface: small files by relative path, whatever holds them.

Tasks and the worker ask the lake for files by relative path (``raw/date=2019-03-29/...``)
and never know where the data lives. ``spark_uri`` gives the same place as Spark sees it
(``file://`` or ``s3a://``). ``LocalLake`` and ``S3Lake`` are the two kinds; nothing outside
this package tells them apart.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from etl.errors import StorageError


class NotAFile(StorageError):
    """The path is a symlink, a directory or another special file, not a regular file."""


class TooLarge(StorageError):
    """The file is larger than the reader allows; ``size`` is its size in bytes."""

    def __init__(self, message: str, size: int):
        super().__init__(message)
        self.size = size


class Lake:
    """A data-lake root; subclasses know how to reach it."""

    root: str

    def uri(self, rel: str) -> str:
        """Where ``rel`` is, as a user would write it."""
        raise NotImplementedError

    def spark_uri(self, rel: str) -> str:
        """Where ``rel`` is, as Spark reads and writes it."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise StorageError with what to fix when the lake cannot be used."""

    # --- reading ---------------------------------------------------------------------------

    def exists(self, rel: str) -> bool:
        """Whether the file ``rel`` exists."""
        raise NotImplementedError

    def modified_at(self, rel: str) -> float:
        """When the existing file ``rel`` was last written (seconds since the epoch)."""
        raise NotImplementedError

    def size(self, rel: str) -> int | None:
        """The size in bytes of the file ``rel``; None if it does not exist."""
        raise NotImplementedError

    def leftovers(self, older_than: float) -> list[str]:
        """Files a killed write left behind (never named by anything), last written more than
        ``older_than`` seconds ago; none where writes leave nothing behind (S3)."""
        return []

    def files(self, rel_dir: str, suffix: str) -> list[str]:
        """Relative paths of the files directly under ``rel_dir`` ending in ``suffix``, sorted."""
        raise NotImplementedError

    def subdirs(self, rel_dir: str) -> list[str]:
        """Names of the directories (prefixes) directly under ``rel_dir``."""
        raise NotImplementedError

    def read_bytes(self, rel: str) -> bytes:
        """The whole content of a (small) file."""
        raise NotImplementedError

    def read_limited(self, rel: str, limit: int) -> bytes:
        """The content of a regular file of at most ``limit`` bytes, read no further than that.

        Raises NotAFile for a symlink or special file and TooLarge for a longer file: for files
        that others drop into the lake (run requests), whose size nobody checked.
        """
        raise NotImplementedError

    def read_head(self, rel: str, limit: int) -> tuple[bytes, int]:
        """The first ``limit`` bytes of a regular file and its whole size (a log shown from its
        start, however long it grew). NotAFile for a symlink or special file."""
        raise NotImplementedError

    def read_text(self, rel: str) -> str:
        """The whole UTF-8 text of a (small) file, its bytes decoded as they are (a quoted
        field's \\r\\n stays \\r\\n)."""
        return self.read_bytes(rel).decode("utf-8")

    def read_optional(self, rel: str) -> str | None:
        """The text of a small file, or None if it does not exist (or just went away)."""
        if not self.exists(rel):
            return None
        try:
            return self.read_text(rel)
        except Exception:
            if not self.exists(rel):
                return None  # removed between the two calls
            raise

    # --- writing ---------------------------------------------------------------------------

    def put_file(self, local_path: str, rel: str) -> None:
        """Publish a finished local file at ``rel`` in one step: readers see old or new, never half."""
        raise NotImplementedError

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a small file in one step."""
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "file")
            Path(local).write_bytes(data)
            self.put_file(local, rel)

    def write_text(self, rel: str, text: str) -> None:
        """Write a small UTF-8 file in one step."""
        self.write_bytes(rel, text.encode("utf-8"))

    def copy(self, src_rel: str, rel: str) -> None:
        """Publish a copy of the lake's file ``src_rel`` at ``rel`` in one step, without moving
        its bytes through this process where the store can (a hard link, a server-side copy)."""
        self.write_bytes(rel, self.read_bytes(src_rel))

    def create_exclusive(self, rel: str, text: str) -> bool:
        """Create ``rel`` only if it does not exist; whether this call created it."""
        raise NotImplementedError

    @contextlib.contextmanager
    def writing(self, rel: str) -> Iterator[str]:
        """A local path to write ``rel`` to; it is in the lake when the block ends."""
        with tempfile.TemporaryDirectory(prefix="ufo-") as tmp:
            local = os.path.join(tmp, os.path.basename(rel))
            yield local
            self.put_file(local, rel)

    def remove(self, rel: str) -> None:
        """Delete a file or directory, if present."""
        raise NotImplementedError
