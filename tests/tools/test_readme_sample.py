"""The documented sample-generator commands, run verbatim, and the next step they print.

The commands are read from the block of docs/how-to/sample-data.md, so the test follows the page.
They run in a fresh directory (``.venv``, ``Makefile`` and what ``make demo`` needs linked to the
repository's), as a user runs them from a checkout.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import subprocess
from pathlib import Path

import pytest

from etl.tools.localpg import LocalPostgres
from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def readme_sample_commands() -> list[str]:
    section = (REPO / "docs/how-to/sample-data.md").read_text()
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def records(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def test_the_readme_sample_commands_write_what_they_say(tmp_path):
    commands = readme_sample_commands()
    generators = [c for c in commands if " -m etl.tools.sample " in c]
    assert len(generators) == 4 and commands[-1].endswith("make demo")
    for name in (".venv", "Makefile", "requirements.txt", "producto"):  # what make demo needs
        (tmp_path / name).symlink_to(REPO / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UFO_")}
    env["PYTHONPATH"] = str(REPO)

    def sh(command: str) -> subprocess.CompletedProcess:
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=900)  # fmt: skip
        assert result.returncode == 0, (command, result.stderr[-3000:])
        return result

    printed = [sh(c).stderr for c in generators]
    sample = records(tmp_path / ".run/sample/nuforc_sample_index_2019-03-29.csv")
    export = records(tmp_path / ".run/sample/export.csv")
    cp1252 = records(tmp_path / ".run/sample/index.csv.gz", "cp1252")
    kaggle = records(tmp_path / ".run/sample/scrubbed.csv")
    index_header = ["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted"]
    assert sample[0] == index_header and cp1252[0] == index_header
    assert export[0] == ["details", "date", "city", "state", "country", "shape", "summary",
                         "report_date", "posted_date", "image"]  # fmt: skip
    assert kaggle[0] == ["datetime", "city", "state", "country", "shape", "duration (seconds)",
                         "duration (hours/min)", "comments", "date posted", "latitude",
                         "longitude "]  # fmt: skip
    # --rows counts the data records written (repeated headers and duplicates included).
    assert [len(sample) - 1, len(export) - 1, len(cp1252) - 1, len(kaggle) - 1] == [
        100000, 20000, 20000, 20000
    ]  # fmt: skip
    with pytest.raises(UnicodeDecodeError):
        gzip.decompress((tmp_path / ".run/sample/index.csv.gz").read_bytes()).decode("utf-8")

    # The next step each one prints; the page's is the export file's, and it works as written.
    nexts = [re.search(r"^next: (.*)$", p, re.M).group(1) for p in printed]
    assert nexts[1] == commands[-1]
    assert nexts[0] == "UFO_SOURCE=.run/sample/nuforc_sample_index_2019-03-29.csv make demo"
    try:
        demo = sh(commands[-1]).stdout
        assert "real data from UFO_SOURCE=.run/sample/export.csv" in demo
        assert re.search(r"^\s*1\. [A-Z]{2}\s+[\d,]+$", demo, re.M), demo[-2000:]
        manifests = list((tmp_path / ".run/lake/aggregated").glob("date=*/_MANIFEST.json"))
        assert manifests and '"layout": "export"' in manifests[0].read_text()
    finally:
        LocalPostgres(tmp_path / ".run" / "postgres").discard()
