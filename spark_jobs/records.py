"""The raw zone's records: a UTF-8 CSV file parsed into Parquet, every field a string as it came.

Two readers with one result:

* ``write_parquet`` parses with pyarrow's C++ CSV reader, block by block in bounded memory, on
  one thread while a second one encodes and writes the Parquet (pyarrow releases the GIL in
  both). About ten times the speed of Python's ``csv`` module, and memory stays flat however
  large the file: a few blocks of ``BLOCK_SIZE`` are in flight at a time.
* ``write_parquet_python``, the reference, with Python's ``csv`` module. ``write_parquet`` falls
  back to it when pyarrow cannot read the file (a record longer than a block: an unclosed quote
  that runs to the end of the file, say), so a file is never refused that the reference reads.

Both follow RFC 4180 as Python's ``csv`` module reads it: quoted commas, quotes and line breaks
are kept, a blank line is no record, and a record with more or fewer fields than the header is
kept whole in ``_record`` (as CSV text) with its fields as far as they go.
"""

from __future__ import annotations

import csv
import io
import logging
import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

#: The column that keeps a record of the wrong width whole, as CSV text (empty for the others).
RECORD = "_record"

logger = logging.getLogger("ufo")

#: Records per Parquet row group: Spark reads row groups in parallel, so even the 16 MB index
#: becomes several splits.
ROW_GROUP = 32_768
#: Bytes of CSV parsed at a time; a record must fit in one. Larger blocks are no faster, and
#: pyarrow then holds more of them at once (measured: 40 MB at most with 1 MB blocks, from 1M to
#: 10M rows; 160 MB growing to 570 MB with 16 MB blocks).
BLOCK_SIZE = 1 << 20
#: Parsed blocks waiting to be written (bounded: the memory stays flat).
QUEUED = 2

# A valid CSV field may be longer than the csv module's default limit (131,072 characters).
csv.field_size_limit(1 << 30)


@dataclass(frozen=True)
class Written:
    """How many records went into the Parquet file, and what was left out or kept whole."""

    records: int
    blank_lines: int
    ragged: int


def schema_of(names: Sequence[str]):
    import pyarrow as pa

    return pa.schema([pa.field(name, pa.string(), nullable=False) for name in (*names, RECORD)])


def csv_text(record: list[str]) -> str:
    """``record`` as one CSV record (RFC 4180 quoting), without its line end."""
    out = io.StringIO()
    # The writer quotes a field that holds a character of the line terminator: CRLF quotes
    # fields with embedded newlines, as the source had them.
    csv.writer(out, lineterminator="\r\n").writerow(record)
    return out.getvalue()[:-2]


class _Rows:
    """Rows on their way into a Parquet file, written in row groups of ``ROW_GROUP``."""

    def __init__(self, writer, schema):
        self._writer = writer
        self._schema = schema
        self._pending: list = []
        self._count = 0
        self.written = 0

    def add(self, table) -> None:
        self._pending.append(table)
        self._count += table.num_rows
        if self._count >= ROW_GROUP:
            self.flush(whole_groups=True)

    def flush(self, whole_groups: bool = False) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        take = table.num_rows - table.num_rows % ROW_GROUP if whole_groups else table.num_rows
        if take:
            self._writer.write_table(table.slice(0, take), row_group_size=ROW_GROUP)
            self.written += take
        rest = table.slice(take)
        self._pending = [rest] if rest.num_rows else []
        self._count = rest.num_rows

    def ragged(self, records: list[list[str]], positions: Sequence[int]) -> None:
        """Records of the wrong width: their fields as far as they go, and their CSV text."""
        import pyarrow as pa

        columns = [[r[p] if p < len(r) else "" for r in records] for p in positions]
        whole = [csv_text(r) for r in records]
        arrays = [pa.array(c, pa.string()) for c in (*columns, whole)]
        self.add(pa.Table.from_arrays(arrays, schema=self._schema))


class _Unparsable(Exception):
    """pyarrow's CSV reader cannot parse the file (the reference reader may)."""


def _empty_strings(n: int):
    """``n`` empty strings as one Arrow array, without a Python list."""
    import pyarrow as pa

    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(bytes(4 * (n + 1))), pa.py_buffer(b"")]
    )


