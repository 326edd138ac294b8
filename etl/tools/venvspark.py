"""Make the virtualenv's Spark launchers work without activating it: ``python etl/tools/venvspark.py``.

pip puts PySpark's scripts (``spark-submit``, ``pyspark``, ...) in the virtualenv's ``bin``; they
find Spark's home by running ``python3`` from PATH, so outside an activated virtualenv they run
the system's Python, which has no pyspark, and fail (``/bin/load-spark-env.sh: No such file or
directory``). This adds two lines after each script's ``#!``: Spark's home is this pyspark's, and
the driver's Python this virtualenv's, unless SPARK_HOME or PYSPARK_DRIVER_PYTHON say otherwise.
The Makefile runs it after every ``pip install`` (which puts the scripts back as they were);
running it again changes nothing. Standard library only, run with the virtualenv's Python.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

MARK = "# Added by etl/tools/venvspark.py"


def header(home: Path, python: Path) -> str:
    """The lines a launcher gets after its ``#!``."""
    return (
        f"{MARK}: this virtualenv's Spark and Python, also when its bin is not on PATH.\n"
        f'export SPARK_HOME="${{SPARK_HOME:-{_quoted(home)}}}"\n'
        f'export PYSPARK_DRIVER_PYTHON="${{PYSPARK_DRIVER_PYTHON:-{_quoted(python)}}}"\n'
    )


def _quoted(path: Path) -> str:
    """``path`` for the inside of a double-quoted ``${VAR:-...}`` in bash."""
    return "".join("\\" + c if c in '"$`\\' else c for c in str(path))


def launchers(bin_dir: Path) -> list[Path]:
    """PySpark's bash scripts in ``bin_dir`` that look for Spark's home."""
    found = []
    for path in sorted(bin_dir.iterdir()):
        if path.suffix == ".cmd" or not path.is_file():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if text.startswith("#!/usr/bin/env bash") and "find-spark-home" in text:
            found.append(path)
    return found


def patch(path: Path, lines: str) -> bool:
    """Put ``lines`` after the script's first line unless they are there; True when changed."""
    text = path.read_text()
    if MARK in text:
        return False
    first, _, rest = text.partition("\n")
    path.write_text(f"{first}\n{lines}{rest}")
    return True


def main() -> int:
    spec = find_spec("pyspark")
    if spec is None or spec.origin is None:
        print("venvspark: pyspark is not installed in this Python", file=sys.stderr)
        return 1
    home = Path(spec.origin).parent
    python = Path(sys.executable)
    bin_dir = python.parent
    changed = [p.name for p in launchers(bin_dir) if patch(p, header(home, python))]
    if changed:
        print(f"Spark's launchers in {bin_dir} work without activating it ({len(changed)} set)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
