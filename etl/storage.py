"""The data lake: a local directory or an S3 prefix, behind one small adapter.

Tasks ask the lake for Luigi targets by relative path (``raw/date=2019-03-29/...``) and never
know where the data lives. ``spark_uri`` gives the same place as Spark sees it (``file://`` or
``s3a://``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
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


def partition(dataset: str, date) -> str:
    """The relative path of one run date's partition of a dataset."""
    return f"{dataset}/date={date.isoformat()}"


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

    def read_text(self, rel: str) -> str:
        """The whole UTF-8 text of a (small) file."""
        raise NotImplementedError

    def write_text(self, rel: str, text: str) -> None:
        """Write a small UTF-8 file in one step."""
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "file")
            Path(local).write_text(text, encoding="utf-8")
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

    def read_text(self, rel: str) -> str:
        return Path(self._path(rel)).read_text(encoding="utf-8")

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
        dest = self._path(rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(dest))
        os.close(fd)
        try:
            shutil.copyfile(local_path, tmp)
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
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


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

    def read_text(self, rel: str) -> str:
        uri = self.uri(rel)
        return self._guard(lambda: self.client.get_as_string(uri), rel)

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
