"""The console: every run date's state on one page, each run whole, and its fixes by a click.

``python -m etl.console`` serves it (``etl.console.app.create_app``). It reads what the product
already keeps (the database's ``ufo_runs``, the lake's run requests, their results and logs,
luigid's task history) and writes one thing only: run requests in ``requests/``, in the format
the worker reads, so that the worker stays the only thing that runs the pipeline. Every action
records who asked and when. ``python -m etl.worker runs|rerun|backfill|follow`` is its twin
for scripts.
"""
