"""The execution summary a run ends with, in the pipeline's terms.

Luigi's own (``luigi.execution_summary``) counts a batch's run dates as separate tasks with
every parameter shown (``AggregateUFOsByState(date=2019-03-01...2019-03-28, force=False,
capture_output=True)``) and lists the batch that just ran among "complete ones were
encountered". This one takes Luigi's grouping of the run's tasks by outcome and says each
task once, under the outcome that counts (ran, failed, ... before already complete), with its
run dates as a range: ``AggregateUFOsByState(date=2019-03-01..2019-03-28 (28 dates))``. The
frame and the closing verdict ("This progress looks :) because ...") stay Luigi's.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from luigi import execution_summary

from etl.pipeline.reporting import label, span

logger = logging.getLogger("ufo")

#: Luigi's outcomes, in the order a task is said under (the first that holds it), with how
#: Luigi words each.
OUTCOMES = (
    ("failed", "failed"),
    ("completed", "ran successfully"),
    ("scheduling_error", "failed scheduling and/or unhandled exception"),
    ("not_run", "were not granted run permission by the scheduler"),
    ("upstream_failure", "had failed dependencies"),
    ("upstream_missing_dependency", "had missing dependencies"),
    ("upstream_run_by_other_worker", "had dependencies that were being run by other worker"),
    ("upstream_scheduling_error", "had dependencies whose scheduling failed"),
    ("run_by_other_worker", "were being run by another worker"),
    ("still_pending_ext", "were missing external dependencies"),
    ("already_done", "complete ones were encountered"),
)

_luigi_format = execution_summary._summary_format


def summary_format(groups: dict[str, set], worker) -> str:
    """The summary's text of Luigi's grouping ``groups`` (outcome -> tasks): what Luigi frames
    (Luigi's own, if its grouping cannot be read)."""
    try:
        verdict = execution_summary._create_one_line_summary(
            execution_summary._tasks_status(groups)
        )
        return render(groups, verdict)
    except Exception as err:  # another Luigi: its own summary rather than none
        logger.warning("summary: Luigi's own, this one failed (%s)", err)
        return _luigi_format(groups, worker)


def render(groups: dict[str, set], verdict: str) -> str:
    """Each task once, under the first outcome that holds it, its run dates as a range."""
    said: set[tuple[str, dt.date | str]] = set()
    lines = []
    for outcome, words in OUTCOMES:
        units: dict[str, list] = defaultdict(list)  # family -> its run dates, or other tasks
        for task in groups.get(outcome, ()):
            dates = getattr(task, "dates", None)
            keys = dates if isinstance(dates, tuple) and dates else (label(task),)
            for key in keys:
                if (task.task_family, key) not in said:
                    said.add((task.task_family, key))
                    units[task.task_family].append(key)
        if not units:
            continue
        lines.append(f"* {sum(len(u) for u in units.values())} {words}:")
        for family in sorted(units):
            dates = sorted(k for k in units[family] if isinstance(k, dt.date))
            if dates:
                lines.append(f"    - {family}(date={span(tuple(dates))})")
            lines += [f"    - {k}" for k in sorted(k for k in units[family] if isinstance(k, str))]
    if not lines:
        return "Did not schedule any tasks"
    return "\n".join([f"Scheduled {len(said)} tasks of which:", *lines, "", verdict])


def install() -> None:
    """Make Luigi's command line end with this summary (Luigi frames it: the lines of "=====
    Luigi Execution Summary =====" stay)."""
    execution_summary._summary_format = summary_format
