"""The Luigi worker service: run requests dropped in the lake, and the daily schedule.

    python -m etl.worker [--once] [--poll 15] [--timeout 7200] [--lease 120]
                         [--local-scheduler | --scheduler-host HOST --scheduler-port PORT]

Run requests: a YAML file under ``{UFO_STORAGE}/requests/``::

    task: TopStatesToDatabase        # one of the pipeline's tasks
    params: {date: 2019-03-29, force: true}
    env: {UFO_SOURCE: s3://incoming/nuforc_index.csv}   # optional; only UFO_SOURCE

is claimed by exactly one worker (an exclusive create of ``requests/.claims/NAME``: a local
O_EXCL create, or an S3 PUT with ``If-None-Match: *``), run as ``python -m luigi --module etl
TASK --param value ...`` against the scheduler, then renamed to ``NAME.done.yaml`` or
``NAME.error.yaml`` with the run's log beside it as ``NAME.log``. A request is run once: a
failed one is not retried, and its run is not kept alive for luigid's retries, so it ends at
once with its reason (a task luigid disabled is named; a forced request re-enables it first,
``etl.worker.luigid``). A request is read only when whole: hidden files are left alone, a file
changed in the last second waits, and one without ``task`` or ``params`` waits (an error after
5 minutes). SIGTERM or SIGINT stops the current run with its processes and leaves its request
to run again, then the worker exits. Nothing in a request is executed: the task name and parameter names are checked against the pipeline's, values are
parsed by Luigi's parameter types, and the command is an argument list (no shell).

What is refused, with an ``.error.yaml`` saying why: a malformed request (YAML aliases and
more than 4,000 run dates included); one that is a symlink or not a regular file, is over
64 KiB (the result records its size, never its content) or is not UTF-8. Any other failure while handling a request also ends as its ``.error.yaml``, and is
logged; the service goes on with the next request. Credentials never reach the logs or the
results: the request text, the run's output and error messages go through ``etl.redact``.

Claims are leases. A claim records its worker's id, a heartbeat time and the lease; the worker
rewrites it every lease/3 while it handles the request. A worker that finds a claim whose
heartbeat is older than its lease (``--lease`` or ``UFO_CLAIM_LEASE``, default 120 s; a claim
without a heartbeat is aged by its file time) presumes that worker dead and takes the request
over: of several racing workers the one that creates ``.claims/NAME.takeover-*`` exclusively
replaces the claim, and logs that it took over. A request the dead worker had already finished
(its result names that worker) is cleaned up, not run again. A worker that finds its claim
taken stops its run and leaves the request to the new owner.

A run's output is logged live, line by line, prefixed with the request's name. A run may take
``--timeout`` seconds (default 2 h); then its whole process group (Luigi and any spark-submit)
is terminated, and the ``.error.yaml`` says "timed out after N s". Whatever a run leaves in its
process group when it ends is killed too. The scheduled run (below) is run the same way.

Scheduler: luigid at luigi.cfg's ``[core] scheduler_host/scheduler_port``, or the one that
``--scheduler-host/--scheduler-port`` name; ``--local-scheduler`` (or UFO_LOCAL_SCHEDULER=1)
runs without one. At start-up the worker says in one line when no luigid answers there.

Exit status of ``--once``: 0 when every request it handled succeeded, or there was none; 1 when
one failed, was refused or malformed, or the lake could not be used; 2 for a bad command line.

Schedule: with ``UFO_SCHEDULE_TIME=HH:MM`` (and ``UFO_TIMEZONE``, default UTC), the worker runs
``TopStatesToDatabase`` for yesterday once a day after that time. Every replica may try; luigid
lets one run it, and a loaded date is complete for the others. Its output is logged live as
``schedule DATE | line``, and it is bound by the same ``--timeout`` as requests: a run that
takes longer is stopped with its whole process group and ends with one ``ufo: error:`` line
saying so; the date is then left to a run request, and the schedule goes on the next day. A
scheduled run that ends leaves its result as a request does, with ``requested_by: the daily
schedule``: ``requests/schedule-DATE-WHENZ-RANDOM.done.yaml`` or ``.error.yaml``, and ``.log``
(a result, never a request: no worker runs it).

The package, by what each module does:

    requests.py   what a request is: read from the lake, checked, turned into a command line
    claims.py     claims with a lease, the heartbeat, taking over a dead worker's request
    runs.py       running the pipeline as a bound child process, its output logged live
    service.py    the requests loop: list, claim, run, record the result
    schedule.py   the daily schedule, and which Luigi scheduler runs use
    luigid.py     what the worker asks luigid: disabled tasks, re-enabling them
    luigid_server.py  luigid itself, with a task history that records each date of a batch
    __main__.py   the command line
    ops_cli.py    its twin for scripts: runs, rerun, backfill, follow
    ops.py        requests written for a person (checked first, with who and when) and followed
    rundates_view.py  each run date's state: loaded, failed, running, requested, missing
    request_states.py what the lake says of each request: waiting, running, how it ended
"""
