"""producto's documented examples answer as documented, against the real run's database.

The examples are read from docs/reference/database-and-api.md (its `<!-- producto:... -->` part).

The same lines run after `make demo` in ``test_local_product.py``; here RUN_DATE is the real
run's date, as ``set -a; . .run/demo.env; set +a`` gives it after a demo on that file.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.support import REPO

pytestmark = pytest.mark.integration


def readme_examples() -> list[tuple[str, int]]:
    """(curl command, expected status) of every example in the documented producto section."""
    text = (REPO / "docs/reference/database-and-api.md").read_text()
    section = text.split("<!-- producto:begin -->")[1].split("<!-- producto:end -->")[0]
    out = []
    for line in section.splitlines():
        if line.strip().startswith("curl -s "):
            command, _, comment = line.strip().partition("#")
            status = re.fullmatch(r"\s*(\d{3})\s*", comment)
            out.append((command.strip(), int(status.group(1)) if status else 200))
    return out


def test_readme_curl_examples_answer_as_documented(real_server, real_run):
    examples = readme_examples()
    assert len(examples) >= 10
    assert sum("$RUN_DATE" in c for c, _ in examples) >= 7
    env = dict(os.environ, RUN_DATE=real_run.run_date.isoformat())
    for command, status in examples:
        script = command.replace("curl -s ", "curl -s -o /dev/null -w '%{http_code}' ", 1)
        script = script.replace("http://127.0.0.1:8000", real_server.url)
        ran = subprocess.run(
            ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert ran.stdout == str(status), (command, ran.stdout, ran.stderr)
