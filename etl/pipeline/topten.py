"""TopTenStates: the top ten states of each period, and every state's count per period."""

from __future__ import annotations

import datetime as dt
import time

from etl.errors import DataError
from etl.pipeline import ranking
from etl.pipeline.aggregate import AggregateUFOsByState
from etl.pipeline.base import UfoTask
from etl.pipeline.targets import TopTen, TopTenTarget


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
                raise DataError(f"run date {day}: {err}") from None
            outputs[day].dump(TopTen(top=top, counts=counts))
            self.progress(done, started, "TopTenStates")
