"""ReadUFOs on the cluster: the source cut into pieces, the pieces parsed by Spark's executors.

For a source too large to read on one machine (``UFO_INGEST``, ``UFO_INGEST_CLUSTER_SIZE``):

1. the source's UTF-8 copy is cut at record boundaries about every ``UFO_INGEST_PIECE_SIZE``
   bytes (``etl/adapters/pieces.py``: one sequential scan that follows the quoting) and the
   pieces go into the attempt's ``raw/source/`` as they are cut: together they are the copy;
2. ``spark_jobs/ingest_source.py`` parses the pieces in parallel with the pipeline's own reader
   into ``raw/records/`` (Parquet, the raw zone's columns) and counts what it found;
3. ``ReadUFOs`` publishes every file in one manifest per run date, as for a source read here.

The records are those the reader finds in the whole file on one machine: the same rows, blank
lines, ragged records and counts.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable

import luigi

from etl.adapters import pieces, source
from etl.adapters.lake import Lake
from etl.pipeline.spark_submit import ProjectSparkSubmitTask
from etl.settings import Settings
from spark_jobs import INGEST_SOURCE, layouts, records

logger = logging.getLogger("ufo")


def on_cluster(settings: Settings, size: int) -> bool:
    """Whether a source of ``size`` bytes (decompressed) is parsed on the cluster.

    ``auto`` never chooses a local Spark master: on one machine the reader here is faster (10 GB
    on 2 cores: 59 s against 91 s, ``bench/ingest.py``)."""
    if settings.ingest == "auto":
        alone = settings.spark_master.startswith("local") and not settings.spark_remote
        return size >= settings.ingest_cluster_size and not alone
    return settings.ingest == "cluster"


class IngestSource(ProjectSparkSubmitTask):
    """spark-submit of ``spark_jobs/ingest_source.py`` for one attempt of ``ReadUFOs``, which
    runs it (it is not scheduled on its own)."""

    app = str(INGEST_SOURCE)
    attempt = luigi.Parameter()
    application = luigi.Parameter(significant=False, default="ReadUFOs on the cluster")
    options: list[str] = []

    @property
    def name(self) -> str:
        return self.application

    def app_options(self) -> list[str]:
        return [*self.options, "--name", self.name]


def read_on_cluster(
    task: luigi.Task,
    lake: Lake,
    local: str,
    attempt: str,
    shown: str,
    settings: Settings,
    label: str,
) -> tuple[source.Ingested, dict[str, list[str]]]:
    """Read the local, decompressed source at ``local`` into ``attempt``'s raw zone on the
    cluster: what was read, and the files for the manifest (``records`` and ``source``).
    ``task``: the ReadUFOs that runs it, whose page in luigid links to the Spark UI meanwhile."""
    declared: Iterable[layouts.Layout] = settings.layouts or ()
    encoding = source.detect_encoding(local, shown)
    with tempfile.TemporaryDirectory(prefix="ufo-pieces-") as tmp:
        text = local
        with open(local, "rb") as handle:
            plain = encoding == "utf-8-sig" and handle.read(3) != b"\xef\xbb\xbf"
        if not plain:  # the pieces are cut from the UTF-8 copy
            text = os.path.join(tmp, "source.csv")
            source.utf8_copy(local, encoding, text)
        header, found = source.header_layout(text, shown, declared)
        starts = pieces.record_starts(text, settings.ingest_piece_size)
        ends = [*starts[1:], os.path.getsize(text)]
        cut = [f"{attempt}/raw/source/part-{i:05d}.csv" for i in range(len(starts))]
        for rel, start, end in zip(cut, starts, ends):
            with lake.writing(rel) as dest:
                source.copy_range(text, start, end, dest)
    logger.info("%s: %s cut into %d pieces at record boundaries, parsed on the cluster",
                label, shown, len(cut))  # fmt: skip
    folder = f"{attempt}/raw/records"
    job = IngestSource(attempt=attempt, application=f"{label} on the cluster")
    job.set_tracking_url = task.set_tracking_url  # not scheduled: the worker set none of its own
    job.options = [
        "--pieces", lake.spark_uri(f"{attempt}/raw/source"),
        "--header", json.dumps(header),
        "--columns", json.dumps(list(found.names)),
        "--positions", json.dumps(list(found.positions)),
        "--output", lake.spark_uri(folder),
    ]  # fmt: skip
    job.submit()
    report = json.loads(lake.read_text(f"{folder}/_ingest.json"))
    written = records.Written(report["records"], report["blank_lines"], report["ragged"])
    info = source.ingested(local, shown, encoding, found, written)
    return info, {"records": [f"{folder}/{name}" for name in report["files"]], "source": cut}
