"""``make pyspark``: a PySpark shell over the demo's lake.

On the cluster that ``SPARK_MASTER`` (or luigi.cfg's ``[ufo] spark_master``) names
(``spark://HOST:7077``), when it is not a local master. Else on the Spark Connect server of ``make up`` when it answers (``UFO_SPARK_REMOTE``
in ``demo.env``): no JVM of its own, the server's warm engine. Otherwise local Spark on this
machine. Either way the shell starts with ``lake`` (``LakePaths``): where each dataset's
published files are, read from the run dates' manifests, so that reading an aggregate is one
line, e.g. ``spark.read.parquet(*lake.aggregated())``.

    python -m etl.tools.sparkshell    # what `make pyspark` runs, after `make demo`
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from etl.adapters import spark
from etl.adapters.lake import Lake
from etl.adapters.manifests import Manifests, partition
from etl.errors import UfoError
from etl.settings import setting
from etl.tools.localstack import read_env
from etl.tools.services import REPO, run_dir, say

#: Run by PySpark's own start-up (its shell.py runs the user's PYTHONSTARTUP last).
STARTUP = Path(__file__).with_name("pyspark_startup.py")


class LakePaths:
    """The demo's lake as Spark reads it: each dataset's files for a run date (the newest when
    none is given), as URIs for ``spark.read``."""

    def __init__(self, lake: Lake):
        self._lake = lake
        self._manifests = Manifests(lake)
        self.root = lake.uri("").rstrip("/")

    def dates(self, dataset: str = "aggregated") -> list[dt.date]:
        """The run dates with a published ``dataset``, oldest first."""
        found = []
        for name in self._lake.subdirs(dataset):
            day = name.rstrip("/").rsplit("/", 1)[-1].removeprefix("date=")
            try:
                found.append(dt.date.fromisoformat(day))
            except ValueError:
                continue
        return sorted(d for d in found if self._manifests.read(dataset, d) is not None)

    def files(self, dataset: str, date: str | dt.date | None = None, kind: str | None = None):
        """The files that ``dataset``'s manifest of ``date`` lists (of one ``kind``, default
        the dataset's own), as Spark URIs."""
        day = self._date(dataset, date)
        manifest = self._manifests.read(dataset, day) or {"files": {}}
        return [self._lake.spark_uri(rel) for rel in manifest["files"].get(kind or dataset, [])]

    def aggregated(self, date: str | dt.date | None = None) -> list[str]:
        """Sightings by state and period (Parquet)."""
        return self.files("aggregated", date)

    def rejects(self, date: str | dt.date | None = None) -> list[str]:
        """The rows that failed a rule, with the reason (CSV with a header)."""
        return self.files("aggregated", date, "rejects")

    def raw(self, date: str | dt.date | None = None) -> list[str]:
        """The source's records as read, every field a string (Parquet)."""
        return self.files("raw", date, "records")

    def top10(self, date: str | dt.date | None = None) -> str:
        """The top ten states (CSV with a header)."""
        day = self._date("aggregated", date)
        return self._lake.spark_uri(f"{partition('top10', day)}/top_states.csv")

    def _date(self, dataset: str, date: str | dt.date | None) -> dt.date:
        if date is not None:
            return date if isinstance(date, dt.date) else dt.date.fromisoformat(date)
        published = self.dates(dataset)
        if not published:
            raise UfoError(f"nothing is published in {self.root}: run `make demo` first")
        return published[-1]

    def __repr__(self) -> str:
        return f"<lake {self.root}: run dates {', '.join(map(str, self.dates())) or 'none'}>"


def greeting(lake: LakePaths) -> str:
    """What the shell prints under PySpark's banner: the lake and how to read it."""
    return "\n".join(
        [
            f"lake: {lake!r}",
            "  spark.read.parquet(*lake.aggregated())          # sightings by state and period",
            "  spark.read.csv(lake.top10(), header=True)       # the top ten states",
            "  spark.read.parquet(*lake.raw())                 # the source's records, as read",
            "  spark.read.csv(lake.rejects(), header=True)     # rejected rows and why",
            "  lake.dates(), lake.aggregated('YYYY-MM-DD')     # another run date",
        ]
    )


def main() -> int:
    try:
        values = read_env(run_dir() / "demo.env")
    except UfoError as err:
        print(f"pyspark: error: {err}", file=sys.stderr)
        return 1
    env = dict(os.environ, **values, SPARK_LOCAL_IP="127.0.0.1", PYTHONSTARTUP=str(STARTUP))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    pyspark = str(Path(sys.executable).parent / "pyspark")
    remote = values.get("UFO_SPARK_REMOTE", "")
    master = setting("spark_master")  # SPARK_MASTER, or luigi.cfg's [ufo] spark_master
    if not master.startswith("local"):
        # A cluster the user names: its executors reach this driver at this host's address
        # (SPARK_LOCAL_IP when the user gives one), and run their Python with their own.
        say(f"PySpark on the cluster {master} (SPARK_MASTER)")
        for name in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_LOCAL_IP"):
            env.pop(name, None)
        if os.environ.get("SPARK_LOCAL_IP"):
            env["SPARK_LOCAL_IP"] = os.environ["SPARK_LOCAL_IP"]
        argv = [pyspark, "--master", master]
    elif remote and spark.connect_answers(remote, timeout=1):
        say(f"PySpark on the Spark Connect server {remote} (`make up`'s)")
        argv = [pyspark, "--remote", remote]
    else:
        where = f"no Spark Connect server answers at {remote}" if remote else "no UFO_SPARK_REMOTE"
        say(f"PySpark on local Spark ({where}; `make up` starts one)")
        for name in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED"):
            env.pop(name, None)
        env["PYSPARK_PYTHON"] = sys.executable  # local mode: this virtualenv's Python workers
        argv = [pyspark, "--master", "local[*]"]
    os.execve(pyspark, argv, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
