"""``make demo``: the whole pipeline on the embedded default, then the top ten.

Embedded default: the lake in ``.run/lake``, Spark in local mode, and a private PostgreSQL under
``.run/postgres`` (started here, left running for ``make producto``) unless UFO_DATABASE_URL is
set. The source is UFO_SOURCE when given (real data), else a generated sample. ``.run`` is
UFO_RUN_DIR when set.

It writes ``.run/demo.env`` for later commands (``set -a; . .run/demo.env; set +a``): the
demo's database (UFO_DATABASE_URL, PRODUCTO_DATABASE_URL), lake (UFO_STORAGE), log directory
(UFO_LOG_DIR), source (UFO_SOURCE) and run date (RUN_DATE).

    python -m etl.tools.demo [--date YYYY-MM-DD] [--rows N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
from pathlib import Path

import luigi

from etl.settings import load_settings, setting


def run_dir() -> Path:
    """Where the demo keeps its lake, database, logs and demo.env (UFO_RUN_DIR, else .run)."""
    return setting("run_dir")


def _say(message: str = "") -> None:
    print(message, flush=True)


def prepare(args: argparse.Namespace) -> tuple[str, str]:
    """Set UFO_* for this process (sample data and private database as needed); (source, kind)."""
    from etl.redact import redact_source
    from etl.tools import ports, sample
    from etl.tools.localpg import LocalPostgres
    from etl.tools.services import http_ok

    run = run_dir()
    run.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    source = settings.source
    if source:
        kind = f"real data from UFO_SOURCE={redact_source(source)}"
    else:
        source = str((run / "sample" / f"nuforc_sample_{args.date}.csv").resolve())
        Path(source).parent.mkdir(exist_ok=True)
        with open(source, "w", encoding="utf-8", newline="") as out:
            sample.write(out, sample.generate(args.rows, until=args.date))
        kind = f"a generated sample of {args.rows} reports ({source}); set UFO_SOURCE for real data"
    # The demo's own lake, logs and database unless the environment names others; set for
    # this process, whose tasks read them, and written to demo.env for later commands.
    chosen = {
        "UFO_SOURCE": source,
        "UFO_STORAGE": os.environ.setdefault("UFO_STORAGE", str((run / "lake").resolve())),
        "UFO_LOG_DIR": os.environ.setdefault("UFO_LOG_DIR", str((run / "logs").resolve())),
        # Every Spark application's event log, for the history server of `make up`.
        "UFO_SPARK_EVENTS": os.environ.setdefault(
            "UFO_SPARK_EVENTS", str((run / "spark-events").resolve())
        ),
        "UFO_DATABASE_URL": settings.database_url
        or LocalPostgres(run.resolve() / "postgres").start().url,
    }
    os.environ.update(chosen)
    # The servers `make up` starts, at the ports in force (SPARK_HISTORY_PORT,
    # SPARK_CONNECT_PORT); `make up` rewrites both when it starts them elsewhere. Neither is for
    # this run: the history server's link only once one answers (no dead link in the output),
    # and the demo runs cold, as a one-off run would.
    history_url = settings.spark_history or (f"http://127.0.0.1:{ports.port('history')}")
    if http_ok(f"{history_url}/api/v1/version"):
        os.environ["UFO_SPARK_HISTORY_URL"] = history_url
    else:
        os.environ.pop("UFO_SPARK_HISTORY_URL", None)
    remote = settings.spark_remote or f"sc://127.0.0.1:{ports.port('connect')}"
    servers = {"UFO_SPARK_HISTORY_URL": history_url, "UFO_SPARK_REMOTE": remote}
    write_env(run / "demo.env", {**chosen, **servers}, args.date)
    return source, kind


def write_env(path: Path, chosen: dict[str, str], date: dt.date) -> None:
    """``demo.env``: the settings that point later commands at the demo's database and lake."""
    values = {
        **chosen,
        "PRODUCTO_DATABASE_URL": chosen["UFO_DATABASE_URL"],
        "RUN_DATE": date.isoformat(),
        # So that a command run with demo.env knows the demo's database when it is stopped.
        "UFO_RUN_DIR": str(path.parent.resolve()),
    }
    lines = ["# Written by `make demo`; load with: set -a; . .run/demo.env; set +a"]
    lines += [f"{name}={shlex.quote(value)}" for name, value in values.items()]
    # A URL given in UFO_DATABASE_URL may hold a password: only this user may read the file.
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("\n".join(lines) + "\n")


