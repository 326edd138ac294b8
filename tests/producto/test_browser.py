"""The page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Screenshots for a person to look at are written to ``test-output/producto/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.reference import STATES
from tests.support import REPO

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = REPO / "test-output" / "producto"
# No calls home: the machine's network is closed, and the page must not need it.
QUIET_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A Chromium with a fresh profile (Playwright's persistent context owns --user-data-dir)."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip)")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=QUIET_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


class Watched:
    """A page whose console errors, page errors and off-origin requests are recorded."""

    def __init__(self, context, origin: str):
        self.page = context.new_page()
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"),
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on(
            "request",
            lambda r: r.url.startswith((origin, "data:"))
            or self.problems.append(f"request off this app: {r.url}"),
        )

    def open(self, url: str):
        response = self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='true']", timeout=15_000)
        return response

    def bars(self) -> list[tuple[str, int]]:
        return [
            (g.get_attribute("data-state"), int(g.get_attribute("data-sightings")))
            for g in self.page.query_selector_all("#chart g.bar")
        ]


@pytest.fixture
def watched(browser, real_server):
    w = Watched(browser, real_server.url)
    yield w
    w.page.close()


def screenshot(page, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_page_shows_the_right_top_ten_and_a_shape_for_every_state(
    watched, real_server, real_run, real_expected
):
    response = watched.open(real_server.url + "/")
    assert response.status == 200
    page = watched.page
    assert watched.bars() == real_expected.top_ten()
    # The numbers are on the page, not only in bar lengths.
    top_state, top_n = real_expected.top_ten()[0]
    assert f"{top_n:,}" in page.inner_text("#chart")
    shapes = [p.get_attribute("data-state") for p in page.query_selector_all("#map path")]
    assert sorted(shapes) == sorted(STATES)
    assert float(page.get_attribute(f"#map path[data-state='{top_state}']", "data-value")) == top_n
    assert real_run.run_date.isoformat() in page.inner_text("#run")
    quality = real_expected.quality()
    assert f"{100 * quality['rejected'] / quality['input']:.1f}%" in page.inner_text("#quality")
    assert screenshot(page, "page-desktop.png").stat().st_size > 10_000
    assert watched.problems == []


def test_month_picker_changes_chart_and_map(watched, real_server, real_expected):
    months = real_expected.months()
    busiest = max(months, key=lambda m: sum(real_expected.totals(m).values()))
    watched.open(real_server.url + "/")
    page = watched.page
    page.select_option("#period", busiest)
    page.wait_for_selector(f"#chart[data-period='{busiest}']")
    page.wait_for_selector(f"#map[data-period='{busiest}']")
    assert watched.bars() == real_expected.top_ten(busiest)
    assert busiest in page.inner_text("#chart-title")
    totals = real_expected.totals(busiest)
    for code in ("CA", "WY", "DC"):
        value = float(page.get_attribute(f"#map path[data-state='{code}']", "data-value"))
        assert value == totals.get(code, 0), code
    # The address now names the month, so it can be shared or reloaded.
    assert f"period={busiest}" in page.url
    # One step older is the month before in the list.
    page.click("#older")
    previous = months[months.index(busiest) - 1]
    page.wait_for_selector(f"#chart[data-period='{previous}']")
    assert watched.bars() == real_expected.top_ten(previous)
    screenshot(page, "page-month.png")
    assert watched.problems == []


def test_per_capita_toggle_reshades_the_map(watched, real_server):
    watched.open(real_server.url + "/")
    page = watched.page
    before = page.get_attribute("#map path[data-state='CA']", "data-value")
    page.check("#per-capita")
    page.wait_for_selector("#map[data-per-capita='true']")
    after = page.get_attribute("#map path[data-state='CA']", "data-value")
    assert float(after) < float(before)  # per 100,000 of ~39.5 million people
    assert watched.problems == []


def test_page_fits_a_phone(browser, real_server):
    w = Watched(browser, real_server.url)
    w.page.set_viewport_size({"width": 375, "height": 812})
    w.open(real_server.url + "/")
    scroll_width = w.page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 375
    assert len(w.bars()) == 10
    screenshot(w.page, "page-phone.png")
    assert w.problems == []
    w.page.close()


def test_empty_database_page_in_the_browser(browser, empty_server):
    w = Watched(browser, empty_server.url)
    response = w.page.goto(empty_server.url + "/")
    assert response.status == 200
    assert "No run has finished yet" in w.page.inner_text("#no-run")
    screenshot(w.page, "page-empty.png")
    assert w.problems == []
    w.page.close()


def legend(page) -> list[tuple[str, float | None]]:
    return [
        (
            s.inner_text(),
            float(s.get_attribute("data-upper")) if s.get_attribute("data-upper") else None,
        )
        for s in page.query_selector_all("#legend span")
    ]


def check_legend_and_shades(page, values: dict[str, float]) -> list[str]:
    """The legend's steps are distinct and rising, and each state's shade is its value's step."""
    steps = legend(page)
    assert steps[0] == ("none", None)
    uppers = [u for _, u in steps[1:]]
    assert uppers == sorted(set(uppers)), steps
    assert all(u > 0 for u in uppers), steps
    assert uppers[-1] >= max(values.values())
    for code, value in values.items():
        step = int(page.get_attribute(f"#map path[data-state='{code}']", "data-step"))
        if value == 0:
            assert step == -1, code
        else:
            assert uppers[step] >= value - 1e-9, (code, value, uppers)
            assert step == 0 or uppers[step - 1] < value, (code, value, uppers)
    labels = [text for text, _ in steps[1:]]
    assert len(set(labels)) == len(labels), labels
    return labels


