"""ReadUFOs: the source, checked and read into the lake's raw zone."""

from __future__ import annotations

import datetime as dt
import logging

from etl import redact
from etl.adapters import source
from etl.pipeline.base import UfoTask
from etl.pipeline.reporting import span
from etl.pipeline.targets import RAW, RawTarget

logger = logging.getLogger("ufo")


class ReadUFOs(UfoTask):
    """The source of the run date, checked and read into the raw zone (Parquet and a UTF-8 copy)."""

    def output(self) -> dict[dt.date, RawTarget]:
        return self.per_date(RawTarget)

    def run(self) -> None:
        self.link_console()
        uri = self.settings.require_source()
        shown = redact.redact_source(uri)
        self.lake.check()
        attempt = self.manifests.new_attempt(RAW, self.dates)
        files = {
            "records": [f"{attempt}/raw/records.parquet"],
            "source": [f"{attempt}/raw/source.csv"],
        }
        try:
            with (
                self.lake.writing(files["records"][0]) as parquet,
                self.lake.writing(files["source"][0]) as copy,
                source.fetched(uri, shown) as local,
            ):
                info = source.ingest(local, copy, parquet, shown, self.settings.layouts or ())
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
        }
        superseded = [
            self.manifests.publish(RAW, day, attempt, files, **details) for day in self.dates
        ]
        self.tidy(superseded)
        logger.info(
            "ReadUFOs %s: %d records (%s layout) from %s (%s, %d bytes) into %s",
            span(self.dates), info.records, info.layout, shown, info.encoding, info.bytes_in,
            self.lake.uri(files["records"][0]),
        )  # fmt: skip
        if info.ragged:
            logger.warning(
                "ReadUFOs %s: %d records have more or fewer fields than the header of %s; they "
                "are rejected with reason 'columns' and kept whole in the rejects (_record)",
                span(self.dates), info.ragged, shown,
            )  # fmt: skip
