"""Arrow's memory allocator in the pipeline's processes: jemalloc, on Linux.

pyarrow allocates through mimalloc by default. Here (Linux, 2 cores) mimalloc made large
first-time allocations slow: the Spark job's driver took about 6 s to sort and write the
700,000 rejects of 10M generated rows, 1.5 s with jemalloc; ``ReadUFOs`` read those 10M rows in
4.6-5.2 s and 270-290 MB, 4.2 s and 230 MB with jemalloc. Both allocators ship in pyarrow's
Linux wheels.

``use_jemalloc()`` chooses it for this process and the ones it starts (Spark's driver, its
Python workers), through ``ARROW_DEFAULT_MEMORY_POOL``, which Arrow reads when it first
allocates; if pyarrow is already imported, it also switches the process's pool now. An
allocator the user names in that variable is kept.
"""

from __future__ import annotations

import os
import sys

VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_jemalloc() -> None:
    if not sys.platform.startswith("linux"):  # other platforms' wheels may lack it
        return
    if (os.environ.get(VARIABLE) or "jemalloc") != "jemalloc":
        return
    os.environ[VARIABLE] = "jemalloc"
    if "pyarrow" in sys.modules:
        import pyarrow as pa

        pa.set_memory_pool(pa.jemalloc_memory_pool())
