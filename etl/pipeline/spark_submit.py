"""spark-submit as the pipeline runs it: Luigi's SparkSubmitTask with the project's plumbing.

The master comes from SPARK_MASTER (or ``[ufo] spark_master``), other flags from luigi.cfg's
``[spark]``. With UFO_SPARK_REMOTE (``[ufo] spark_remote``) and its server answering, the job
runs instead as a session of that Spark Connect server: the job's Python with SPARK_REMOTE set,
no driver JVM of its own (warm). Added to Luigi's task: the driver's class archive and, for a
driver that works briefly, the quick JIT only (``etl/adapters/classarchive.py``, ``spark.py``),
spark-submit dying with the Luigi process that started it, its whole output kept under
``$UFO_LOG_DIR/spark/``, and a failure reported by the job's own ``error:`` line without
leaking the environment.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import subprocess
import sys
import threading

import luigi
from luigi.contrib.external_program import ExternalProgramRunContext, ExternalProgramRunError
from luigi.contrib.spark import SparkSubmitTask

from etl import logs
from etl.adapters import classarchive, spark
from etl.errors import DataError
from etl.redact import redact_source
from etl.settings import load_settings

logger = logging.getLogger("ufo")


#: Spark's error class when an executor that held a local checkpoint's blocks is gone (its
#: host lost mid-run): the blocks cannot be computed again, the job must start over.
LOST_CHECKPOINT = "CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND"
#: The first line naming Spark's error class (``[CLASS] message``) or an exception.
_CAUSE = re.compile(r"\[[A-Z][A-Z0-9_.]+\] \S|^\S*(Exception|Error): \S")


class SparkJobError(DataError):
    """spark-submit failed; carries the job's own error line and the tail of its output.

    ``lost_executor``: it failed because an executor's host went away with blocks the job
    cannot compute again; a new run of the job on the remaining executors can succeed."""

    lost_executor = False

    @classmethod
    def from_run_error(cls, err: ExternalProgramRunError) -> SparkJobError:
        # Never str(err): luigi's message includes the whole environment, secrets and all.
        stderr = err.err or ""
        # PySpark prints the driver's own output on stdout: the job's reason may be on either.
        lines = (err.out or "").splitlines() + stderr.splitlines()
        job_errors = [line for line in lines if line.startswith("error: ")]
        if job_errors:
            return cls(job_errors[-1].removeprefix("error: ") + " Fix the source and run again.")
        tail = "\n".join(stderr.splitlines()[-40:])
        # The cause comes first in Spark's output; its last lines are often the shutdown's.
        cause = next((line.strip() for line in lines if _CAUSE.search(line)), None)
        said = f"; the first error it reported: {cause[:500]}" if cause else ""
        found = cls(f"spark-submit failed ({err.message}){said}; last lines of its output:\n{tail}")
        found.lost_executor = any(LOST_CHECKPOINT in line for line in lines)
        return found


class ProjectSparkSubmitTask(SparkSubmitTask):
    """A SparkSubmitTask that runs the way this project runs Spark (see the module's doc)."""

    # Luigi's, kept out of luigid's display: a task is shown as ``AggregateUFOsByState(date=D)``.
    capture_output = luigi.BoolParameter(
        default=True, significant=False, positional=False,
        visibility=luigi.parameter.ParameterVisibility.PRIVATE,
    )  # fmt: skip

    @property
    def tracking_url_pattern(self) -> str:
        if self.deploy_mode == "cluster":
            return super().tracking_url_pattern
        # Luigi reads the job's stderr line by line as it comes and hands what this matches to
        # build_tracking_url: Spark 4's "Start Jetty HOST:PORT for SparkUI" (Luigi looks for
        # Spark 2's wording), the job's progress lines and, on a Spark Connect server, its session.
        return r"(Start Jetty \S+:\d+ for SparkUI|^progress: .*|^session: .*)"

    @property
    def master(self) -> str:
        return load_settings().spark_master

    #: The Spark Connect server this submission runs against, decided when it starts.
    _remote: str | None = None

    @property
    def remote(self) -> str | None:
        """The Spark Connect server to run against; None: a new Spark application."""
        return self._remote

    def _choose_remote(self) -> str | None:
        """UFO_SPARK_REMOTE when its server answers. One that does not (stopped, or a compose
        profile that is off) costs a warning and a cold start, never the run."""
        remote = load_settings().spark_remote
        problem = spark.connect_problem(remote) if remote else None
        if problem:
            logger.warning(
                "%s: the Spark Connect server %s does not answer (%s); running as a new Spark "
                "application instead (slower; start the server, or unset UFO_SPARK_REMOTE)",
                self.label, redact_source(remote), problem,
            )  # fmt: skip
            return None
        return remote

    #: More ``--conf`` settings for this submission (lineage's parent run).
    extra_conf: dict[str, str] = {}

    @property
    def conf(self) -> dict | None:
        """The UI's port (UFO_SPARK_UI_PORT), luigi.cfg's ``[spark] conf``, the event log's
        (UFO_SPARK_EVENTS) and ``extra_conf``."""
        if self.remote:  # the server's own settings and event log apply
            return super().conf
        settings = load_settings()
        events = settings.spark_events
        merged = {
            "spark.ui.port": str(settings.spark_ui_port),  # luigi.cfg's [spark] conf may say
            **(super().conf or {}),
            **(spark.event_log_conf(events) if events else {}),
            **self.extra_conf,
        }
        return merged or None

    @property
    def spark_submit(self) -> str:
        configured = luigi.configuration.get_config().get("spark", "spark-submit", None)
        return configured or spark.default_spark_submit()

    def runs_briefly(self) -> bool:
        """Whether this submission's driver works through few rows itself: its JIT then stops
        at the quick compiler. Tasks that know their input's size say so; a driver of another
        master (one with executors of its own) always works briefly."""
        return False

    @property
    def driver_java_options(self) -> str | None:
        """The quick JIT for a driver that works briefly, luigi.cfg's options (after it, so they
        win), and the class archive when there is one (the driver runs here unless the deploy
        mode is cluster)."""
        if self.deploy_mode == "cluster":
            return super().driver_java_options
        quick = not self.master.startswith("local") or self.runs_briefly()
        options = [spark.QUICK_JIT if quick else "", super().driver_java_options or ""]
        options += classarchive.driver_java_options(self.spark_submit)
        return " ".join(o for o in options if o) or None

    #: The live UI found in the job's output.
    _live_ui: str | None = None

    #: How long the job's output is read after the job ended (a process it started and left
    #: running may hold its stderr open).
    OUTPUT_GRACE_SECONDS = 5.0

    @contextlib.contextmanager
    def _proc_with_tracking_url_context(self, proc_args, proc_kwargs):
        """Luigi's, with the job's output read by a thread that ends with it. Luigi reads it in
        a forked process that never sees the output end, then waits a second for it and
        terminates it: 1.2 s of every Spark step (of a warm chain's 8.8 s, measured). The lines
        still go to the file Luigi keeps them in, and ``build_tracking_url`` sees them in this
        process, so the live UI is known to the local scheduler too."""
        keep = proc_kwargs.get(self.stream_for_searching_tracking_url)
        proc_kwargs[self.stream_for_searching_tracking_url] = subprocess.PIPE
        proc = subprocess.Popen(proc_args, **proc_kwargs)
        stream = proc.stderr if self.stream_for_searching_tracking_url == "stderr" else proc.stdout
        pattern = re.compile(self.tracking_url_pattern)

        def read() -> None:
            with contextlib.suppress(ValueError):  # the file is closed: the task went on
                for line in iter(stream.readline, b""):
                    if keep is not None:
                        keep.write(line)
                    found = pattern.search(line.decode("utf-8", "replace"))
                    if found and callable(self.set_tracking_url):
                        self.set_tracking_url(self.build_tracking_url(found.group(1)))
                if keep is not None:
                    keep.flush()

        reader = threading.Thread(target=read, name=f"{self.label}: output", daemon=True)
        reader.start()
        try:
            with ExternalProgramRunContext(proc):
                yield proc
        finally:
            reader.join(self.OUTPUT_GRACE_SECONDS if proc.poll() is not None else 0)
            if not reader.is_alive():
                stream.close()

    def build_tracking_url(self, logs_output: str) -> str | None:
        """What luigid links to while the job runs, from a line of its output: the Spark UI's
        address (said on the console too), unchanged by a progress line (logged)."""
        line = logs_output.strip()
        if line.startswith("progress: "):
            logger.info("%s", line)
            return self._live_ui
        if line.startswith("session: "):  # a Spark Connect session: its page on the live UI
            session, _, ui = line.removeprefix("session: ").partition(" ")
            if ui:
                self._live_ui = spark.session_page(ui, session)
                logger.info("%s: Spark Connect session %s, its jobs at %s while it runs",
                            self.label, session, self._live_ui)  # fmt: skip
            return self._live_ui
        address = spark.ui_address(line) or line
        self._live_ui = address
        logger.info("%s: Spark UI at %s while it runs", self.label, address)
        return address

    @property
    def label(self) -> str:
        """The task in log lines (the application's name unless a task says otherwise)."""
        return self.name

    def program_args(self) -> list[str]:
        if self.remote:
            # A Spark Connect application is a plain Python program with SPARK_REMOTE set
            # (PySpark's own way to run one): spark-submit --remote would only start a JVM to
            # launch this same Python (about 3 s more a run, measured).
            args = [sys.executable, *self.app_command()]
        else:
            args = super().program_args()
        setpriv = shutil.which("setpriv")
        if setpriv and sys.platform == "linux":
            # If this Luigi process dies (kill -9 included), the job (spark-submit, or the job's
            # Python on a Spark Connect server) dies with it instead of writing on into an
            # attempt nobody will publish.
            return [setpriv, "--pdeathsig", "KILL", "--", *args]
        return args

    def program_environment(self) -> dict[str, str]:
        env = super().program_environment()
        remote = self.remote
        if remote:
            env["SPARK_REMOTE"] = remote  # PySpark's session builder connects there
            return env
        for name in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED"):  # a new application
            env.pop(name, None)
        if self.deploy_mode != "cluster":  # the driver runs here: from the archive's Spark home
            env.update(classarchive.driver_environment(self.spark_submit))
        if self.master.startswith("local"):
            # Local mode: the Python workers are this interpreter, with its packages; the
            # driver and its UI listen on this machine only (Spark binds to every interface).
            env.setdefault("PYSPARK_PYTHON", sys.executable)
            env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        return env

    def _clean_output_file(self, file_object) -> str:
        # Luigi reads spark-submit's captured stdout, then stderr, through here: keep both.
        text = super()._clean_output_file(file_object)
        self._spark_output.append(text)
        return text

    def submit(self) -> None:
        """Run spark-submit; SparkJobError saying why when it fails. Its output is kept."""
        self._spark_output: list[str] = []
        self._remote = self._choose_remote()
        failed = True
        try:
            SparkSubmitTask.run(self)
            failed = False
        except ExternalProgramRunError as err:
            gone = spark.connect_problem(self._remote) if self._remote else None
            if gone:
                # The job's own error is then PySpark's last retry, which does not say so.
                raise SparkJobError(
                    f"the Spark Connect server {redact_source(self._remote)} "
                    f"(UFO_SPARK_REMOTE) went away during the run and no longer answers "
                    f"({gone}); nothing was published. Start it again, or unset "
                    "UFO_SPARK_REMOTE to run cold, and run again."
                ) from None
            raise SparkJobError.from_run_error(err) from None
        finally:
            self._keep_output(failed)

    def _keep_output(self, failed: bool) -> None:
        path = logs.spark_log_path(self.task_id)
        if path is not None and self._spark_output:
            names = ("stdout", "stderr")
            path.write_text(
                "".join(f"==== {n} ====\n{t}\n" for n, t in zip(names, self._spark_output))
            )
            # Said on the console only when the job failed: then it is where to look.
            logger.info("spark-submit output of %s kept in %s", self.label, path,
                        extra={"console": failed})  # fmt: skip
