"""The data lake: a local directory or an S3 prefix, behind one small adapter.

Tasks ask the lake for Luigi targets by relative path (``raw/date=2019-03-29/...``) and never
know where the data lives. ``spark_uri`` gives the same place as Spark sees it (``file://`` or
``s3a://``).

Multi-file outputs are committed with a manifest (``Lake.publish``): an attempt writes its files
under ``_attempts/<attempt>/`` where no reader looks, then one small JSON file,
``<dataset>/date=D/_MANIFEST.json``, is written in one step (a rename locally, one PUT on S3) and
names every file of the date's outputs. A reader follows the manifest, so it sees the previous
attempt's files or the new ones, never a mix; an interrupted attempt publishes nothing. Attempts
no manifest names any more are removed afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import luigi
from luigi.contrib.s3 import InvalidDeleteException, S3Client, S3Target

from etl.errors import StorageError

# boto3 1.36+ sends checksum headers that some S3-compatible stores reject.
_BOTO_DEFAULTS = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}


MANIFEST = "_MANIFEST.json"
ATTEMPTS = "_attempts"
ATTEMPT_INFO = "_ATTEMPT.json"
MANIFEST_FORMAT = 1


def partition(dataset: str, date) -> str:
    """The relative path of one run date's partition of a dataset."""
    return f"{dataset}/date={date.isoformat()}"


def manifest_rel(dataset: str, date) -> str:
    """Where the manifest of one run date's outputs of ``dataset`` is."""
    return f"{partition(dataset, date)}/{MANIFEST}"


