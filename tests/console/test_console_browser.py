"""The console in real headless Chromium: its pages load with nothing refused (no script, its
own stylesheet only), and a person re-runs a date and backfills a range by its forms, with the
confirmation step, landing on the request's page. The full loop with the real worker service,
luigid and Spark is tests/producto/test_local_product.py's (make up, through the proxy).
Screenshots for a person to look at: ``test-output/console/``.
"""

from __future__ import annotations

import getpass

import pytest
import yaml

from tests.console.test_console import RANGE, console  # noqa: F401 (the module's server)
from tests.producto.test_browser import browser  # noqa: F401 (Chromium, a fresh profile)
from tests.support import REPO

pytestmark = pytest.mark.browser
OUTPUT = REPO / "test-output" / "console"


@pytest.fixture
def page(browser, console):  # noqa: F811
    opened = browser.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
    opened.on("pageerror", lambda e: problems.append(str(e)))
    opened.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    opened.on("request", lambda r: r.url.startswith(console.url) or problems.append(r.url))
    yield opened, problems
    opened.close()


def test_the_pages_load_whole_with_nothing_refused(page, console):  # noqa: F811
    opened, problems = page
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for path, shot in ((RANGE, "run-dates"), ("/dates/2019-03-28", "run-date"),
                       ("/requests/broken.yaml", "request"), ("/audit", "audit")):  # fmt: skip
        answer = opened.goto(console.url + path)
        assert answer.status == 200
        # Its stylesheet applied: the header is dark, as console.css makes it.
        colour = opened.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(29, 35, 48)"
        opened.screenshot(path=str(OUTPUT / f"{shot}.png"), full_page=True)
    assert problems == []


def test_a_person_reruns_a_date_and_backfills_a_range(page, console):  # noqa: F811
    opened, problems = page
    opened.goto(console.url + RANGE)
    opened.click("button[data-rerun='2019-03-29']")
    opened.wait_for_url("**/requests/rerun-2019-03-29-*.yaml")
    assert opened.text_content("#status") == "queued"
    assert opened.text_content("#by") == getpass.getuser()
    name = opened.url.rsplit("/", 1)[1]
    assert yaml.safe_load((console.requests / name).read_text())["params"] == {"date": "2019-03-29"}
    # A backfill: a range is confirmed on its own page first, nothing written before.
    opened.goto(console.url + RANGE)
    before = set(console.requests.glob("*.yaml"))
    opened.fill("#backfill input[name=first]", "2019-02-01")
    opened.fill("#backfill input[name=last]", "2019-02-10")
    opened.select_option("#backfill select[name=task]", "AggregateUFOsByState")
    opened.click("#backfill button[type=submit]")
    opened.wait_for_selector("#confirm")
    assert "10 dates" in opened.text_content("#summary")
    assert set(console.requests.glob("*.yaml")) == before
    opened.click("#confirm button[type=submit]")
    opened.wait_for_url("**/requests/backfill-2019-02-01-to-2019-02-10-*.yaml")
    [added] = set(console.requests.glob("*.yaml")) - before
    written = yaml.safe_load(added.read_text())
    assert written["task"] == "AggregateUFOsByState"
    assert written["params"] == {"date": "2019-02-01..2019-02-10"}
    # The run dates now show both asked for.
    opened.goto(console.url + "/?from=2019-02-01&to=2019-03-31&all_loaded=0")
    assert opened.get_attribute("tr[data-date='2019-03-29']", "data-state") == "requested"
    assert opened.get_attribute("tr[data-date='2019-02-05']", "data-state") == "requested"
    # A loaded date is re-run from its own page, anew from a chosen task on, confirmed first.
    opened.goto(console.url + RANGE)
    opened.click("a[data-rerun='2019-03-27']")
    opened.wait_for_selector("#rerun")
    opened.select_option("#rerun select[name=forcing]", "from:AggregateUFOsByState")
    opened.click("#rerun button[type=submit]")
    opened.wait_for_selector("#confirm")
    assert "anew from AggregateUFOsByState on" in opened.text_content("#summary")
    opened.click("#confirm button[type=submit]")
    opened.wait_for_url("**/requests/rerun-2019-03-27-*.yaml")
    [again] = set(console.requests.glob("*.yaml")) - before - {added}
    written = yaml.safe_load(again.read_text())
    assert written["task"] == "TopStatesToDatabase"
    assert written["params"] == {"date": "2019-03-27", "force_from": "AggregateUFOsByState"}
    for made in (console.requests / name, added, again):
        made.unlink()
    assert problems == []