def write_parquet(
    path: str,
    header: Sequence[str],
    names: Sequence[str],
    positions: Sequence[int],
    parquet_path: str,
) -> Written:
    """Parse the UTF-8 CSV file at ``path`` (its first record is ``header``) into ``parquet_path``.

    ``positions``: the columns to keep, by position, named ``names``.
    """
    return read_into(path, len(header), names, positions, _parquet_file(parquet_path))


def _parquet_file(parquet_path: str):
    import pyarrow.parquet as pq

    return lambda schema: pq.ParquetWriter(parquet_path, schema, compression="snappy")


def write_piece(
    path: str, width: int, names: Sequence[str], positions: Sequence[int], parquet_path: str,
    header: bool,
) -> Written:  # fmt: skip
    """Parse a piece of a UTF-8 source (whole records; ``header``: it starts with the source's
    header of ``width`` fields) into ``parquet_path``, as ``write_parquet`` reads a whole file:
    a source cut into pieces at record boundaries gives the same records, piece by piece."""
    return read_into(path, width, names, positions, _parquet_file(parquet_path), header)


def read_into(path: str, width: int, names: Sequence[str], positions: Sequence[int],
              open_sink, header: bool = True) -> Written:  # fmt: skip
    """Parse the UTF-8 CSV file at ``path`` (records of ``width`` fields, a header first unless
    not ``header``) into a sink.

    ``open_sink(schema)``: a new sink (a context manager with pyarrow's ``write_table``), opened
    again from scratch if pyarrow gives up halfway and the reference reader starts over.
    """
    try:
        return _write_parquet_arrow(path, width, names, positions, open_sink, header)
    except _Unparsable as err:
        logger.warning(
            "pyarrow cannot parse this CSV file (%s); reading it with Python's csv module "
            "instead, which is slower", str(err).splitlines()[0],
        )  # fmt: skip
        with open(path, encoding="utf-8-sig", newline="") as text:
            return _read_python(text, names, positions, width, open_sink, not header)


def _options(width: int, positions: Sequence[int], on_ragged, skip_blank: bool) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    generated = [f"f{i}" for i in range(width)]
    return dict(
        read_options=pacsv.ReadOptions(
            column_names=generated, block_size=BLOCK_SIZE, use_threads=False
        ),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=True, ignore_empty_lines=skip_blank, invalid_row_handler=on_ragged
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(generated, pa.string()),
            include_columns=[generated[p] for p in positions],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            check_utf8=False,  # the file is UTF-8: ingest wrote or checked it
        ),
    )


def _batches(path: str, options: dict, parsed: queue.Queue, stop: threading.Event) -> None:
    """Parse on this thread, handing each block's records to ``parsed``; then None (or the
    error). Gives up as soon as the writing thread has (``stop``)."""

    def hand(item) -> bool:
        while not stop.is_set():
            try:
                parsed.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    try:
        with _open_csv(path, options) as reader:
            for batch in reader:
                if not hand(batch):
                    return
        hand(None)
    except BaseException as err:  # noqa: BLE001 (handed to the writing thread)
        hand(err)


def _open_csv(path: str, options: dict):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        return pacsv.open_csv(path, **options)
    except pa.ArrowInvalid as err:  # the first block is read here
        raise _Unparsable(str(err)) from err


def _all_empty(batch):
    """The rows of ``batch`` whose every field is empty (a blank line when pyarrow keeps them)."""
    import pyarrow.compute as pc

    mask = None
    for column in batch.columns:
        empty = pc.equal(pc.binary_length(column), 0)
        mask = empty if mask is None else pc.and_(mask, empty)
    return mask