def test_per_capita_legend_of_a_quiet_month_has_distinct_readable_steps(
    watched, real_server, real_expected
):
    from tests.producto.population import per_100k

    months = real_expected.months()
    # A month with few sightings: per-capita figures far below 1.
    quiet = next(m for m in reversed(months) if 5 <= sum(real_expected.totals(m).values()) <= 40)
    watched.open(f"{real_server.url}/?period={quiet}&per_capita=1")
    page = watched.page
    assert page.is_checked("#per-capita")
    page.wait_for_selector("#map[data-per-capita='true']")
    labels = check_legend_and_shades(page, per_100k(real_expected.totals(quiet)))
    assert all(not re.fullmatch(r"≤ 0(\.0+)?", label) for label in labels), labels
    # Counts of the same month: no "≤ 0" step beside "none".
    page.uncheck("#per-capita")
    page.wait_for_selector("#map[data-per-capita='false']")
    assert "per_capita" not in page.url
    totals = real_expected.totals(quiet)
    counts = check_legend_and_shades(page, {c: float(totals.get(c, 0)) for c in STATES})
    assert "≤ 0" not in counts
    page.check("#per-capita")
    assert "per_capita=1" in page.url
    screenshot(page, "page-per-capita-quiet-month.png")
    assert watched.problems == []


def test_sightings_by_month_for_the_country_and_a_chosen_state(watched, real_server, real_expected):
    watched.open(real_server.url + "/")
    page = watched.page
    country = page.wait_for_selector("#trend-chart polyline.country")
    assert int(country.get_attribute("data-total")) == sum(real_expected.totals(None).values())
    page.select_option("#trend-state", "WA")
    line = page.wait_for_selector("#trend-chart polyline.state[data-series='WA']")
    assert int(line.get_attribute("data-total")) == real_expected.totals(None)["WA"]
    assert "state=WA" in page.url
    screenshot(page, "page-trend-wa.png")
    assert watched.problems == []


@pytest.fixture
def watched_mixed(browser, mixed_server):
    w = Watched(browser, mixed_server.url)
    yield w
    w.page.close()


def test_sample_and_real_runs_are_labelled_and_rejects_shown(watched_mixed, mixed_server):
    from tests.producto.support import MIXED_REAL, MIXED_SAMPLE

    watched_mixed.open(mixed_server.url + "/")
    page = watched_mixed.page
    assert page.inner_text("#shown-run-date") == MIXED_REAL.isoformat()
    assert page.inner_text("#source-kind") == "real data"
    assert "s3cr3t" not in page.content()
    assert len(page.query_selector_all("#reject-rows tbody tr")) == 4
    # Counts 5, 2, 1 for all time: three distinct steps, none of them 0.
    check_legend_and_shades(page, {"CA": 5.0, "WA": 2.0, "DC": 1.0})
    page.select_option("#run-date", MIXED_SAMPLE.isoformat())
    page.wait_for_url(f"**run_date={MIXED_SAMPLE}**")
    page.wait_for_selector("body[data-ready='true']")
    assert page.inner_text("#source-kind") == "generated sample"
    assert "No rejected rows are stored" in page.inner_text("#rejects")
    screenshot(page, "page-generated-sample.png")
    assert watched_mixed.problems == []
