"""Helpers of producto's tests: the run dates and rows of the hand-written databases."""

from __future__ import annotations

import datetime as dt

# Two hand-made run dates, for behaviour that does not need the real data.
SMALL_OLD = dt.date(2020, 1, 31)
SMALL_NEW = dt.date(2020, 2, 29)

# A database as the pipeline leaves it now that ufo_runs has its layout column and the loader
# stores rejected rows: an older run of real data (its source URL carries credentials) and a
# newer run of the demo's generated sample. Written with plain SQL, so every figure below is
# known by hand.
MIXED_REAL = dt.date(2021, 5, 31)
MIXED_SAMPLE = dt.date(2021, 6, 30)
REAL_SOURCE = "https://reader:s3cr3t@data.example.org/nuforc/index.csv?token=abc123"
SAMPLE_SOURCE = "/home/someone/ufo/.run/sample/nuforc_sample_2021-06-30.csv"
# (period, state, sightings) of the real run: 2021-03 has no sightings at all.
MIXED_COUNTS = [
    ("all", "CA", 5), ("all", "WA", 2), ("all", "DC", 1),
    ("2021-01", "CA", 3), ("2021-01", "WA", 2), ("2021-02", "DC", 1), ("2021-04", "CA", 2),
]  # fmt: skip
# (reason, row_number, fields) stored for the real run.
MIXED_REJECTS = [
    ("state", 4, {"Date / Time": "1/2/21 20:00", "City": "Toronto", "State": "ON",
                  "Shape": "Light", "Duration": "5 min", "Summary": "Lights, \"three\"", "Posted": "1/3/21"}),
    ("state", 9, {"Date / Time": "1/5/21", "City": "Paris", "State": "",
                  "Shape": "Disk", "Duration": "1 min", "Summary": "line one\nline two", "Posted": "1/6/21"}),
    ("state", 12, {"Date / Time": "2/1/21", "City": "Lyon", "State": "FR",
                   "Shape": "Orb", "Duration": "", "Summary": "", "Posted": "2/2/21"}),
    ("sighting_date", 7, {"Date / Time": "13/45/21", "City": "Austin", "State": "TX",
                          "Shape": "Orb", "Duration": "2 min", "Summary": "=1+1", "Posted": "1/8/21"}),
]  # fmt: skip