def _attempt_started(attempt: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(attempt.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.UTC
        )
    except ValueError:
        return None


class Lake:
    """A data-lake root; subclasses know how to reach it."""

    root: str

    @staticmethod
    def from_uri(uri: str) -> Lake:
        if uri.startswith("s3://") or uri.startswith("s3a://"):
            return S3Lake(uri)
        if "://" in uri and not uri.startswith("file://"):
            raise StorageError(
                f"UFO_STORAGE={uri!r} is neither a local directory nor an s3://bucket/prefix URL."
            )
        return LocalLake(uri.removeprefix("file://"))

    def uri(self, rel: str) -> str:
        """Where ``rel`` is, as a user would write it."""
        raise NotImplementedError

    def spark_uri(self, rel: str) -> str:
        """Where ``rel`` is, as Spark reads and writes it."""
        raise NotImplementedError

    def target(self, rel: str) -> luigi.Target:
        """A Luigi target for the file ``rel`` (existence checks; writes go through put_file)."""
        raise NotImplementedError

    def flag(self, rel_dir: str) -> luigi.Target:
        """The ``_SUCCESS`` flag of a directory written by Spark: the directory is complete."""
        return self.target(f"{rel_dir}/_SUCCESS")

    def files(self, rel_dir: str, suffix: str) -> list[str]:
        """Relative paths of the files under ``rel_dir`` ending in ``suffix``, sorted."""
        raise NotImplementedError

    def read_bytes(self, rel: str) -> bytes:
        """The whole content of a (small) file."""
        raise NotImplementedError

    def read_text(self, rel: str) -> str:
        """The whole UTF-8 text of a (small) file, its bytes decoded as they are (a quoted
        field's \\r\\n stays \\r\\n)."""
        return self.read_bytes(rel).decode("utf-8")

    def write_text(self, rel: str, text: str) -> None:
        """Write a small UTF-8 file in one step."""
        self.write_bytes(rel, text.encode("utf-8"))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a small file in one step."""
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "file")
            Path(local).write_bytes(data)
            self.put_file(local, rel)

    def create_exclusive(self, rel: str, text: str) -> bool:
        """Create ``rel`` only if it does not exist; whether this call created it."""
        raise NotImplementedError

    def put_file(self, local_path: str, rel: str) -> None:
        """Publish a finished local file at ``rel`` in one step: readers see old or new, never half."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise StorageError with what to fix when the lake cannot be used."""

    def remove(self, rel: str) -> None:
        """Delete a file or directory, if present."""
        raise NotImplementedError

    def subdirs(self, rel_dir: str) -> list[str]:
        """Names of the directories (prefixes) directly under ``rel_dir``."""
        raise NotImplementedError

    @contextlib.contextmanager
    def writing(self, rel: str) -> Iterator[str]:
        """A local path to write ``rel`` to; it is in the lake when the block ends."""
        with tempfile.TemporaryDirectory(prefix="ufo-") as tmp:
            local = os.path.join(tmp, os.path.basename(rel))
            yield local
            self.put_file(local, rel)

    def exists(self, rel: str) -> bool:
        return self.target(rel).exists()

    # --- attempts and manifests -------------------------------------------------------------

    def new_attempt(self, dataset: str, dates: Iterable) -> str:
        """A fresh attempt directory (relative path) for writing ``dataset`` of ``dates``."""
        now = dt.datetime.now(dt.UTC)
        attempt = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        rel = f"{ATTEMPTS}/{attempt}"
        info = {
            "dataset": dataset,
            "dates": sorted(d.isoformat() for d in dates),
            "started_at": now.isoformat(timespec="seconds"),
        }
        self.write_text(f"{rel}/{ATTEMPT_INFO}", json.dumps(info, indent=2))
        return rel

    def manifest(self, dataset: str, date) -> dict | None:
        """The published manifest of ``dataset`` for ``date``, or None."""
        rel = manifest_rel(dataset, date)
        if not self.exists(rel):
            return None
        return json.loads(self.read_text(rel))

    def publish(
        self, dataset: str, date, attempt_rel: str, files: dict[str, list[str]], **extra
    ) -> str | None:
        """Make ``files`` (lake-relative, under ``attempt_rel``) the outputs of ``date`` at once.

        Returns the attempt the previous manifest named, if another one: it may now be unused.
        """
        previous = self.manifest(dataset, date)
        document = {
            "format": MANIFEST_FORMAT,
            "dataset": dataset,
            "run_date": date.isoformat(),
            "attempt": attempt_rel.rsplit("/", 1)[-1],
            "committed_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "files": {kind: list(paths) for kind, paths in files.items()},
            **extra,
        }
        self.write_text(manifest_rel(dataset, date), json.dumps(document, indent=2))
        if previous and previous.get("attempt") != document["attempt"]:
            return previous.get("attempt")
        return None

    def retire(self, attempts: Iterable[str | None]) -> list[str]:
        """Remove the given attempts that no published manifest names any more; those removed."""
        removed = []
        for attempt in {a for a in attempts if a}:
            if not self._referenced(attempt):
                self.remove(f"{ATTEMPTS}/{attempt}")
                removed.append(attempt)
        return removed

    def sweep(self, older_than: dt.timedelta) -> list[str]:
        """Remove attempts started longer than ``older_than`` ago that no manifest names."""
        cutoff = dt.datetime.now(dt.UTC) - older_than
        stale = []
        for attempt in self.subdirs(ATTEMPTS):
            started = _attempt_started(attempt)
            if started is not None and started < cutoff:
                stale.append(attempt)
        return self.retire(stale)

    def _referenced(self, attempt: str) -> bool:
        info_rel = f"{ATTEMPTS}/{attempt}/{ATTEMPT_INFO}"
        if not self.exists(info_rel):
            return False
        info = json.loads(self.read_text(info_rel))
        for day in info.get("dates", []):
            found = self.manifest(info["dataset"], dt.date.fromisoformat(day))
            if found and found.get("attempt") == attempt:
                return True
        return False


class ManifestTarget(luigi.Target):
    """One run date's published outputs of a dataset: exists once its manifest is written."""

    def __init__(self, lake: Lake, dataset: str, date):
        self.lake = lake
        self.dataset = dataset
        self.date = date
        self.rel = manifest_rel(dataset, date)

    @property
    def path(self) -> str:
        return self.lake.uri(self.rel)

    def exists(self) -> bool:
        return self.lake.exists(self.rel)

    def manifest(self) -> dict:
        found = self.lake.manifest(self.dataset, self.date)
        if found is None:
            raise StorageError(
                f"{self.path} is missing: run the task that publishes {self.dataset} for "
                f"{self.date} first."
            )
        return found

    def files(self, kind: str) -> list[str]:
        """Lake-relative paths of the ``kind`` files of this date's outputs."""
        return list(self.manifest()["files"].get(kind, []))

    def modified_at(self) -> float:
        return modified_at(self.lake.target(self.rel))

    def __repr__(self) -> str:
        return f"ManifestTarget({self.path})"


class LocalLake(Lake):
    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def _path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def uri(self, rel: str) -> str:
        return self._path(rel)

    def spark_uri(self, rel: str) -> str:
        return "file://" + self._path(rel)

    def target(self, rel: str) -> luigi.LocalTarget:
        return luigi.LocalTarget(self._path(rel))

    def files(self, rel_dir: str, suffix: str) -> list[str]:
        base = Path(self._path(rel_dir))
        if not base.is_dir():
            return []
        return sorted(
            f"{rel_dir}/{p.name}" for p in base.iterdir() if p.is_file() and p.name.endswith(suffix)
        )

    def read_bytes(self, rel: str) -> bytes:
        return Path(self._path(rel)).read_bytes()

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

    def put_file(self, local_path: str, rel: str) -> None:
        self._replace(rel, lambda tmp: shutil.copyfile(local_path, tmp))

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._replace(rel, lambda tmp: Path(tmp).write_bytes(data))

    def _replace(self, rel: str, fill: Callable[[str], object]) -> None:
        """Fill a temporary file beside ``rel``, then rename it over ``rel`` in one step."""
        dest = self._path(rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(dest))
        os.close(fd)
        try:
            fill(tmp)
            os.replace(tmp, dest)
        except BaseException:
            os.unlink(tmp)
            raise

    def check(self) -> None:
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as err:
            raise StorageError(
                f"Cannot create the data lake directory {self.root}: {err.strerror}. "
                "Set UFO_STORAGE to a writable directory."
            ) from err

    def remove(self, rel: str) -> None:
        path = self._path(rel)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)

    def subdirs(self, rel_dir: str) -> list[str]:
        base = Path(self._path(rel_dir))
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    @contextlib.contextmanager
    def writing(self, rel: str) -> Iterator[str]:
        # Attempt files are written in place: nothing reads an attempt before it is published.
        path = self._path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        yield path


