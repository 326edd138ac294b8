"""The ticker of long silent steps (pip's install, the class archive): time shown as it goes."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from etl.tools.ticker import ticking
from tests.support import REPO


def test_a_log_gets_a_line_every_few_seconds_while_the_block_runs():
    out = io.StringIO()  # not a terminal: whole lines, as a CI log shows them
    with ticking("Making something", out=out, every=0.2):
        time.sleep(0.7)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Making something"
    assert len(lines) >= 3 and all(line.startswith("  ... ") for line in lines[1:])


def test_the_command_line_runs_the_command_and_passes_its_exit_code_on():
    script = str(REPO / "etl" / "tools" / "ticker.py")
    ran = subprocess.run([sys.executable, script, "Waiting", "--", "true"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert ran.returncode == 0 and ran.stdout.startswith("Waiting\n") and "done in" in ran.stdout
    failed = subprocess.run([sys.executable, script, "Waiting", "--", "false"],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert failed.returncode == 1
