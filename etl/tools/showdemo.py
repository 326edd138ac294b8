"""Show the demo's run in luigid's task list: its four tasks of each run date, as luigid sees them.

    python -m etl.tools.showdemo PORT DATE [DATE...]

``make demo`` runs with ``--local-scheduler``, before any luigid exists, so the luigid that
``make up`` starts next would list nothing of it. This schedules the four tasks of each date
on the luigid at 127.0.0.1:PORT with no worker process: Luigi checks each task, tells luigid
it is DONE (or PENDING, when it is not complete) and runs nothing. About 2 s; ``make up``
starts it in the background. Run with the demo's settings (``demo.env``), which say where the
outputs are. Exit status 0 when every task was complete and luigid took them all, else 1.
"""

from __future__ import annotations

import sys

import luigi

from etl import logs
from etl.pipeline import AggregateUFOsByState, ReadUFOs, TopStatesToDatabase, TopTenStates
from etl.tools.ports import HOST

TASKS = (ReadUFOs, AggregateUFOsByState, TopTenStates, TopStatesToDatabase)


def show(port: int, dates: list[str]) -> bool:
    """Tell the luigid at ``port`` about the tasks of ``dates``; whether all were complete."""
    tasks = [task.from_str_params({"date": day}) for day in dates for task in TASKS]
    return luigi.build(
        tasks, workers=0, local_scheduler=False, scheduler_host=HOST, scheduler_port=port
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or not args[0].isdigit():
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    logs.configure()  # Luigi's lines and its summary, on stdout
    return 0 if show(int(args[0]), args[1:]) else 1


if __name__ == "__main__":
    sys.exit(main())
