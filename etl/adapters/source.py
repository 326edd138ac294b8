"""Getting the raw NUFORC report index: fetch, decompress, decode to UTF-8, check the layout.

A source is a local path, a ``file://``, ``http(s)://`` or ``s3://`` URL, plain or gzip
(recognised by its magic bytes, whatever the name). A file with a UTF-16 or UTF-32 byte-order
mark is decoded in that encoding; any other file that is not valid UTF-8 is decoded as
Windows-1252 (data rule 2).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import http.client
import os
import re
import shutil
import struct
import tempfile
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlparse

from etl.adapters import web
from etl.errors import SourceError
from etl.redact import redact_source
from spark_jobs import layouts, records

_CHUNK = 1 << 20


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
    ragged: int = 0  # records with more or fewer fields than the header


@contextmanager
def fetched(uri: str, shown: str | None = None) -> Iterator[str]:
    """A local, decompressed file of ``uri``: a local CSV itself (``ingest`` copies it into the
    lake; a copy here too wrote 1 GB more for 10M reports), refused if it changed meanwhile; else
    a temporary file, fetched or decompressed. Messages name it ``shown`` (no credentials)."""
    source = shown or redact_source(uri)
    local = _local_path(uri, source)
    if local is not None and not _gzip(local):
        before = _identity(local)
        yield local
        if _identity(local) != before:  # its size, modification time or inode
            raise SourceError(f"{source} changed while it was read: run again once it is "
                              "complete (write it elsewhere, then move it into place).")  # fmt: skip
        return
    with tempfile.TemporaryDirectory(prefix="ufo-source-") as tmp:
        raw = local or os.path.join(tmp, "download")
        if local is None:
            _download(uri, raw, source)
        if _gzip(raw):
            plain = os.path.join(tmp, "plain")
            try:
                with gzip.open(raw, "rb") as src, open(plain, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
            except (OSError, EOFError) as err:
                raise SourceError(
                    f"{source} starts like a gzip file but cannot be decompressed "
                    f"({str(err)[:100]}): it is damaged or cut short; fetch it again, or give "
                    "the CSV uncompressed."
                ) from err
            raw = plain
        yield raw


def _gzip(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"  # gzip's magic bytes, whatever the name


def _identity(path: str) -> tuple[int, int, int]:
    return (found := os.stat(path)).st_ino, found.st_size, found.st_mtime_ns


def _local_path(uri: str, source: str) -> str | None:
    """The file ``uri`` names on this machine, checked to be a readable regular file; None for
    a URL to download."""
    try:
        parsed = urlparse(uri)
    except ValueError as err:  # an unbalanced [ or ] of an IPv6 address
        raise SourceError(
            f"UFO_SOURCE={source!r} is no valid URL ({err}): give a path or a file://, "
            "http(s):// or s3:// URL."
        ) from err
    scheme = parsed.scheme.lower()
    if scheme not in ("", "file") and len(scheme) != 1:  # a bare path or a Windows drive letter
        return None
    path = os.path.expanduser(parsed.path if scheme == "file" else uri)
    if not os.path.exists(path):
        raise SourceError(
            f"The source file {path} does not exist: set UFO_SOURCE to the NUFORC report "
            "index (a path or a file://, http(s):// or s3:// URL)."
        )
    if os.path.isdir(path):
        raise SourceError(
            f"The source {path} is a directory: set UFO_SOURCE to the report file in it."
        )
    if not os.path.isfile(path):  # a device such as /dev/zero, a pipe, a socket
        raise SourceError(
            f"The source {path} is not a regular file (a device, pipe or socket): set "
            "UFO_SOURCE to a report file."
        )
    try:
        open(path, "rb").close()
    except PermissionError as err:
        raise SourceError(
            f"The source file {path} cannot be read ({err.strerror}): give this user read "
            "access to it."
        ) from err
    return path


def _download(uri: str, dest: str, source: str) -> None:
    """Fetch the URL ``uri`` (which ``_local_path`` has parsed: not a local file) to ``dest``."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        try:
            with (
                urllib.request.urlopen(web.request(uri), timeout=60) as response,
                open(dest, "wb") as out,
            ):
                shutil.copyfileobj(response, out, _CHUNK)
        except (OSError, http.client.HTTPException, ValueError) as err:  # URLError is an OSError
            raise SourceError(
                f"Cannot download {source}: {web.failure(err, uri, 'UFO_SOURCE')}."
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
    else:
        raise SourceError(
            f"UFO_SOURCE={source!r} has an unsupported scheme {scheme!r}: "
            "use a path or a file://, http(s):// or s3:// URL."
        )


#: The first bytes of files often given instead of a CSV: (signature, what it is, an archive).
_NOT_CSV = (
    (rb"PK\x03\x04", "a ZIP archive (or an Excel workbook)", True),
    (rb"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", True),
    (rb"\xfd7zXZ\x00", "an xz archive", True),
    (rb"BZh[1-9]1AY&SY", "a bzip2 archive", True),
    (rb"\x28\xb5\x2f\xfd", "a zstd archive", True),
    (rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Office document (an old Excel file?)", False),
    (rb"PAR1", "a Parquet file", False),
    (rb"%PDF-", "a PDF document", False),
    (rb"\x89PNG\r\n\x1a\n", "a PNG image", False),
    (rb"\xff\xd8\xff", "a JPEG image", False),
)


def not_csv(source: str, what: str, archive: bool = False) -> SourceError:
    """The error of a source that is ``what`` (an archive, an image, a web page), not a CSV."""
    todo = (
        "extract the CSV from it and set UFO_SOURCE to that"
        if archive
        else "set UFO_SOURCE to the report index, a CSV file (plain or gzip)"
    )
    return SourceError(f"{source} is {what}, not CSV: {todo}.")


#: Byte-order marks, longest first (UTF-32-LE's begins with UTF-16-LE's): the codec of each.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(path: str, source: str = "the source") -> str:
    """The codec to read the file at ``path`` with.

    A UTF-16 or UTF-32 byte-order mark names its encoding (and the file must then be valid in
    it); otherwise ``utf-8-sig`` when the whole file is valid UTF-8 (a BOM allowed), else
    ``cp1252``. NUL bytes without a BOM are UTF-16 or UTF-32 without one, or binary data:
    refused, as is a file that starts as an archive, image or document does (``_NOT_CSV``).
    """
    with open(path, "rb") as handle:
        head = handle.read(4096)
    for signature, what, archive in _NOT_CSV:
        if re.match(signature, head):
            raise not_csv(source, what, archive)
    encoding = next((codec for bom, codec in _BOMS if head.startswith(bom)), None)
    if encoding is None and head.count(0) * 4 > len(head):
        # UTF-16 or UTF-32 text of Latin letters has a NUL in every other byte, binary data not.
        if max(head[0::2].count(0), head[1::2].count(0)) < 0.9 * (len(head) // 2):
            raise not_csv(source, "binary data (it holds NUL bytes)")
        raise SourceError(
            f"{source} holds NUL bytes: it looks like UTF-16 or UTF-32 without a byte-order "
            "mark. Save it as UTF-8 (or as UTF-16 with a BOM) and run again."
        )
    if encoding in (None, "utf-8-sig"):
        return "utf-8-sig" if valid_utf8(path) else "cp1252"
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                decoder.decode(chunk)
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as err:
        name = encoding.upper()
        raise SourceError(
            f"{source} starts with a {name} byte-order mark but is not valid {name} (near byte "
            f"{offset + err.start}: {err.reason}). Save it again as UTF-8 or {name}."
        ) from None
    return encoding


#: Bytes checked for UTF-8 at a time.
_UTF8_CHUNK = 8 << 20


def valid_utf8(path: str) -> bool:
    """Whether the file at ``path`` is valid UTF-8, as Python's codec judges it (surrogates and
    overlong forms refused), checked by Arrow's vectorised validator: about ten times Python's
    decoder, which builds every string only to drop it."""
    import pyarrow as pa

    rest = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(_UTF8_CHUNK):
            whole, rest = _whole_characters(rest + chunk if rest else chunk)
            # One string of the chunk's bytes, without a copy, checked in full.
            offsets = pa.py_buffer(struct.pack("<ii", 0, len(whole)))
            text = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(whole)])
            try:
                text.validate(full=True)
            except pa.ArrowInvalid:
                return False
    return not rest  # a character cut short by the end of the file


def _whole_characters(data: bytes) -> tuple[bytes, bytes]:
    """``data`` up to a character that may go on in the next bytes, and that character's start."""
    start = len(data) - 1
    while start >= 0 and len(data) - start < 4 and 0x80 <= data[start] < 0xC0:
        start -= 1  # back over continuation bytes to the character's first byte
    if start < 0 or data[start] < 0xC0:
        return data, b""
    length = 2 if data[start] < 0xE0 else 3 if data[start] < 0xF0 else 4
    return (data, b"") if len(data) - start >= length else (data[:start], data[start:])


#: The encoding recorded in the lake for each codec.
ENCODING_NAMES = {"utf-8-sig": "utf-8", "cp1252": "cp1252", "utf-16": "utf-16", "utf-32": "utf-32"}


def open_decoded(path: str, encoding: str) -> IO[str]:
    errors = "ufo_cp1252_fallback" if encoding == "cp1252" else "strict"
    return open(path, encoding=encoding, errors=errors, newline="")


def read_layout(
    first_record: list[str] | None, source: str, declared: Iterable[layouts.Layout] = ()
) -> layouts.Match:
    """The layout of ``source`` from its header; SourceError saying what is wrong otherwise."""
    if first_record is None:
        raise SourceError(f"{source} is empty: give a NUFORC report file with a header row.")
    start = ",".join(field[:4096] for field in first_record[:100])[:4096]
    if start.lstrip().lower().startswith(("<!doctype html", "<html", "<?xml")):
        raise not_csv(source, "a web page (HTML or XML)")
    if _CONTROL.search(start):
        raise not_csv(source, "binary data (its first line holds control bytes)")
    try:
        return layouts.match(first_record, declared)
    except layouts.LayoutError as err:
        for separator in (";", "\t", "|"):  # a header of one column may be of another separator
            if len(first_record) == 1 and separator in first_record[0]:
                try:
                    layouts.match(first_record[0].split(separator), declared)
                except layouts.LayoutError:
                    continue
                raise SourceError(
                    f"{source} separates its columns by {separator!r}, not commas: save it as "
                    "CSV with commas."
                ) from err
        raise SourceError(f"{source}: {err}.") from err


#: Characters no CSV text holds (C0 controls but tab, CR and LF; DEL).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def ingest(
    path: str,
    copy_path: str,
    parquet_path: str,
    source: str,
    declared: Iterable[layouts.Layout] = (),
) -> Ingested:
    """Read the source file at ``path``: a UTF-8 copy at ``copy_path``, and the raw zone.

    The raw zone is Parquet at ``parquet_path``: one string column per column of the source's
    layout, named as its header spells them, one row per record (quoted commas, newlines and
    spaces kept exactly), and ``_record``. Extra columns are left out (the UTF-8 copy keeps
    them). A record with more or fewer fields than the header is kept whole in ``_record`` (as
    CSV text; the Spark job rejects it with reason ``columns``) and its fields as far as they go
    in the layout's columns; ``_record`` is empty for every other record. A blank line is no
    record. ``declared``: the user's layouts, besides the built-in ones.
    """
    encoding = detect_encoding(path, source)
    utf8_copy(path, encoding, copy_path)
    header, found = header_layout(copy_path, source, declared)
    written = records.write_parquet(copy_path, header, found.names, found.positions, parquet_path)
    return ingested(path, source, encoding, found, written)


