"""Chromium for the console's tests through the proxy: HTTPS with the proxy's own certificate,
and a login."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.producto.test_browser import CHROMIUM, QUIET_FLAGS


@contextlib.contextmanager
def logged_in_page(user: str, password: str) -> Iterator[tuple[object, list[str]]]:
    """A Chromium page that logs in as ``user`` and accepts the proxy's self-made certificate;
    and the problems it meets (console errors and warnings, page errors, failed loads)."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=QUIET_FLAGS
        )
        context = browser.new_context(
            http_credentials={"username": user, "password": password},
            ignore_https_errors=True, viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
        try:
            yield page, problems
        finally:
            context.close()
            browser.close()
