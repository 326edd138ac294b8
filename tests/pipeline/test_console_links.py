"""luigid's page of a running task links to its run date(s) in the console (UFO_CONSOLE_URL),
through the hook Luigi gives a running task (``set_tracking_url``); and not without a console,
or outside a Luigi worker."""

from __future__ import annotations

import datetime as dt

import pytest

from etl import ReadUFOs, TopStatesToDatabase, TopTenStates
from etl.pipeline.rundates import RunDateParameter


@pytest.mark.parametrize("task", [ReadUFOs, TopTenStates, TopStatesToDatabase])
@pytest.mark.parametrize("console", ["http://127.0.0.1:8090", "/console/"])
def test_a_task_links_to_its_run_date_or_its_batch(monkeypatch, task, console):
    monkeypatch.setenv("UFO_CONSOLE_URL", console)
    base = console.rstrip("/")
    one = task(date=dt.date(2019, 3, 29))
    links: list[str] = []
    one.set_tracking_url = links.append
    one.link_console()
    assert links == [f"{base}/dates/2019-03-29"]
    batch = task(date=RunDateParameter().parse("2019-03-01..2019-03-03"))
    batch.set_tracking_url = links.append
    batch.link_console()
    assert links[-1] == f"{base}/?from=2019-03-01&to=2019-03-03&all_loaded=0"


def test_no_console_no_link(monkeypatch):
    monkeypatch.delenv("UFO_CONSOLE_URL", raising=False)
    task = ReadUFOs(date=dt.date(2019, 3, 29))
    links: list[str] = []
    task.set_tracking_url = links.append
    task.link_console()
    assert links == []
    monkeypatch.setenv("UFO_CONSOLE_URL", "/console")
    ReadUFOs(date=dt.date(2019, 3, 28)).link_console()  # no Luigi worker: nothing to call