def header_layout(
    text_path: str, source: str, declared: Iterable[layouts.Layout] = ()
) -> tuple[list[str] | None, layouts.Match]:
    """The header of the UTF-8 CSV file at ``text_path``, and the layout it names."""
    with open(text_path, encoding="utf-8", newline="") as text:
        header = next(csv.reader(text), None)
    return header, read_layout(header, source, declared)


def ingested(
    path: str, source: str, encoding: str, found: layouts.Match, written: records.Written
) -> Ingested:
    """What reading the source at ``path`` found; SourceError for a source without reports."""
    if written.records == 0:
        raise SourceError(f"{source} has a header but no reports: give a file with data rows.")
    return Ingested(
        encoding=ENCODING_NAMES[encoding],
        bytes_in=os.path.getsize(path),
        records=written.records,
        blank_lines=written.blank_lines,
        layout=found.layout.name,
        columns=found.names,
        ragged=written.ragged,
    )


def utf8_copy(path: str, encoding: str, copy_path: str) -> None:
    """Write the file at ``path`` (in ``encoding``) to ``copy_path`` as UTF-8 without a BOM,
    line ends as they are."""
    if encoding == "utf-8-sig":  # valid UTF-8 already: copied byte for byte, in the kernel
        with open(path, "rb") as handle:
            start = len(codecs.BOM_UTF8) if handle.read(3) == codecs.BOM_UTF8 else 0
        copy_range(path, start, os.path.getsize(path), copy_path)
        return
    with open(copy_path, "wb") as out:
        with open_decoded(path, encoding) as text:
            while decoded := text.read(_CHUNK):
                out.write(decoded.encode("utf-8"))


def copy_range(path: str, start: int, end: int, dest: str) -> None:
    """Bytes ``start`` to ``end`` of the file at ``path`` into a new file at ``dest`` (in the
    kernel, without passing through this process)."""
    with open(path, "rb") as handle, open(dest, "wb") as out:
        offset = start
        while offset < end:
            sent = os.sendfile(out.fileno(), handle.fileno(), offset, end - offset)
            if sent == 0:
                raise SourceError(f"{path} ended at byte {offset}, before {end}: it is changing")
            offset += sent