def _write_parquet_arrow(path, width, names, positions, open_sink, header=True) -> Written:
    """pyarrow parses on one thread while this one writes the Parquet.

    pyarrow reads a blank line as a record of empty fields, when it keeps it, or not at all: the
    records of empty fields are set aside and counted, and only if there are any is the file
    parsed a second time, without blank lines, to tell how many were real records.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = schema_of(names)
    ragged_texts: list[str] = []

    def on_ragged(row) -> str:
        ragged_texts.append(row.text)
        return "skip"

    parsed: queue.Queue = queue.Queue(maxsize=QUEUED)
    stop = threading.Event()
    options = _options(width, positions, on_ragged, skip_blank=False)
    parser = threading.Thread(target=_batches, args=(path, options, parsed, stop),
                              name="ufo-csv-parse", daemon=True)  # fmt: skip
    parser.start()
    records = ragged = empty = 0
    first = header
    try:
        with open_sink(schema) as writer:
            rows = _Rows(writer, schema)
            while (batch := parsed.get()) is not None:
                if isinstance(batch, pa.ArrowInvalid):
                    raise _Unparsable(str(batch)) from batch
                if isinstance(batch, BaseException):
                    raise batch
                if first:  # the header, read by the caller
                    batch, first = batch.slice(1), False
                blank = _all_empty(batch)
                if blank is not None and (n := pc.sum(blank).as_py() or 0):
                    empty += n
                    batch = batch.filter(pc.invert(blank))
                columns = [*batch.columns, _empty_strings(batch.num_rows)]
                rows.add(pa.Table.from_arrays(columns, schema=schema))
                records += batch.num_rows
                if len(ragged_texts) >= ROW_GROUP:
                    ragged += _flush_ragged(rows, ragged_texts, positions)
            ragged += _flush_ragged(rows, ragged_texts, positions)
            real = _count_empty_records(path, width, positions, header) if empty else 0
            if real:
                fields = [_empty_strings(real)] * len(schema)
                rows.add(pa.Table.from_arrays(fields, schema=schema))
            rows.flush()
            if rows.written == 0:
                writer.write_table(schema.empty_table())
    finally:
        stop.set()
        parser.join(timeout=10)
    return Written(records=records + real + ragged, blank_lines=empty - real, ragged=ragged)


def _flush_ragged(rows: _Rows, texts: list[str], positions: Sequence[int]) -> int:
    taken = texts[:]
    del texts[: len(taken)]
    records = [_ragged_record(text) for text in taken]
    if records:
        rows.ragged(records, positions)
    return len(records)


def _ragged_record(text: str) -> list[str]:
    """The fields of a record of the wrong width, from its text as pyarrow found it."""
    if text.count('"') % 2:
        # A quote left open runs to the end of the file, and Python's csv module keeps the line
        # end that pyarrow leaves out: let the reference reader read such a file.
        raise _Unparsable("a quoted field is never closed")
    return next(csv.reader(io.StringIO(text, newline="")))


def _count_empty_records(path: str, width: int, positions: Sequence[int], header: bool) -> int:
    """Records of the header's width whose kept fields are all empty (blank lines left out)."""
    import pyarrow.compute as pc

    found = 0
    with _open_csv(path, _options(width, positions, lambda row: "skip", skip_blank=True)) as r:
        for i, batch in enumerate(r):
            mask = _all_empty(batch.slice(1) if i == 0 and header else batch)
            found += (pc.sum(mask).as_py() or 0) if mask is not None else 0
    return found


def write_parquet_python(
    text: IO[str] | Iterable[str],
    names: Sequence[str],
    positions: Sequence[int],
    header_width: int,
    parquet_path: str,
    header_read: bool = False,
) -> Written:
    """The reference reader: ``text`` (decoded, its header first unless ``header_read``) into
    ``parquet_path``, record by record with Python's ``csv`` module."""
    return _read_python(text, names, positions, header_width, _parquet_file(parquet_path),
                        header_read)  # fmt: skip


def _read_python(text, names, positions, header_width, open_sink, header_read=False) -> Written:
    import pyarrow as pa

    reader = csv.reader(text)
    if not header_read:
        next(reader, None)
    width = len(positions)
    identity = tuple(positions) == tuple(range(width))
    schema = schema_of(names)
    records = blank = ragged = 0
    with open_sink(schema) as writer:
        rows = _Rows(writer, schema)
        batch: list[list[str]] = []
        odd: list[list[str]] = []

        def flush() -> None:
            if batch:
                arrays = [pa.array(c, pa.string()) for c in zip(*batch)]
                rows.add(pa.Table.from_arrays([*arrays, _empty_strings(len(batch))], schema=schema))
                batch.clear()
            if odd:
                rows.ragged(odd, positions)
                odd.clear()

        for record in reader:
            if not record:
                blank += 1
                continue
            records += 1
            if len(record) != header_width:
                odd.append(record)
                ragged += 1
            else:
                batch.append(record if identity and header_width == width
                             else [record[p] for p in positions])  # fmt: skip
            if len(batch) + len(odd) >= ROW_GROUP:
                flush()
        flush()
        rows.flush()
        if rows.written == 0:
            writer.write_table(schema.empty_table())
    return Written(records=records, blank_lines=blank, ragged=ragged)
