"""Getting the raw NUFORC report index: fetch, decompress, decode to UTF-8, check the layout.

A source is a local path, a ``file://``, ``http(s)://`` or ``s3://`` URL, plain or gzip
(recognised by its magic bytes, whatever the name). A file that is not valid UTF-8 is decoded
as Windows-1252 (data rule 2).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlparse

from etl.errors import SourceError
from spark_jobs import layouts

_CHUNK = 1 << 20
#: Records per Parquet row group: Spark reads row groups in parallel, so even the 16 MB index
#: becomes several splits.
ROW_GROUP = 32_768

# A valid CSV field may be longer than the csv module's default limit (131,072 characters).
csv.field_size_limit(1 << 30)


def _cp1252_fallback(err: UnicodeDecodeError) -> tuple[str, int]:
    # Windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined; keep them as the C1
    # control characters of the same value (as browsers do) so no byte is lost.
    return chr(err.object[err.start]), err.start + 1


codecs.register_error("ufo_cp1252_fallback", _cp1252_fallback)


@dataclass(frozen=True)
class Ingested:
    """What ``ingest`` found out about a source file."""

    encoding: str
    bytes_in: int
    records: int  # data records after the header, blank lines left out
    blank_lines: int
    layout: str
    columns: tuple[str, ...]  # the layout's columns as the source's header spells them


@contextmanager
def fetched(uri: str, shown: str | None = None) -> Iterator[str]:
    """A local, decompressed copy of ``uri`` (a temporary file, removed afterwards).

    Messages name the source as ``shown`` (the URI without credentials).
    """
    source = shown or uri
    with tempfile.TemporaryDirectory(prefix="ufo-source-") as tmp:
        raw = os.path.join(tmp, "download")
        _download(uri, raw, source)
        with open(raw, "rb") as handle:
            magic = handle.read(2)
        if magic == b"\x1f\x8b":
            plain = os.path.join(tmp, "plain")
            try:
                with gzip.open(raw, "rb") as src, open(plain, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
            except (OSError, EOFError) as err:
                raise SourceError(f"{source} is not a readable gzip file ({err}).") from err
            raw = plain
        yield raw


def _download(uri: str, dest: str, source: str) -> None:
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri, timeout=60) as response, open(dest, "wb") as out:
                shutil.copyfileobj(response, out, _CHUNK)
        except urllib.error.HTTPError as err:
            raise SourceError(
                f"Downloading {source} failed with HTTP {err.code}: check the URL in UFO_SOURCE."
            ) from err
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise SourceError(
                f"Cannot download {source} ({reason}): check the URL and the network."
            ) from err
    elif scheme in ("s3", "s3a"):
        import boto3
        import botocore.exceptions as bex

        key = parsed.path.lstrip("/")
        try:
            boto3.client("s3").download_file(parsed.netloc, key, dest)
        except bex.ClientError as err:
            raise SourceError(
                f"Cannot read {source} from S3 ({err.response.get('Error', {}).get('Code')}): "
                "check the bucket and key in UFO_SOURCE and the AWS credentials."
            ) from err
        except bex.BotoCoreError as err:
            raise SourceError(
                f"Cannot read {source} from S3 ({err}): check AWS_ENDPOINT_URL and credentials."
            ) from err
    elif scheme in ("", "file") or len(scheme) == 1:  # a bare path (or a Windows drive letter)
        path = parsed.path if scheme == "file" else uri
        path = os.path.expanduser(path)
        if not os.path.isfile(path):
            raise SourceError(
                f"The source file {path} does not exist: set UFO_SOURCE to the NUFORC report "
                "index (a path or a file://, http(s):// or s3:// URL)."
            )
        shutil.copyfile(path, dest)
    else:
        raise SourceError(
            f"UFO_SOURCE={source!r} has an unsupported scheme {scheme!r}: "
            "use a path or a file://, http(s):// or s3:// URL."
        )


def detect_encoding(path: str) -> str:
    """``utf-8`` when the whole file is valid UTF-8 (BOM allowed), else ``cp1252``."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


def open_decoded(path: str, encoding: str) -> IO[str]:
    errors = "ufo_cp1252_fallback" if encoding == "cp1252" else "strict"
    return open(path, encoding=encoding, errors=errors, newline="")


def read_layout(first_record: list[str] | None, source: str) -> layouts.Match:
    """The layout of ``source`` from its header; SourceError saying what is wrong otherwise."""
    if first_record is None:
        raise SourceError(f"{source} is empty: give a NUFORC report file with a header row.")
    try:
        return layouts.match(first_record)
    except layouts.LayoutError as err:
        raise SourceError(
            f"{source} is not a NUFORC report file: {err}. The first line must be the header."
        ) from err


def ingest(path: str, utf8_copy: IO[str], parquet_path: str, source: str) -> Ingested:
    """Read the source file at ``path`` once: a UTF-8 copy to ``utf8_copy`` and the raw zone.

    The raw zone is Parquet at ``parquet_path``: one string column per column of the source's
    layout, named as its header spells them, one row per record (quoted commas, newlines and
    spaces kept exactly). Extra columns are left out (the UTF-8 copy keeps them); a short record
    gets empty strings, a blank line is no record.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    encoding = detect_encoding(path)
    with open_decoded(path, encoding) as text:
        tee = _TeeReader(text, utf8_copy)
        reader = csv.reader(tee)
        found = read_layout(next(reader, None), source)
        width = len(found.positions)
        identity = found.positions == tuple(range(width))
        schema = pa.schema([pa.field(name, pa.string(), nullable=False) for name in found.names])
        records = blank = 0
        with pq.ParquetWriter(parquet_path, schema, compression="snappy") as writer:
            batch: list[list[str]] = []
            for record in reader:
                if not record:
                    blank += 1
                    continue
                if not (identity and len(record) == width):
                    record = [record[p] if p < len(record) else "" for p in found.positions]
                batch.append(record)
                if len(batch) == ROW_GROUP:
                    _write_batch(writer, schema, batch)
                    records += len(batch)
                    batch = []
            if batch or records == 0:
                _write_batch(writer, schema, batch)
                records += len(batch)
        tee.drain()
    if records == 0:
        raise SourceError(f"{source} has a header but no reports: give a file with data rows.")
    return Ingested(
        encoding="utf-8" if encoding == "utf-8-sig" else "cp1252",
        bytes_in=os.path.getsize(path),
        records=records,
        blank_lines=blank,
        layout=found.layout.name,
        columns=found.names,
    )


def _write_batch(writer, schema, batch: list[list[str]]) -> None:
    import pyarrow as pa

    columns = list(zip(*batch)) if batch else [() for _ in schema]
    writer.write_table(
        pa.Table.from_arrays([pa.array(c, type=pa.string()) for c in columns], schema=schema),
        row_group_size=ROW_GROUP,
    )


class _TeeReader:
    """Iterates over lines of ``text`` and writes each to ``out`` as it goes."""

    def __init__(self, text: IO[str], out: IO[str]):
        self._text = text
        self._out = out

    def __iter__(self) -> _TeeReader:
        return self

    def __next__(self) -> str:
        line = self._text.readline()
        if not line:
            raise StopIteration
        self._out.write(line)
        return line

    def drain(self) -> None:
        for _ in self:
            pass
