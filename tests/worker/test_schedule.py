"""When the daily schedule is due, and where its time and zone come from."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from etl.worker.schedule import DailySchedule, schedule_from_settings


def test_the_daily_schedule_fires_once_a_day_after_its_local_time():
    madrid = ZoneInfo("Europe/Madrid")
    schedule = DailySchedule(dt.time(2, 30), madrid, ["--local-scheduler"])
    utc = dt.UTC
    # 01:00 UTC on 22 Nov is 02:00 in Madrid: not yet.
    assert schedule.due(dt.datetime(2026, 11, 22, 1, 0, tzinfo=utc)) is None
    # 01:45 UTC is 02:45 in Madrid: due, for yesterday in Madrid.
    assert schedule.due(dt.datetime(2026, 11, 22, 1, 45, tzinfo=utc)) == dt.date(2026, 11, 21)
    schedule.last_day = dt.date(2026, 11, 22)  # it ran
    assert schedule.due(dt.datetime(2026, 11, 22, 22, 0, tzinfo=utc)) is None
    # 23:40 UTC on 22 Nov is already 00:40 on the 23rd in Madrid, before 02:30: not yet.
    assert schedule.due(dt.datetime(2026, 11, 22, 23, 40, tzinfo=utc)) is None
    assert schedule.due(dt.datetime(2026, 11, 23, 1, 31, tzinfo=utc)) == dt.date(2026, 11, 22)


def test_the_schedule_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("UFO_SCHEDULE_TIME", raising=False)
    assert schedule_from_settings() is None
    monkeypatch.setenv("UFO_SCHEDULE_TIME", "06:15")
    monkeypatch.setenv("UFO_TIMEZONE", "America/New_York")
    schedule = schedule_from_settings()
    assert (schedule.at, str(schedule.zone)) == (dt.time(6, 15), "America/New_York")
