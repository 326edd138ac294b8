"""luigid, Luigi's central scheduler, with a task history that matches its task list.

    python -m etl.worker.luigid_server [--address ADDR] [--port 8082] [--state-path FILE]
                                       [--logdir DIR | --log-file FILE] [--pidfile FILE]
                                       [--unix-socket PATH]

The flags are those of Luigi's ``luigid`` (``--background`` aside: run it under a supervisor,
as ``make up``, compose and Kubernetes do), and the server is Luigi's own
(``luigi.server.run``), with one change to its scheduler. Luigi records a task's history
(``[scheduler] record_task_history``, the ``[task_history]`` database) when a worker reports
on that task; the dates of a batch (a backfill's ``AggregateUFOsByState(date=A..B)``) are
never reported on one by one: the scheduler hands them out and ends them with the batch task
in memory only. Its task list shows each date DONE while its history keeps each date's row
PENDING, without a host. ``BatchHistoryScheduler`` records what happens to them in the
history: RUNNING, with the worker's host, when a batch is handed out; DONE or FAILED (a date
that is then disabled too) when the batch ends, or when prune fails it because its worker is
gone; PENDING when its worker never claimed it and it goes back to the pool. The rows are the
per-date task ids luigid lists. A task that prune fails with its dead worker is recorded
FAILED too (Luigi records nothing then), and a RUNNING row without a host gets the host of
the worker that runs it (a batch task's own row).

Logging: luigid's log lines (its requests among them) go to ``--log-file``, else to
``luigi-server.log`` in ``--logdir`` as Luigi's luigid writes them, else to stderr; nothing
is printed on stdout. Set up here, whatever ``[core] no_configure_logging`` says: that
option of ./luigi.cfg is meant for the pipeline's runs.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import luigi.configuration
import luigi.server
from luigi.scheduler import Scheduler
from luigi.task_status import BATCH_RUNNING, DISABLED, DONE, FAILED, PENDING, RUNNING

LOG_FORMAT = "%(asctime)s %(name)s[%(process)s] %(levelname)s: %(message)s"  # luigid's own

#: A batch member's new status -> what the history records of it.
_RECORDED = {DONE: DONE, FAILED: FAILED, DISABLED: FAILED, PENDING: PENDING}


class BatchHistoryScheduler(Scheduler):
    """Luigi's scheduler, recording in the task history what happens to a batch's tasks."""

    @contextlib.contextmanager
    def _watch(self, *statuses: str, reported: str | None = None) -> Iterator[None]:
        """Record the history of every task in ``statuses`` that leaves them meanwhile, except
        ``reported`` (the task a worker reports on: Luigi records that one itself)."""
        watched = [(t, t.status) for t in self._state.get_active_tasks_by_status(*statuses)]
        try:
            yield
        finally:
            for task, before in watched:
                recorded = _RECORDED.get(task.status)
                if task.status != before and recorded and task.id != reported:
                    self._update_task_history(task, recorded)

    def get_work(self, host=None, **kwargs):
        reply = super().get_work(host=host, **kwargs)
        for task_id in reply.get("batch_task_ids") or ():
            task = self._state.get_task(task_id)
            if task is not None:
                self._update_task_history(task, RUNNING, host=host)
        return reply

    def add_task(self, task_id=None, **kwargs):
        # A batch task's DONE or FAILED ends its members (SimpleTaskState.set_status).
        with self._watch(BATCH_RUNNING, reported=task_id):
            return super().add_task(task_id=task_id, **kwargs)

    def prune(self):  # also within get_work, with [scheduler] prune_on_get_work
        # A dead worker's tasks become FAILED here, batch members and plain tasks alike.
        with self._watch(BATCH_RUNNING, RUNNING):
            return super().prune()

    def _reset_orphaned_batch_running_tasks(self, worker_id):
        # Within get_work: the tasks of a batch its worker never claimed go back to PENDING.
        with self._watch(BATCH_RUNNING):
            super()._reset_orphaned_batch_running_tasks(worker_id)

    def _update_task_history(self, task, status, host=None):
        if status == RUNNING and host is None and task.worker_running:
            worker = self._state._active_workers.get(task.worker_running)  # never a new one
            if worker is not None:
                host = (worker.reference or {}).get("host") or worker.info.get("host")
        super()._update_task_history(task, status, host=host)


def configure_logging(log_file: Path | None) -> None:
    """luigid's log lines, in Luigi's format, to ``log_file`` (else stderr), at INFO."""
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _write_pidfile(path: Path) -> None:
    path.write_text(f"{os.getpid()}\n")
    atexit.register(lambda: path.unlink(missing_ok=True))


def parser() -> argparse.ArgumentParser:
    """luigid's command line (luigi.cmdline.luigid), without --background."""
    found = argparse.ArgumentParser(
        prog="python -m etl.worker.luigid_server", description=__doc__.split("\n")[0]
    )
    found.add_argument("--address", help="listening interface (default: all)")
    found.add_argument("--port", type=int, default=8082, help="listening port (default: 8082)")
    found.add_argument("--unix-socket", help="listen on this Unix socket instead")
    found.add_argument("--state-path", help="pickled state file ([scheduler] state_path)")
    logs = found.add_mutually_exclusive_group()
    logs.add_argument("--logdir", type=Path, help="log to luigi-server.log in this directory")
    logs.add_argument("--log-file", type=Path, help="log to this file")
    found.add_argument("--pidfile", type=Path, help="write the process id here while it runs")
    return found


def main(argv: list[str] | None = None) -> None:
    """Run luigid with ``BatchHistoryScheduler`` until SIGTERM or SIGINT."""
    opts = parser().parse_args(argv)
    if opts.state_path:
        luigi.configuration.get_config().set("scheduler", "state_path", opts.state_path)
    configure_logging(opts.log_file or (opts.logdir / "luigi-server.log" if opts.logdir else None))
    if opts.pidfile:
        _write_pidfile(opts.pidfile)
    luigi.server.run(
        api_port=opts.port,
        address=opts.address,
        unix_socket=opts.unix_socket,
        scheduler=BatchHistoryScheduler(),
    )


if __name__ == "__main__":
    main()
