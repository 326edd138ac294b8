"""The Spark step's output as the task reads it while the job runs: every line kept, the live UI
and progress lines seen as they come, and the task going on as soon as the job ends.

The job is a small Python program standing in for spark-submit (a real process writing real
lines to a real pipe); what is under test is the reading, not Spark.
"""

from __future__ import annotations

import sys
import textwrap
import time

import luigi

from etl.pipeline.spark_submit import ProjectSparkSubmitTask


class Job(ProjectSparkSubmitTask):
    """Runs ``script`` in this Python instead of spark-submit."""

    script = luigi.Parameter()

    def program_args(self) -> list[str]:
        return [sys.executable, "-c", textwrap.dedent(self.script)]

    @property
    def label(self) -> str:
        return "Job"


SAYS = """
    import sys, time
    print("starting", file=sys.stderr, flush=True)
    print("session: 1234 http://127.0.0.1:4040", file=sys.stderr, flush=True)
    time.sleep(0.3)
    print("progress: Job: classify: stage 1, 1 of 2 tasks (1 s)", file=sys.stderr, flush=True)
    print('{"done": true}')
"""


def test_every_line_is_kept_the_ui_is_seen_and_the_task_goes_on_when_the_job_ends():
    job = Job(script=SAYS)
    links = []
    job.set_tracking_url = links.append
    job._spark_output = []
    started = time.monotonic()
    job.run()
    took = time.monotonic() - started
    stdout, stderr = job._spark_output
    assert stdout.strip() == '{"done": true}'
    assert stderr.splitlines() == [
        "starting",
        "session: 1234 http://127.0.0.1:4040",
        "progress: Job: classify: stage 1, 1 of 2 tasks (1 s)",
    ]
    page = "http://127.0.0.1:4040/connect/session/?id=1234"
    assert links == [page, page]  # the session's page, kept by the progress line
    # Luigi's own reader made every step wait a second more after its job ended.
    assert took < 0.3 + 0.6, f"the task waited {took:.2f} s for a job of 0.3 s"


def test_a_process_the_job_left_holding_its_output_delays_the_task_only_by_the_grace():
    leaves = """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        print("session: 5678 http://127.0.0.1:4041", file=sys.stderr, flush=True)
    """
    job = Job(script=leaves)
    job.OUTPUT_GRACE_SECONDS = 0.5
    job.set_tracking_url = lambda url: None
    job._spark_output = []
    started = time.monotonic()
    job.run()
    assert time.monotonic() - started < 3
    assert "session: 5678" in job._spark_output[1]
