"""The API's answers (pydantic models) and the request values it accepts."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from producto import queries, sources

PERIOD_PATTERN = r"^(all|[0-9]{4}-(0[1-9]|1[0-2]))$"
#: The 50 US states and DC: the pipeline's (spark_jobs/layouts.py US_STATES, which a test keeps
#: the same; the app's image does not carry the pipeline).
US_STATE_CODES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
    "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"
).split()
STATE_PATTERN = rf"^({'|'.join(US_STATE_CODES)})$"
#: Run dates to skip at most: far more than there will ever be, far less than PostgreSQL's
#: bigint (an offset beyond it failed as a database error).
MAX_OFFSET = 1_000_000_000
MAX_LIMIT = 1000
REASONS = ("columns", "posted", "sighting_date", "state")
REASON_PATTERN = rf"^({'|'.join(REASONS)})$"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# What a user is told about a bad value, by parameter name.
BAD_VALUE = {
    "period": "period must be 'all' or a month as YYYY-MM (for example 2018-07)",
    "run_date": "run_date must be a date as YYYY-MM-DD (for example 2019-03-29)",
    "state": "state must be a two-letter US state code such as CA",
    "reason": f"reason must be one of {', '.join(REASONS)}",
    "limit": f"limit must be a whole number from 1 to {MAX_LIMIT}",
    "per_capita": "per_capita must be 1 or 0",
    "offset": f"offset must be a whole number from 0 to {MAX_OFFSET}",
}


def _iso_date_only(value: Any) -> Any:
    # pydantic also takes Unix times and datetimes at midnight as dates; an address names a
    # run date one way only.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("not a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_only)]
RunDate = Annotated[IsoDate, Path(description="a run date, YYYY-MM-DD")]
Period = Annotated[
    str, Query(pattern=PERIOD_PATTERN, description="'all' for all time, or a month as YYYY-MM")
]
StateCode = Annotated[
    str | None,
    Query(pattern=STATE_PATTERN, description="a two-letter state code; absent: the whole country"),
]
Reason = Annotated[
    str | None, Query(pattern=REASON_PATTERN, description="one reject reason; absent: every reason")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per reason")]
RunsLimit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="run dates per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="run dates to skip, newest first")]


class CheckOut(BaseModel):
    """One check of a snapshot before it was published, with its figures."""

    model_config = ConfigDict(extra="allow")  # value, baseline, threshold, against: as recorded

    name: str = Field(description="valid_drop, input_drop, rejected_share, rejected_jump or layout")
    status: str = Field(description="passed, failed, warned or skipped")
    detail: str | None = Field(default=None, description="the figures in words")


class ChecksOut(BaseModel):
    """A snapshot's checks (docs: concepts/snapshot-checks.md): a published date was never held,
    or a person accepted its failed checks."""

    held: bool = Field(description="always false here: a held date is not published")
    accepted: dict[str, str] | None = Field(
        default=None, description="who accepted failed checks, why and when (by, why, at)"
    )
    checks: list[CheckOut]


class RunOut(BaseModel):
    """One finished run date and its quality report."""

    run_date: dt.date
    finished_at: dt.datetime
    source: str = Field(description="where the reports came from, without credentials")
    source_kind: str = Field(description="'generated sample' (the demo's) or 'real data'")
    layout: str | None = Field(
        description="source layout: 'index' (NUFORC index) or 'export' (NUFORC site export); "
        "null when the loader did not record it"
    )
    input: int = Field(description="data rows read from the source file")
    header_repeat: int = Field(description="repeated header rows, skipped")
    duplicate: int = Field(description="exact duplicate rows, skipped")
    after_run_date: int = Field(description="reports posted after the run date, not yet counted")
    valid: int = Field(description="reports counted")
    rejected: int = Field(description="reports rejected as unusable")
    rejected_by_reason: dict[str, int]
    checks: ChecksOut | None = Field(
        default=None, description="the snapshot's checks; null for a date loaded before them"
    )

    @classmethod
    def of(cls, run: queries.Run) -> RunOut:
        """The API's view of a run: the source redacted and labelled."""
        fields = vars(run) | {
            "source": sources.redact(run.source),
            "source_kind": sources.kind(run.source),
        }
        return cls(**fields)


class RunDetailOut(RunOut):
    periods: list[str] = Field(description="months (YYYY-MM) with sightings, oldest first")


class RunsOut(BaseModel):
    runs: list[RunOut] = Field(description="finished run dates, newest first (one page)")
    total: int = Field(description="finished run dates in all")
    limit: int
    offset: int
    next: str | None = Field(description="the address of the next page; null on the last")


class RankedState(BaseModel):
    rank: int
    state: str
    sightings: int


class TopStatesOut(BaseModel):
    run_date: dt.date
    period: str
    states: list[RankedState] = Field(description="the top ten states, best first")


class StateSightingsOut(BaseModel):
    run_date: dt.date
    period: str
    states: dict[str, int] = Field(description="sightings by state; states with none are absent")


class MonthCount(BaseModel):
    period: str = Field(description="a month, YYYY-MM")
    sightings: int


class MonthlyOut(BaseModel):
    run_date: dt.date
    state: str | None = Field(description="the state, or null for the whole country")
    months: list[MonthCount] = Field(
        description="every month from the run's first to its last month with sightings, "
        "oldest first, 0 where there were none"
    )


class RejectOut(BaseModel):
    reason: str
    row_number: int = Field(
        description="the row's position (from 1) among the run date's rejected rows as the "
        "lake's reject files list them (sorted by reason), not its line in the source file"
    )
    fields: Any = Field(
        description="the row's fields as they came: an object of the source's column names, in "
        "the source's order"
    )


class ReasonRowsOut(BaseModel):
    rejected: int = Field(description="rows rejected for this reason (the run's quality report)")
    stored_rows: int = Field(
        description="of those, rows stored in the database (at most the loader's UFO_REJECT_ROWS)"
    )


class RejectsOut(BaseModel):
    run_date: dt.date
    reason: str | None
    stored: bool = Field(
        description="false when this database holds no rejected rows at all (no reject_samples "
        "table: it was loaded before the loader stored them)"
    )
    by_reason: dict[str, ReasonRowsOut] = Field(
        description="rejected and stored rows of each reason of the run (or of the one asked for)"
    )
    all_stored: bool = Field(
        description="true when every rejected row is stored; otherwise `complete_rejects` says "
        "where all of them are"
    )
    complete_rejects: str = Field(
        description="where every rejected row of the run is: the files listed by this manifest "
        "in the pipeline's lake (UFO_STORAGE)"
    )
    rejects: list[RejectOut] = Field(
        description="up to `limit` rows per reason, in `row_number` order"
    )


def lake_manifest(run_date: dt.date) -> str:
    """The lake-relative manifest that lists the files of every rejected row of a run date."""
    return f"aggregated/date={run_date.isoformat()}/_MANIFEST.json"


class HealthOut(BaseModel):
    status: str


class ErrorOut(BaseModel):
    detail: str
