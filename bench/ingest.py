"""Benchmark: ReadUFOs on a large generated source, on this machine and on the cluster.

    make bench-ingest                        # a 10 GB source
    .venv/bin/python bench/ingest.py --gb 2 --dir /tmp/ufo-ingest

Generates a realistic report index (``etl.tools.sample``, 1M records, repeated to the size
asked for), then runs ``ReadUFOs`` on it as a user does (``python -m luigi``, local Spark on every
core), once with ``UFO_INGEST=local`` (today's reader: pyarrow on one machine) and once with
``UFO_INGEST=cluster`` (the pieces parsed by Spark's executors). For each: the time, the
throughput, and the peak resident memory of each process (sampled from /proc every 0.2 s): the
Luigi process, Spark's JVM and its Python workers. The two runs read the same file into lakes of
their own; each lake is removed after its run (a 10 GB source needs about 25 GB free).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN_DATE = dt.date(2019, 3, 29)
BASE_ROWS = 1_000_000


def generate(path: Path, size: int) -> int:
    """A report index of at least ``size`` bytes at ``path``: its records."""
    base = path.with_suffix(".base.csv")
    subprocess.run(
        [sys.executable, "-m", "etl.tools.sample", "--rows", str(BASE_ROWS), "--out", str(base),
         "--until", RUN_DATE.isoformat()],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    data = base.read_bytes()
    header, _, body = data.partition(b"\n")
    copies = max(1, -(-(size - len(header)) // len(body)))
    with open(path, "wb") as out:
        out.write(header + b"\n")
        for _ in range(copies):
            out.write(body)
    base.unlink()
    return copies * BASE_ROWS


def _role(cmdline: str) -> str | None:
    if "java" in cmdline.split(" ", 1)[0]:
        return "Spark JVM"
    if "pyspark.daemon" in cmdline or "pyspark/worker" in cmdline or "pyspark.worker" in cmdline:
        return "Spark Python worker"
    if "luigi" in cmdline:
        return "Luigi (ReadUFOs)"
    return None


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _rss(pid: int) -> tuple[str, int] | None:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    role = _role(cmdline)
    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0)
    return (role, kb * 1024) if role else None


def run(source: Path, lake: Path, ingest: str) -> dict:
    env = dict(os.environ, UFO_STORAGE=str(lake), UFO_SOURCE=str(source), UFO_INGEST=ingest,
               SPARK_MASTER="local[*]", SPARK_LOCAL_IP="127.0.0.1")  # fmt: skip
    env.pop("UFO_DATABASE_URL", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = [sys.executable, "-m", "luigi", "--module", "etl", "ReadUFOs", "--date",
               RUN_DATE.isoformat(), "--local-scheduler", "--no-lock"]  # fmt: skip
    peaks: dict[str, int] = defaultdict(int)
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            for pid in _tree(process.pid):
                found = _rss(pid)
                if found:
                    peaks[found[0]] = max(peaks[found[0]], found[1])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = process.communicate()[0]
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"ReadUFOs ({ingest}) failed:\n{output[-4000:]}")
    manifest = json.loads((lake / f"raw/date={RUN_DATE}/_MANIFEST.json").read_text())
    return {
        "ingest": ingest,
        "seconds": round(seconds, 1),
        "mb_per_second": round(source.stat().st_size / seconds / 1e6, 1),
        "records": manifest["records"],
        "pieces": manifest["pieces"],
        "peak_rss_mb": {role: round(b / 1e6) for role, b in sorted(peaks.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=10.0, help="the source's size (default 10)")
    parser.add_argument("--dir", help="where the source and the lakes go (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="ufo-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "nuforc_index_large.csv"
    try:
        started = time.monotonic()
        records = generate(source, int(args.gb * 1e9))
        print(f"generated {source.stat().st_size / 1e9:.2f} GB, {records:,} records "
              f"in {time.monotonic() - started:.0f} s", flush=True)  # fmt: skip
        results = {"machine": os.uname().nodename, "cpus": os.cpu_count(),
                   "bytes": source.stat().st_size, "records": records, "runs": []}  # fmt: skip
        for ingest in ("local", "cluster"):
            lake = work / f"lake-{ingest}"
            os.sync()  # the source's and the last run's writes flushed: neither slows this run
            try:
                found = run(source, lake, ingest)
            finally:
                shutil.rmtree(lake, ignore_errors=True)
            assert found["records"] == records, found
            results["runs"].append(found)
            print(json.dumps(found), flush=True)
        here, cluster = results["runs"]
        results["cluster_over_local"] = round(cluster["seconds"] / here["seconds"], 2)
        print(json.dumps(results, indent=2))
        (work / "ingest.json").write_text(json.dumps(results, indent=2))
        return 0
    finally:
        source.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
