"""TopTenStates: the top ten states of each period, and every state's count per period."""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from etl.errors import DataError
from etl.pipeline import checks, ranking
from etl.pipeline.aggregate import AggregateUFOsByState
from etl.pipeline.base import UfoTask
from etl.pipeline.reporting import span
from etl.pipeline.targets import AGGREGATED, AggregateTarget, TopTen, TopTenTarget

logger = logging.getLogger("ufo")

#: Threads that write a batch's files side by side.
WRITERS = 4


def reports_of(quality: dict) -> int:
    """The source's reports: its records other than header repeats and exact duplicates."""
    return quality["input"] - quality["header_repeat"] - quality["duplicate"]


def before_every_report(quality: dict) -> bool:
    """Whether the run date comes before every report of the source: its snapshot is empty
    (a backfill that starts before the source does; not a failure)."""
    reports = reports_of(quality)
    return bool(reports) and quality["after_run_date"] == reports


def why_no_sightings(quality: dict, day: dt.date, err: Exception) -> str:
    """Why a run date has no valid sighting to rank, from its quality report's figures."""
    reports = reports_of(quality)
    later, rejected = quality["after_run_date"], quality["rejected"]
    if quality["valid"] or not reports:
        return str(err)
    reasons = ", ".join(f"{n:,} {r}" for r, n in quality["rejected_by_reason"].items() if n)
    return (
        f"no valid sighting in the snapshot of {day}: of {reports:,} reports, {later:,} were "
        f"posted after it and {rejected:,} rejected ({reasons}); see the rejects in the lake "
        "(aggregated/date=D/_MANIFEST.json lists them) for why."
    )


class TopTenStates(UfoTask):
    """The top ten states for all time and for each month: ``top10/date=.../top_states.csv``,
    with the per-period counts they are ranked from and the snapshot's checks report beside it.

    Publishes nothing of a batch when a date's snapshot fails its checks (``checks``)."""

    def requires(self) -> AggregateUFOsByState:
        return self.upstream(AggregateUFOsByState)

    def output(self) -> dict[dt.date, TopTenTarget]:
        return self.per_date(TopTenTarget)

    def run(self) -> None:
        self.link_console()
        # The snapshot checks first: a held date gets its checks report and nothing else, so
        # what users see (its previous top ten, the database) stays as it was.
        started = time.monotonic()
        outputs, aggregates = self.output(), self.input()
        manifests = {day: aggregate.manifest() for day, aggregate in aggregates.items()}
        reports = self.check(manifests)
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(lambda day: outputs[day].write_checks(reports[day]), reports))
        if any(r["held"] for r in reports.values()):
            checks.note_held()
            raise checks.SnapshotHeld(checks.why_held(reports))
        # Dates with the same snapshot share their counts' files (the Spark job writes them
        # once): ranked once, and the later dates' files copies of the first one's.
        runs: list[list[dt.date]] = []
        last: tuple[str, ...] = ()
        for day in aggregates:
            files = tuple(aggregates[day].files(AGGREGATED, manifests[day]))
            if runs and files and files == last:
                runs[-1].append(day)
            else:
                runs.append([day])
            last = files

        def publish(run: list[dt.date]) -> int:
            first = outputs[run[0]]
            first.dump(self.rank(run[0], aggregates[run[0]], manifests[run[0]]))
            for day in run[1:]:
                outputs[day].copy_of(first)
            return len(run)

        # The runs side by side: a ten-year batch is 3,652 dates of small files, which wait on
        # the file system more than on Python. A run that fails stops those not yet started.
        done = 0
        with ThreadPoolExecutor(WRITERS) as pool:
            pending = [pool.submit(publish, run) for run in runs]
            try:
                for finished in as_completed(pending):
                    done += finished.result()
                    self.progress(done, started, f"TopTenStates {span(self.dates)}: ranked")
            except BaseException:
                for future in pending:
                    future.cancel()
                raise

    def check(self, manifests: dict[dt.date, dict]) -> dict[dt.date, dict]:
        """Each date's checks report from its aggregate's manifest, against the published
        dates before it (and the batch's earlier dates: published with it, or not at all)."""
        settings = self.settings
        rules = checks.rules(settings.checks)
        accepted = checks.acceptance(self.accept_checks)
        declared = {layout.name for layout in settings.layouts or ()}
        published = {
            p.day: p
            for p in checks.published_before(
                self.lake, self.dates[-1], checks.JUMP_DATES + len(self.dates)
            )
        }
        known = sorted(published)  # kept sorted: a ten-year batch has 3,652 dates
        reports = {}
        for day, manifest in sorted(manifests.items()):
            at = bisect.bisect_left(known, day)
            history = [published[d] for d in known[max(0, at - checks.JUMP_DATES) : at]]
            results = checks.evaluate(
                manifest["quality"], manifest.get("layout"), history, rules, declared
            )
            reports[day] = checks.report(day, results, accepted)
            for result in results:
                if result["status"] in ("failed", "warned"):
                    logger.warning("TopTenStates %s: check %s %s: %s",
                                   day, result["name"], result["status"], result["detail"])  # fmt: skip
            if reports[day]["accepted"]:
                logger.warning("TopTenStates %s: failed checks accepted by %s: %s",
                               day, accepted["by"], accepted["why"])  # fmt: skip
            if day not in published:
                bisect.insort(known, day)
            published[day] = checks.Published(day, manifest["quality"], manifest.get("layout"))
        return reports

    @staticmethod
    def rank(day: dt.date, aggregate: AggregateTarget, manifest: dict) -> TopTen:
        """The top tens of ``day``'s counts (``aggregate``, its ``manifest`` read); none before
        every report of the source."""
        quality = manifest["quality"]
        try:
            counts = ranking.counts_by_period(aggregate.load_counts(manifest))
            if not counts.num_rows and before_every_report(quality):
                logger.warning(
                    "TopTenStates %s: every one of the source's %s reports was posted after "
                    "it: its snapshot is empty (no top ten)",
                    day, f"{reports_of(quality):,}",
                )  # fmt: skip
                return TopTen(top=ranking.TOP_SCHEMA.empty_table(), counts=counts)
            return TopTen(top=ranking.top_states(counts), counts=counts)
        except DataError as err:
            raise DataError(f"run date {day}: {why_no_sightings(quality, day, err)}") from None
