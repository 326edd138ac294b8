"""TopTenStates: the top ten states of each period, and every state's count per period."""

from __future__ import annotations

import datetime as dt
import time

from etl.errors import DataError
from etl.pipeline import ranking
from etl.pipeline.aggregate import AggregateUFOsByState
from etl.pipeline.base import UfoTask
from etl.pipeline.targets import TopTen, TopTenTarget


def why_no_sightings(quality: dict, day: dt.date, err: Exception) -> str:
    """Why a run date has no valid sighting to rank, from its quality report's figures."""
    reports = quality["input"] - quality["header_repeat"] - quality["duplicate"]
    later, rejected = quality["after_run_date"], quality["rejected"]
    if quality["valid"] or not reports:
        return str(err)
    if later == reports:
        return (
            f"every one of the source's {reports:,} reports was posted after {day}: its snapshot "
            "is empty. Give a later run date (--date), or a source that covers this one."
        )
    reasons = ", ".join(f"{n:,} {r}" for r, n in quality["rejected_by_reason"].items() if n)
    return (
        f"no valid sighting in the snapshot of {day}: of {reports:,} reports, {later:,} were "
        f"posted after it and {rejected:,} rejected ({reasons}); see the rejects in the lake "
        "(aggregated/date=D/_MANIFEST.json lists them) for why."
    )


class TopTenStates(UfoTask):
    """The top ten states for all time and for each month: ``top10/date=.../top_states.csv``,
    with the per-period counts they are ranked from beside it."""

    def requires(self) -> AggregateUFOsByState:
        return self.upstream(AggregateUFOsByState)

    def output(self) -> dict[dt.date, TopTenTarget]:
        return {day: TopTenTarget(self.lake, day) for day in self.dates}

    def run(self) -> None:
        started = time.monotonic()
        outputs = self.output()
        for done, (day, aggregate) in enumerate(self.input().items(), start=1):
            try:
                counts = ranking.counts_by_period(aggregate.load_counts())
                top = ranking.top_states(counts)
            except DataError as err:
                raise DataError(
                    f"run date {day}: {why_no_sightings(aggregate.quality(), day, err)}"
                ) from None
            outputs[day].dump(TopTen(top=top, counts=counts))
            self.progress(done, started, "TopTenStates")
