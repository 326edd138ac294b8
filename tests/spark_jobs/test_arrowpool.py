"""Arrow's allocator in the pipeline's processes (spark_jobs/arrowpool.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="jemalloc is chosen on Linux only"
)

#: Imports the pipeline, allocates, and starts a process of its own that allocates too.
PROGRAM = """
import subprocess, sys
import etl
import pyarrow as pa
pa.array(["x"] * 1000)
child = "import pyarrow as pa; pa.array([1, 2]); print(pa.default_memory_pool().backend_name)"
print(pa.default_memory_pool().backend_name)
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout.strip())
"""


def run(program: str, **env: str) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", program], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return done.stdout.split()


def test_the_pipeline_and_the_processes_it_starts_allocate_with_jemalloc():
    assert run(PROGRAM) == ["jemalloc", "jemalloc"]


def test_an_allocator_the_user_names_is_kept():
    assert run(PROGRAM, ARROW_DEFAULT_MEMORY_POOL="system") == ["system", "system"]


def test_a_process_that_imported_pyarrow_first_is_switched():
    program = (
        "import pyarrow as pa; pa.array([1])\n"  # pyarrow's own default pool is chosen here
        "from spark_jobs import arrowpool; arrowpool.use_jemalloc()\n"
        "print(pa.default_memory_pool().backend_name, pa.array(['x']).to_pylist()[0])"
    )
    assert run(program) == ["jemalloc", "x"]


def test_a_pyarrow_without_jemalloc_keeps_its_own_pool(monkeypatch):
    import pyarrow as pa

    from spark_jobs import arrowpool

    def missing():
        raise NotImplementedError("this pyarrow was built without jemalloc")

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    monkeypatch.setattr(pa, "jemalloc_memory_pool", missing)
    before = pa.default_memory_pool().backend_name
    arrowpool.use_jemalloc()
    assert "ARROW_DEFAULT_MEMORY_POOL" not in os.environ  # its children are not told otherwise
    assert pa.default_memory_pool().backend_name == before
