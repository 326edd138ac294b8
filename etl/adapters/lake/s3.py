"""A data lake under an S3 prefix (AWS, MinIO or any S3-compatible store), through boto3.

Its failures become StorageErrors that say what to fix: a missing bucket, an unreachable
endpoint, missing or refused credentials.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import botocore.exceptions as bex
from luigi.contrib.s3 import InvalidDeleteException, S3Client

from etl.adapters.lake.base import Lake, TooLarge
from etl.errors import StorageError

# boto3 1.36+ sends checksum headers that some S3-compatible stores reject.
_BOTO_DEFAULTS = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}
#: Error codes of a conditional PUT (If-None-Match: *) that found the key already there.
_ALREADY_THERE = ("PreconditionFailed", "412", "ConditionalRequestConflict")


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
    def client(self) -> S3Client:
        if self._client is None:
            self._client = S3Client()
        return self._client

    @property
    def _s3(self):
        """The boto3 client, for the calls Luigi's S3Client does not offer."""
        return self.client.s3.meta.client

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def uri(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self._key(rel)}"

    def spark_uri(self, rel: str) -> str:
        return f"s3a://{self.bucket}/{self._key(rel)}"

    def check(self) -> None:
        self._guard(lambda: self._s3.head_bucket(Bucket=self.bucket), "")

    def exists(self, rel: str) -> bool:
        uri = self.uri(rel)
        return self._guard(lambda: self.client.exists(uri), rel)

    def modified_at(self, rel: str) -> float:
        head = self._guard(
            lambda: self._s3.head_object(Bucket=self.bucket, Key=self._key(rel)), rel
        )
        return head["LastModified"].timestamp()

    def size(self, rel: str) -> int | None:
        if not self.exists(rel):
            return None
        head = self._guard(
            lambda: self._s3.head_object(Bucket=self.bucket, Key=self._key(rel)), rel
        )
        return head["ContentLength"]

    def files(self, rel_dir: str, suffix: str) -> list[str]:
        keys = self._guard(
            lambda: list(self.client.list(self.uri(rel_dir).rstrip("/") + "/")), rel_dir
        )
        return sorted(f"{rel_dir}/{k}" for k in keys if k.endswith(suffix) and "/" not in k)

    def subdirs(self, rel_dir: str) -> list[str]:
        prefix = self._key(rel_dir).rstrip("/") + "/"
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        )
        names = []
        for page in self._guard(lambda: list(pages), rel_dir):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(names)

    def read_bytes(self, rel: str) -> bytes:
        uri = self.uri(rel)
        return self._guard(lambda: self.client.get_as_bytes(uri), rel)

    def read_limited(self, rel: str, limit: int) -> bytes:
        # No symlinks on S3; the size comes with the response, and the body is never read
        # beyond the limit.
        response = self._guard(
            lambda: self._s3.get_object(Bucket=self.bucket, Key=self._key(rel)), rel
        )
        body = response["Body"]
        try:
            if response["ContentLength"] > limit:
                raise TooLarge(
                    f"{self.uri(rel)} is {response['ContentLength']} bytes",
                    response["ContentLength"],
                )
            data = body.read(limit + 1)
        finally:
            body.close()
        if len(data) > limit:
            raise TooLarge(f"{self.uri(rel)} is over {limit} bytes", len(data))
        return data

    def read_head(self, rel: str, limit: int) -> tuple[bytes, int]:
        # Its size first (a HEAD), then a GET of its first bytes only.
        size = self.size(rel)
        if size is None:
            raise FileNotFoundError(self.uri(rel))
        if size == 0 or limit <= 0:
            return b"", size
        response = self._guard(lambda: self._s3.get_object(
            Bucket=self.bucket, Key=self._key(rel), Range=f"bytes=0-{limit - 1}"), rel)  # fmt: skip
        body = response["Body"]
        try:
            return body.read(limit), size
        finally:
            body.close()

    def put_file(self, local_path: str, rel: str) -> None:
        uri = self.uri(rel)
        self._guard(lambda: self.client.put(local_path, uri), rel)

    def copy(self, src_rel: str, rel: str) -> None:
        """A server-side copy: the bytes do not pass through this process."""
        source = {"Bucket": self.bucket, "Key": self._key(src_rel)}
        self._guard(
            lambda: self._s3.copy_object(Bucket=self.bucket, Key=self._key(rel), CopySource=source),
            rel,
        )

    def create_exclusive(self, rel: str, text: str) -> bool:
        try:
            self._guard(
                lambda: self._s3.put_object(
                    Bucket=self.bucket, Key=self._key(rel), Body=text.encode(), IfNoneMatch="*"
                ),
                rel,
            )
        except bex.ClientError as err:
            if err.response.get("Error", {}).get("Code") in _ALREADY_THERE:
                return False
            raise
        return True

    def remove(self, rel: str) -> None:
        uri = self.uri(rel)
        self._guard(lambda: self.client.remove(uri, recursive=True), rel)

    def _guard(self, call, rel: str):
        """Run an S3 call; turn the usual failures into a StorageError that says what to fix."""
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
        try:
            self._s3.head_bucket(Bucket=self.bucket)
            return True
        except bex.ClientError:
            return False
