"""ReadUFOs: the source, checked and read into the lake's raw zone."""

from __future__ import annotations

import datetime as dt
import logging
import os

from etl import redact
from etl.adapters import source
from etl.pipeline import ingest
from etl.pipeline.base import UfoTask
from etl.pipeline.reporting import span
from etl.pipeline.targets import RAW, RawTarget, raw_records

logger = logging.getLogger("ufo")


class ReadUFOs(UfoTask):
    """The source of the run date, checked and read into the raw zone (Parquet and a UTF-8 copy)."""

    def output(self) -> dict[dt.date, RawTarget]:
        return self.per_date(RawTarget)

    def _read_here(self, local: str, attempt: str, shown: str):
        """Read the source on this machine: what was read, and the manifest's files."""
        files = {
            "records": [f"{attempt}/raw/records.parquet"],
            "source": [f"{attempt}/raw/source.csv"],
        }
        with (
            self.lake.writing(files["records"][0]) as parquet,
            self.lake.writing(files["source"][0]) as copy,
        ):
            info = source.ingest(local, copy, parquet, shown, self.settings.layouts or ())
        return info, files

    def run(self) -> None:
        self.link_console()
        uri = self.settings.require_source()
        shown = redact.redact_source(uri)
        self.lake.check()
        attempt = self.manifests.new_attempt(RAW, self.dates)
        try:
            with source.fetched(uri, shown) as local:
                if ingest.on_cluster(self.settings, os.path.getsize(local)):
                    info, files = ingest.read_on_cluster(
                        self,
                        self.lake,
                        local,
                        attempt,
                        shown,
                        self.settings,
                        f"ReadUFOs {span(self.dates)}",
                    )
                else:
                    info, files = self._read_here(local, attempt, shown)
        except Exception:
            self.lake.remove(attempt)  # nothing was published: leave nothing behind
            raise
        details = {
            "source": shown,
            "layout": info.layout,
            "columns": list(info.columns),
            "encoding": info.encoding,
            "bytes": info.bytes_in,
            "records": info.records,
            "blank_lines": info.blank_lines,
            "ragged": info.ragged,
            "pieces": len(files["source"]),  # more than one: read on the cluster
        }
        superseded = [
            self.manifests.publish(RAW, day, attempt, files, **details) for day in self.dates
        ]
        self.tidy(superseded)
        logger.info(
            "ReadUFOs %s: %d records (%s layout) from %s (%s, %d bytes) into %s",
            span(self.dates), info.records, info.layout, shown, info.encoding, info.bytes_in,
            self.lake.uri(raw_records({"files": files})),
        )  # fmt: skip
        if info.ragged:
            logger.warning(
                "ReadUFOs %s: %d records have more or fewer fields than the header of %s; they "
                "are rejected with reason 'columns' and kept whole in the rejects (_record)",
                span(self.dates), info.ragged, shown,
            )  # fmt: skip
