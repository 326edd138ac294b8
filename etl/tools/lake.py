"""The lake's upkeep: ``check`` that every manifest's files are there, ``sweep`` what nothing names.

    python -m etl.tools.lake check    # every manifest's files exist, of their recorded sizes
    python -m etl.tools.lake sweep    # remove attempts and leftovers older than the retention

``check`` reads every published manifest (``raw/``, ``aggregated/``) and each published top
ten's counts beside it, stops at the first file that is missing or not of the size its manifest
recorded, and says which and what to run (exit 1); exit 0 when all are there.

``sweep`` removes attempts (``_attempts/<attempt>/``) that no manifest names and that started
longer ago than the retention (``UFO_STALE_ATTEMPT_HOURS``, or ``--retention-hours``), and the
temporary files of writes killed before their rename. A file a manifest names is never
removed: an attempt is only removed when no manifest names it. Every pipeline run sweeps the
same way after publishing; this command is for a lake no run has touched for a while (from
cron, or after killed runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from etl.adapters.lake import Lake, open_lake
from etl.adapters.manifests import Manifests
from etl.errors import UfoError
from etl.logs import configure
from etl.pipeline.targets import AGGREGATED, RAW, TOP10, TopTenTarget
from etl.settings import load_settings


def check(lake: Lake, say=print) -> str | None:
    """The first problem found (a sentence), or None when every named file is there."""
    manifests = Manifests(lake)
    counted = files = 0
    for dataset in (RAW, AGGREGATED):
        for day, manifest in manifests.all_published(dataset):
            counted += 1
            files += sum(len(paths) for paths in manifest["files"].values())
            wrong = manifests.first_missing(manifest)
            if wrong:
                path, what = wrong
                return (
                    f"{lake.uri(path)} ({what}) is named by {dataset}/date={day}/_MANIFEST.json: "
                    f"run the pipeline for {day} again with --force-upstream to write it anew."
                )
    for name in lake.subdirs(TOP10):
        try:
            day = dt.date.fromisoformat(name.removeprefix("date="))
        except ValueError:
            continue
        top = TopTenTarget(lake, day)
        if lake.exists(top.rel) and not lake.exists(top.counts_rel):
            return (
                f"{lake.uri(top.counts_rel)} is missing beside {top.path}: run TopTenStates for "
                f"{day} again with --force."
            )
    say(f"lake check: {counted} manifests, {files} files named, all present at their sizes")
    return None


def sweep(lake: Lake, retention: dt.timedelta, say=print) -> int:
    """Remove what nothing names and is older than ``retention``; how many were removed."""
    removed = Manifests(lake).sweep(retention)
    leftovers = lake.leftovers(retention.total_seconds())
    for rel in leftovers:
        lake.remove(rel)
    for attempt in removed:
        say(f"lake sweep: removed the attempt {attempt} (no manifest names it)")
    for rel in leftovers:
        say(f"lake sweep: removed {rel} (left by a write that was killed)")
    say(f"lake sweep: {len(removed)} attempt(s) and {len(leftovers)} leftover file(s) removed")
    return len(removed) + len(leftovers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m etl.tools.lake", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="every manifest's files exist, of their recorded sizes")
    sweeping = commands.add_parser("sweep", help="remove attempts and leftovers nothing names")
    sweeping.add_argument(
        "--retention-hours", type=float, help="instead of UFO_STALE_ATTEMPT_HOURS"
    )
    args = parser.parse_args(argv)
    configure()
    try:
        settings = load_settings()
        lake = open_lake(settings.storage)
        if args.command == "check":
            problem = check(lake)
            if problem:
                print(f"lake: error: {problem}", file=sys.stderr)
                return 1
            return 0
        hours = args.retention_hours
        retention = dt.timedelta(hours=hours) if hours is not None else settings.stale_attempts
        sweep(lake, retention)
        return 0
    except UfoError as err:
        print(f"lake: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
