"""The README's producto examples answer as the README says, against the real run's database."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

EXAMPLE = re.compile(r"^curl -s '?http://127\.0\.0\.1:8000(\S+?)'?(?:\s+# (\d{3}))?$")


def readme_examples() -> list[tuple[str, int]]:
    text = (REPO / "README.md").read_text()
    section = text.split("<!-- producto:begin -->")[1].split("<!-- producto:end -->")[0]
    found = [EXAMPLE.match(line.strip()) for line in section.splitlines()]
    return [(m.group(1), int(m.group(2) or 200)) for m in found if m]


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_readme_curl_examples_answer_as_documented(real_server, real_run):
    examples = readme_examples()
    assert len(examples) >= 7
    assert all(real_run.run_date.isoformat() in p for p, _ in examples if "/runs/2019" in p)
    for path, status in examples:
        assert status_of(real_server.url + path) == status, path
