"""A UTF-8 CSV source cut into pieces at record boundaries, for ingestion on the cluster.

Spark cannot split one quoted CSV file itself: a line break may be inside a quoted field, so a
reader starting at an arbitrary byte cannot tell where the next record begins. The one pass
that can is sequential but cheap: it follows the quoting exactly as Python's ``csv`` module
reads it (the reference reader, ``spark_jobs/records.py``), and only the quoting:

* a quote opens a quoted field only at a field's start (the file's start, or after a comma or a
  line break); anywhere else it is text;
* in a quoted field, ``""`` is a quote and the next lone quote closes the field;
* outside a quoted field, a line feed ends the record.

``record_starts`` notes a record boundary (just after a line feed outside any quoted field)
about every ``every`` bytes. Each piece then holds whole records, and reading the pieces one by
one gives the records of the whole file. The scan runs at regular-expression speed, in memory
of about one ``CHUNK``, whatever the file's size.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

#: Bytes read at a time.
CHUNK = 8 << 20

#: Outside a quoted field: text without quotes, a quote that opens no field (not at a field's
#: start: text, as the ``csv`` module reads it) or a whole quoted field. Possessive throughout:
#: the regular expression engine keeps no state per repetition, however long the text.
_OUTSIDE = re.compile(rb'(?:[^"]++|(?<![,\r\n])"|"(?:[^"]++|"")*+")*+')

_QUOTE = 0x22


def _closing(buf: bytes, i: int, eof: bool) -> tuple[int | None, int]:
    """Where the quoted field open at ``buf[i:]`` ends (just past its closing quote), or None
    and where to resume once more of the file is in ``buf``."""
    while True:
        j = buf.find(b'"', i)
        if j < 0:
            return None, len(buf)
        if j + 1 == len(buf):  # a quote at the end: an escaped one, or the closing one?
            return (j + 1, j) if eof else (None, j)
        if buf[j + 1] == _QUOTE:  # "" in a quoted field: a quote
            i = j + 2
            continue
        return j + 1, j


def record_starts(path: str, every: int) -> list[int]:
    """The byte offsets at which the pieces of the UTF-8 CSV file at ``path`` start: 0, then a
    record boundary at least ``every`` bytes after the previous one, until the file ends."""
    size = os.path.getsize(path)
    starts = [0]
    with open(path, "rb") as handle:
        starts += _boundaries(handle, every, size)
    return starts


def _boundaries(handle, every: int, size: int) -> Iterator[int]:
    # buf[pos] is outside any quoted field; buf[pos - 1] (the byte before, or a line feed
    # standing for the file's start) tells whether a quote at pos opens a field.
    buf, base, pos = b"\n", -1, 1
    eof = False
    cut = every  # the next boundary: the first record end at or after this file offset

    def more(keep: int) -> int:
        """Read on, dropping the buffer before ``keep``: how far its indexes moved."""
        nonlocal buf, base, eof
        chunk = handle.read(CHUNK)
        eof = len(chunk) < CHUNK
        buf, base = buf[keep:] + chunk, base + keep
        return keep

    while cut < size:
        nl = buf.find(b"\n", max(pos, cut - base))  # a line feed at or after the cut
        limit = nl if nl >= 0 else buf.rfind(b"\n", pos)  # else the last one read
        if limit <= pos and nl < 0:  # nothing to scan up to: read on
            if eof:
                return
            pos -= more(pos - 1)
            continue
        end = _OUTSIDE.match(buf, pos, limit).end()
        if end == limit:  # outside any quoted field up to that line feed
            if nl < 0:
                pos = limit
                continue
            pos = nl + 1
            if base + pos < size:
                yield base + pos
            cut = base + pos + every
            continue
        # A quoted field opens at ``end`` and goes past the line feed: find where it closes.
        resume = end + 1
        while True:
            closed, resume = _closing(buf, resume, eof)
            if closed is not None:
                pos = closed
                break
            if eof:
                return  # a quote never closed: the rest of the file is its record
            resume -= more(resume - 1)
