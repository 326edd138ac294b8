"""Rebuild the product database from the lake: every published run date loaded again, no Spark.

    python -m etl.tools.rebuild            # the dates the database lacks
    python -m etl.tools.rebuild --reload   # every date, replacing what the database holds

A run date is published in the lake when its top ten (``top10/date=D/top_states.csv``) and its
aggregate's manifest exist; a date its checks held has no top ten and is not loaded. Each date
is loaded as TopStatesToDatabase loads it (``TopStatesToDatabase.results`` and the same loader),
in its own transaction, so the rows are the ones the pipeline loaded: the same top tens, state
counts, quality figures, checks and sample rejects (``UFO_REJECT_ROWS`` of each reason).

Idempotent and resumable: a date already loaded is skipped (``--reload`` loads it again), so a
rebuild that was killed goes on where it stopped. Progress is logged about every tenth of the
dates. Exit 0 done, 1 an error (``rebuild: error:``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time

from etl.adapters import database
from etl.adapters.lake import Lake, open_lake
from etl.errors import UfoError
from etl.logs import configure
from etl.pipeline.load import Latest, TopStatesToDatabase, load_in_order
from etl.pipeline.rejects import RejectReader
from etl.pipeline.targets import TOP10, AggregateTarget, TopTenTarget
from etl.settings import load_settings

logger = logging.getLogger("ufo")


def published_dates(lake: Lake) -> list[dt.date]:
    """The run dates the lake has published: their top ten and aggregate manifest exist."""
    found = []
    for name in lake.subdirs(TOP10):
        try:
            day = dt.date.fromisoformat(name.removeprefix("date="))
        except ValueError:
            continue
        if TopTenTarget(lake, day).exists() and AggregateTarget(lake, day).exists():
            found.append(day)
    return sorted(found)


def rebuild(lake: Lake, url: str, reject_rows: int, reload: bool = False) -> int:
    """Load the lake's published dates the database lacks (every one with ``reload``); how many."""
    dates = published_dates(lake)
    loaded = set() if reload else database.loaded_dates(url, dates)
    todo = [day for day in dates if day not in loaded]
    logger.info(
        "rebuild: %d published run date(s) in %s, %d already loaded, %d to load into %s",
        len(dates), lake.uri(""), len(dates) - len(todo), len(todo), database.safe_url(url),
    )  # fmt: skip
    if not todo:
        return 0
    rejects, shared, started = RejectReader(lake), Latest(), time.monotonic()

    def results(day: dt.date) -> database.RunResults:
        return TopStatesToDatabase.results(
            day, AggregateTarget(lake, day), TopTenTarget(lake, day), rejects, reject_rows, shared
        )

    step = max(1, len(todo) // 10)

    def loaded(done: int) -> None:
        if done % step == 0 or done == len(todo):
            elapsed = time.monotonic() - started
            logger.info(
                "rebuild: %d of %d dates loaded, %.1f s so far, about %.0f s left",
                done, len(todo), elapsed, elapsed / done * (len(todo) - done),
            )  # fmt: skip

    with database.Loader(url) as loader:
        load_in_order(loader, todo, results, loaded)  # in date order: neighbours share files
    return len(todo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m etl.tools.rebuild", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--reload", action="store_true", help="load every date again, even those already loaded"
    )
    args = parser.parse_args(argv)
    configure()
    try:
        settings = load_settings()
        url = settings.require_database_url()
        count = rebuild(open_lake(settings.storage), url, settings.reject_rows, args.reload)
    except UfoError as err:
        print(f"rebuild: error: {err}", file=sys.stderr)
        return 1
    logger.info("rebuild: done, %d date(s) loaded", count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