class S3Lake(Lake):
    def __init__(self, uri: str):
        for name, value in _BOTO_DEFAULTS.items():
            os.environ.setdefault(name, value)
        parsed = urlparse(uri)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.root = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = S3Client()
        return self._client

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def uri(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self._key(rel)}"

    def spark_uri(self, rel: str) -> str:
        return f"s3a://{self.bucket}/{self._key(rel)}"

    def target(self, rel: str) -> luigi.Target:
        return S3LakeTarget(self.uri(rel), lake=self)

    def files(self, rel_dir: str, suffix: str) -> list[str]:
        keys = self._guard(
            lambda: list(self.client.list(self.uri(rel_dir).rstrip("/") + "/")), rel_dir
        )
        return sorted(f"{rel_dir}/{k}" for k in keys if k.endswith(suffix) and "/" not in k)

    def read_bytes(self, rel: str) -> bytes:
        uri = self.uri(rel)
        return self._guard(lambda: self.client.get_as_bytes(uri), rel)

    def create_exclusive(self, rel: str, text: str) -> bool:
        import botocore.exceptions as bex

        s3 = self.client.s3.meta.client
        try:
            self._guard(
                lambda: s3.put_object(
                    Bucket=self.bucket, Key=self._key(rel), Body=text.encode(), IfNoneMatch="*"
                ),
                rel,
            )
        except bex.ClientError as err:
            if err.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",
            ):
                return False
            raise
        return True

    def put_file(self, local_path: str, rel: str) -> None:
        uri = self.uri(rel)
        self._guard(lambda: self.client.put(local_path, uri), rel)

    def check(self) -> None:
        self._guard(lambda: self.client.s3.meta.client.head_bucket(Bucket=self.bucket), "")

    def remove(self, rel: str) -> None:
        uri = self.uri(rel)
        self._guard(lambda: self.client.remove(uri, recursive=True), rel)

    def subdirs(self, rel_dir: str) -> list[str]:
        s3 = self.client.s3.meta.client
        prefix = self._key(rel_dir).rstrip("/") + "/"
        names = []
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        )
        for page in self._guard(lambda: list(pages), rel_dir):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(names)

    def _guard(self, call, rel: str):
        """Run an S3 call; turn the usual failures into a StorageError that says what to fix."""
        import botocore.exceptions as bex

        try:
            return call()
        except InvalidDeleteException:
            raise
        except bex.EndpointConnectionError as err:
            endpoint = os.environ.get("AWS_ENDPOINT_URL", "the AWS default endpoint")
            raise StorageError(
                f"Cannot reach the S3 endpoint ({endpoint}) for {self.uri(rel)}: start the S3 store "
                "or set AWS_ENDPOINT_URL to its address."
            ) from err
        except bex.NoCredentialsError as err:
            raise StorageError(
                "No S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
            ) from err
        except bex.ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchBucket", "404") and not self._bucket_exists():
                raise StorageError(
                    f"The S3 bucket {self.bucket!r} does not exist: create it "
                    f"(e.g. `aws s3 mb s3://{self.bucket}`) or fix UFO_STORAGE."
                ) from err
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StorageError(
                    f"S3 refused access to {self.uri(rel)} ({code}): check AWS_ACCESS_KEY_ID, "
                    "AWS_SECRET_ACCESS_KEY and the bucket's policy."
                ) from err
            raise

    def _bucket_exists(self) -> bool:
        import botocore.exceptions as bex

        try:
            self.client.s3.meta.client.head_bucket(Bucket=self.bucket)
            return True
        except bex.ClientError:
            return False


class S3LakeTarget(S3Target):
    """An S3Target whose failures say what to fix."""

    def __init__(self, path: str, lake: S3Lake):
        super().__init__(path, client=lake.client)
        self._lake = lake

    def exists(self) -> bool:
        rel = self.path.removeprefix(f"{self._lake.root}/")
        return self._lake._guard(super().exists, rel)


def modified_at(target: luigi.Target) -> float:
    """When an existing target was last written (seconds since the epoch)."""
    if isinstance(target, luigi.LocalTarget):
        return os.path.getmtime(target.path)
    if isinstance(target, S3Target):
        return target.fs.get_key(target.path).last_modified.timestamp()
    return target.modified_at()
