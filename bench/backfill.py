"""How long a backfill takes: RangeDaily over N run dates, timed, extrapolated to a year.

    python bench/backfill.py [--source FILE] [--days 6] [--workers 2]

Runs ``RangeDaily --of TopStatesToDatabase`` over the N run dates ending on 2019-03-29 (a fresh
lake, a private PostgreSQL, local Spark, the luigi.cfg resource cap of one Spark application at
a time), then reports seconds per run date and that figure times 365.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "ufo" / "nuforc_index_2019-03-21.csv"
LAST = dt.date(2019, 3, 29)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"bench: no source file {args.source}: give --source", file=sys.stderr)
        return 2

    from etl.localpg import LocalPostgres

    work = Path(tempfile.mkdtemp(prefix="ufo-backfill-"))
    server = LocalPostgres(work / "postgres").start()
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", UFO_SOURCE=str(args.source),
               UFO_STORAGE=str(work / "lake"), UFO_DATABASE_URL=server.url, SPARK_MASTER="local[*]")  # fmt: skip
    start = LAST - dt.timedelta(days=args.days - 1)
    cmd = [sys.executable, "-m", "luigi", "--module", "etl", "RangeDaily", "--of", "TopStatesToDatabase",
           "--start", start.isoformat(), "--stop", (LAST + dt.timedelta(days=1)).isoformat(),
           "--days-back", "36500", "--task-limit", "400", "--workers", str(args.workers),
           "--local-scheduler", "--no-lock"]  # fmt: skip
    try:
        began = time.perf_counter()
        result = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        elapsed = time.perf_counter() - began
    finally:
        server.stop()
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], file=sys.stderr)
        return result.returncode
    per_date = elapsed / args.days
    print(
        f"backfill of {args.days} run dates ({start} .. {LAST}), --workers {args.workers}, {os.cpu_count()} cores"
    )
    print(f"  total {elapsed:7.1f} s, {per_date:5.1f} s per run date")
    print(f"  a year of run dates at that rate: {per_date * 365 / 3600:4.1f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