def report(date: dt.date) -> None:
    import sqlalchemy as sa

    from etl.adapters import database as db
    from etl.adapters.lake import open_lake
    from etl.adapters.manifests import Manifests, manifest_rel, partition
    from etl.tools import ports

    settings = load_settings()
    lake = open_lake(settings.storage)
    eng = db.engine(settings.require_database_url())
    with eng.connect() as conn:
        top = conn.execute(
            sa.select(db.top_states.c.rank, db.top_states.c.state, db.top_states.c.sightings)
            .where(db.top_states.c.run_date == date, db.top_states.c.period == "all")
            .order_by(db.top_states.c.rank)
        ).all()
        run = conn.execute(sa.select(db.ufo_runs).where(db.ufo_runs.c.run_date == date)).one()
    eng.dispose()
    _say(f"\nTop ten states by UFO sightings, all time (run date {date}):")
    for rank, state, sightings in top:
        _say(f"  {rank:>2}. {state}  {sightings:>7,}")
    _say(
        f"\nRows: {run.input:,} in, {run.valid:,} valid, {run.rejected:,} rejected "
        f"{dict(run.rejected_by_reason)}, {run.header_repeat:,} repeated headers, "
        f"{run.duplicate:,} duplicates, {run.after_run_date:,} posted after the run date."
    )
    _say("\nOutputs (each date's manifest lists its files):")
    published = Manifests(lake).read("aggregated", date) or {"files": {}}
    for dataset in ("raw", "aggregated"):
        _say(f"  {dataset:<10} {lake.uri(manifest_rel(dataset, date))}")
    for kind in ("rejects", "report"):
        for rel in published["files"].get(kind, []):
            _say(f"  {kind:<10} {lake.uri(rel)}")
    _say(f"  {'top10':<10} {lake.uri(partition('top10', date))}")
    _say(
        f"  database   {db.safe_url(settings.require_database_url())} (tables top_states, state_sightings, ufo_runs)"
    )
    _say(
        f"\nSettings for later commands: set -a; . {run_dir() / 'demo.env'}; set +a  (RUN_DATE={date})"
    )
    # The hints repeat the ports in force, so that their commands open what they name.
    given = ports.make_args()
    producto = f"http://127.0.0.1:{ports.port('producto')}"
    _say(f"See it in the browser: `make producto{given}`, then open {producto}")
    _say(f"Or the whole local product (luigid, the worker service, producto): `make up{given}`")
    if not settings.spark_history:
        _say("Spark's history server, which `make up` starts, will show this run's Spark step.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the UFO pipeline on the embedded default.")
    parser.add_argument("--date", type=dt.date.fromisoformat,
                        default=dt.date.today() - dt.timedelta(days=1), help="run date (default: yesterday)")  # fmt: skip
    parser.add_argument("--rows", type=int, default=20000, help="rows of the generated sample")
    args = parser.parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    from etl import logs
    from etl.errors import UfoError
    from etl.pipeline import TopStatesToDatabase

    logs.configure()

    real = bool(setting("source"))
    try:
        _, kind = prepare(args)
        before = earlier_load(args.date)
    except UfoError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 1
    _say(f"Running the UFO pipeline for run date {args.date} on {kind}.")
    if before:
        _say(f"Run date {args.date} is loaded already ({before}): this run replaces that load.")
    # A demo always recomputes its date, so a changed source or sample shows at once.
    task = TopStatesToDatabase(date=args.date, force=True, force_upstream=True)
    result = luigi.build([task], local_scheduler=True, detailed_summary=True)
    if result.status not in (
        luigi.LuigiStatusCode.SUCCESS,
        luigi.LuigiStatusCode.SUCCESS_WITH_RETRY,
    ):
        print(
            f"demo: error: the pipeline did not finish ({result.status.name}); see the messages above.",
            file=sys.stderr,
        )
        return 1
    report(args.date)
    if real:
        # A real file's reports run until it was exported: the demo loads it all as one run
        # date, which a user otherwise only finds in the top ten's heading.
        replaced = f"; it replaced that date's earlier load ({before})" if before else ""
        _say(
            f"\nUFO_SOURCE was loaded as run date {args.date}{replaced}. Another date: "
            ".venv/bin/python -m etl.tools.demo --date YYYY-MM-DD."
        )
    return 0


def earlier_load(date: dt.date) -> str | None:
    """The database's load of ``date`` before this run (its source and when), if any."""
    import sqlalchemy as sa

    from etl.adapters import database as db

    eng = db.engine(load_settings().require_database_url())
    try:
        with eng.connect() as conn:
            row = conn.execute(
                sa.select(db.ufo_runs.c.source, db.ufo_runs.c.finished_at).where(
                    db.ufo_runs.c.run_date == date
                )
            ).first()
    except sa.exc.SQLAlchemyError:
        return None  # a new database: no table yet (an unreachable one fails the run itself)
    finally:
        eng.dispose()
    return None if row is None else f"{row.source}, loaded {row.finished_at:%Y-%m-%d %H:%M %Z}"


if __name__ == "__main__":
    sys.exit(main())
