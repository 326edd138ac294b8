"""A data lake in a local directory: renames for atomic writes, O_EXCL for exclusive ones."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from etl.adapters.lake.base import Lake, NotAFile, TooLarge
from etl.errors import StorageError


class LocalLake(Lake):
    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def _path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def uri(self, rel: str) -> str:
        return self._path(rel)

    def spark_uri(self, rel: str) -> str:
        return "file://" + self._path(rel)

    def check(self) -> None:
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as err:
            raise StorageError(
                f"Cannot create the data lake directory {self.root}: {err.strerror}. "
                "Set UFO_STORAGE to a writable directory."
            ) from err
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(
                f"The data lake directory {self.root} is not writable: give this user write "
                "access to it, or set UFO_STORAGE to a writable directory."
            )

    def exists(self, rel: str) -> bool:
        return os.path.exists(self._path(rel))

    def modified_at(self, rel: str) -> float:
        return os.path.getmtime(self._path(rel))

    def size(self, rel: str) -> int | None:
        try:
            return os.path.getsize(self._path(rel))
        except FileNotFoundError:
            return None

    def leftovers(self, older_than: float) -> list[str]:
        """The ``.tmp-*`` files of renames that never happened (``_replace``)."""
        cutoff = time.time() - older_than
        found = []
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                path = os.path.join(folder, name)
                if name.startswith(".tmp-") and os.path.getmtime(path) < cutoff:
                    found.append(os.path.relpath(path, self.root))
        return sorted(found)

    def files(self, rel_dir: str, suffix: str) -> list[str]:
        base = Path(self._path(rel_dir))
        if not base.is_dir():
            return []
        return sorted(
            f"{rel_dir}/{p.name}" for p in base.iterdir() if p.is_file() and p.name.endswith(suffix)
        )

    def subdirs(self, rel_dir: str) -> list[str]:
        base = Path(self._path(rel_dir))
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def read_bytes(self, rel: str) -> bytes:
        return Path(self._path(rel)).read_bytes()

    def _open_regular(self, rel: str):
        """The file opened for reading, refused unless it is a regular file: O_NOFOLLOW refuses
        a symlink in the same step that opens it, so the check cannot be raced; O_NONBLOCK keeps
        a FIFO from blocking the open."""
        try:
            fd = os.open(self._path(rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise NotAFile(f"{self.uri(rel)} is a symlink") from err
            raise
        handle = os.fdopen(fd, "rb")
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            handle.close()
            raise NotAFile(f"{self.uri(rel)} is not a regular file")
        return handle

    def read_head(self, rel: str, limit: int) -> tuple[bytes, int]:
        with self._open_regular(rel) as handle:
            return handle.read(limit), os.fstat(handle.fileno()).st_size

    def read_limited(self, rel: str, limit: int) -> bytes:
        with self._open_regular(rel) as handle:
            info = os.fstat(handle.fileno())
            if info.st_size > limit:
                raise TooLarge(f"{self.uri(rel)} is {info.st_size} bytes", info.st_size)
            data = handle.read(limit + 1)
        if len(data) > limit:  # it grew after its size was taken
            raise TooLarge(f"{self.uri(rel)} is over {limit} bytes", len(data))
        return data

    def put_file(self, local_path: str, rel: str) -> None:
        self._replace(rel, lambda tmp: _copy_into_new(local_path, tmp))

    def write_bytes(self, rel: str, data: bytes) -> None:
        def fill(tmp: str) -> None:
            with _new_file(tmp) as handle:
                handle.write(data)

        self._replace(rel, fill)

    def copy(self, src_rel: str, rel: str) -> None:
        """A hard link where the filesystem has them: files are never changed in place (every
        write renames a new file over the old), so the two names can share their bytes."""
        src = self._path(src_rel)

        def link(tmp: str) -> None:
            try:
                os.link(src, tmp)
            except FileNotFoundError:
                raise
            except OSError:  # no hard links here (another device, a filesystem without them)
                _copy_into_new(src, tmp)

        self._replace(rel, link)

    def _replace(self, rel: str, fill: Callable[[str], object]) -> None:
        """Have ``fill`` create a new file beside ``rel``, then rename it over ``rel`` in one
        step. Its folder is made when the first try finds none: a ten-year backfill writes
        some 18,000 files, and asking for the folder first, and a temporary file's name from
        ``tempfile`` (a file it creates, closes and leaves to be opened again), cost twice the
        writes' own time on a virtual machine's file system."""
        dest = self._path(rel)
        folder = os.path.dirname(dest)
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}")
        try:
            try:
                fill(tmp)
            except FileNotFoundError:
                if os.path.isdir(folder):
                    raise  # not the folder: what ``fill`` reads is missing
                os.makedirs(folder, exist_ok=True)
                fill(tmp)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def create_exclusive(self, rel: str, text: str) -> bool:
        path = self._path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return True

    @contextlib.contextmanager
    def writing(self, rel: str) -> Iterator[str]:
        # Attempt files are written in place: nothing reads an attempt before it is published.
        path = self._path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        yield path

    def remove(self, rel: str) -> None:
        path = self._path(rel)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)


def _new_file(path: str):
    """``path`` created for writing, readable by its owner only (as the lake's files always
    were); FileExistsError if it is there."""
    return open(path, "xb", opener=lambda name, flags: os.open(name, flags, 0o600))


def _copy_into_new(source_path: str, path: str) -> None:
    """The bytes of ``source_path`` into ``path``, created as ``_new_file`` creates it."""
    with open(source_path, "rb") as source, _new_file(path) as handle:
        shutil.copyfileobj(source, handle)
