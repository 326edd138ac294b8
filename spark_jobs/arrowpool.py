"""Arrow's memory allocator in the pipeline's processes: jemalloc, on Linux.

pyarrow allocates through mimalloc by default. Here (Linux in a virtual machine, 2 cores)
mimalloc made the same work slower: the Spark job's driver took about 6 s to sort and write the
700,000 rejects of 10M generated rows, 1.5 s with jemalloc; ``ReadUFOs`` read those 10M rows in
4.6-5.2 s and 270-290 MB, 4.2 s and 230 MB with jemalloc. Both allocators ship in pyarrow's
Linux wheels.

``use_jemalloc()`` switches this process to it, and has the processes it starts (Spark's
driver, its Python workers) start with it, through ``ARROW_DEFAULT_MEMORY_POOL``. An allocator
the user names in that variable is kept, and so is pyarrow's default where pyarrow was built
without jemalloc.
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
    try:
        import pyarrow as pa

        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (ImportError, NotImplementedError):  # no pyarrow here, or one without jemalloc
        return
    os.environ[VARIABLE] = "jemalloc"
