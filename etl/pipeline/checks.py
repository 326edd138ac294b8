"""Checks on a run date's snapshot before it is published: a snapshot that looks wrong is held.

The pipeline refuses bad rows one by one; these checks look at a snapshot as a whole, after the
Spark step and before TopTenStates and the load make it public. Each compares the date's
quality report with those of the last published run dates before it (their top ten exists):

    valid_drop      its valid reports are fewer than the last published date's by more than
                    the threshold (a share): reports are never deleted upstream
    input_drop      its input records are fewer than the last published date's by more than
                    the threshold (a share): a source cut short in transfer
    rejected_share  its rejected share (rejected / (valid + rejected)) is above the threshold
    rejected_jump   its rejected share is above the mean of the last published dates' by more
                    than the threshold (in points of share)
    layout          its layout is not the last published date's, and not one that UFO_LAYOUTS
                    declares

``UFO_CHECKS`` sets the thresholds (``NAME=VALUE``), switches a check off (``NAME=off``) or to
warn-only (``NAME=VALUE:warn``, ``layout=warn``). A failed check holds the run date: nothing of
the batch is published, its checks report (``top10/date=D/checks.json``) says why, and the run
fails with ``SnapshotHeld`` (exit code ``HELD_EXIT``). ``--accept-checks "WHO: WHY"`` publishes
it anyway; the report, and ``ufo_runs.checks``, record who, why and when.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from etl.adapters.lake import Lake
from etl.errors import ConfigError, DataError, shown
from etl.pipeline.targets import TOP10, AggregateTarget, TopTenTarget

logger = logging.getLogger("ufo")

CHECKS = ("valid_drop", "input_drop", "rejected_share", "rejected_jump", "layout")
DEFAULT_CHECKS = "valid_drop=0.02,input_drop=0.5,rejected_share=0.5,rejected_jump=0.1,layout=on"
#: Published run dates whose rejected share ``rejected_jump`` averages.
JUMP_DATES = 7
#: The rejected-share checks judge snapshots of at least this many reports (a handful of rows
#: says nothing about a share).
MIN_REPORTS = 100
#: The exit code of a run that held a run date's snapshot (Luigi's task_failed is 30).
HELD_EXIT = 31
HELD_NOTE = "UFO_HELD_NOTE"

_VALUE = re.compile(r"(?P<value>on|off|warn|[0-9]*\.?[0-9]+)(?P<warn>:warn)?")


class SnapshotHeld(DataError):
    """A run date's snapshot failed a check: nothing of it was published."""


@dataclass(frozen=True)
class Rule:
    """How one check judges: its threshold (None for ``layout``), off, or warn-only."""

    threshold: float | None
    on: bool = True
    warn_only: bool = False


def rules(text: str | None) -> dict[str, Rule]:
    """The checks' rules from UFO_CHECKS's text (the defaults for checks it does not name)."""
    found: dict[str, Rule] = {}
    for item in f"{DEFAULT_CHECKS},{text or ''}".split(","):
        if not item.strip():
            continue
        name, _, value = (part.strip() for part in item.partition("="))
        match = _VALUE.fullmatch(value)
        number = bool(match) and match["value"] not in ("on", "off", "warn")
        if name == "layout":
            fits = bool(match) and match["value"] in ("on", "off", "warn") and not match["warn"]
        else:
            fits = bool(match) and (number or match["value"] == "off" and not match["warn"])
        if name not in CHECKS or not fits:
            raise ConfigError(
                f"UFO_CHECKS={shown(text)} is not valid at {shown(item.strip())}: expected "
                f"NAME=THRESHOLD[:warn] or NAME=off, comma-separated, NAME one of "
                f"{', '.join(CHECKS[:-1])}; and layout=on, layout=warn or layout=off."
            )
        warn = bool(match["warn"]) or match["value"] == "warn"
        found[name] = Rule(float(match["value"]) if number else None, match["value"] != "off", warn)
    return found


def acceptance(text: str) -> dict | None:
    """``--accept-checks "WHO: WHY"`` as recorded; None when not given."""
    if not text.strip():
        return None
    who, colon, why = (part.strip() for part in text.partition(":"))
    if not (colon and who and why):
        raise ConfigError(
            f'--accept-checks {shown(text)}: say who accepts and why, as "WHO: WHY" (for '
            'example "alice: the source shrank because NUFORC removed duplicates").'
        )
    return {"by": who, "why": why, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


@dataclass(frozen=True)
class Published:
    """A published run date's figures, as the checks compare against them."""

    day: dt.date
    quality: dict
    layout: str | None


def rejected_share(quality: dict) -> float | None:
    """The rejected share of a snapshot's reports; None below MIN_REPORTS reports."""
    judged = quality["valid"] + quality["rejected"]
    return quality["rejected"] / judged if judged >= MIN_REPORTS else None


def _drop(name: str, rule: Rule, value: int, last: Published | None, what: str) -> dict:
    if last is None:
        return {"name": name, "status": "skipped", "value": value,
                "detail": "no earlier published run date to compare with"}  # fmt: skip
    baseline = last.quality[what]
    floor = baseline * (1 - rule.threshold)
    failed = value < floor
    detail = (
        f"{value:,} {what} against {baseline:,} on {last.day}"
        + (f": more than {rule.threshold:.0%} fewer" if failed else "")
    )  # fmt: skip
    return {"name": name, "status": "failed" if failed else "passed", "value": value,
            "baseline": baseline, "threshold": rule.threshold, "against": last.day.isoformat(),
            "detail": detail}  # fmt: skip


def evaluate(
    quality: dict,
    layout: str | None,
    history: list[Published],
    checks: dict[str, Rule],
    declared: Iterable[str] = (),
) -> list[dict]:
    """Each check's result for a snapshot, against ``history`` (published dates, oldest first)."""
    last = history[-1] if history else None
    results = []
    for name in CHECKS:
        rule = checks[name]
        if not rule.on:
            results.append({"name": name, "status": "off"})
            continue
        if name == "valid_drop":
            result = _drop(name, rule, quality["valid"], last, "valid")
        elif name == "input_drop":
            result = _drop(name, rule, quality["input"], last, "input")
        elif name == "rejected_share":
            result = _share(rule, quality)
        elif name == "rejected_jump":
            result = _jump(rule, quality, history)
        else:
            result = _layout(layout, last, declared)
        if result["status"] == "failed" and rule.warn_only:
            result["status"] = "warned"
        results.append(result)
    return results


def _share(rule: Rule, quality: dict) -> dict:
    share = rejected_share(quality)
    failed = share is not None and share > rule.threshold
    judged = quality["valid"] + quality["rejected"]
    detail = f"{quality['rejected']:,} of {judged:,} reports rejected"
    if failed:
        detail += f": more than {rule.threshold:.0%}"
    return {"name": "rejected_share", "status": "failed" if failed else "passed", "value": share,
            "threshold": rule.threshold, "detail": detail}  # fmt: skip


def _layout(layout: str | None, last: Published | None, declared: Iterable[str]) -> dict:
    before = last.layout if last else None
    failed = bool(before and layout and layout != before and layout not in declared)
    detail = f"layout {layout!r}"
    if failed:
        detail += f" after {before!r} on {last.day}, and not one UFO_LAYOUTS declares"
    return {"name": "layout", "status": "failed" if failed else "passed", "value": layout,
            "baseline": before, "against": last.day.isoformat() if last else None,
            "detail": detail}  # fmt: skip


def _jump(rule: Rule, quality: dict, history: list[Published]) -> dict:
    share = rejected_share(quality)
    shares = [s for p in history[-JUMP_DATES:] if (s := rejected_share(p.quality)) is not None]
    if share is None or not shares:
        return {"name": "rejected_jump", "status": "skipped", "value": share,
                "detail": "too few reports, or no earlier published run date"}  # fmt: skip
    baseline = sum(shares) / len(shares)
    failed = share - baseline > rule.threshold
    return {"name": "rejected_jump", "status": "failed" if failed else "passed", "value": share,
            "baseline": baseline, "threshold": rule.threshold,
            "detail": f"rejected share {share:.1%} against {baseline:.1%} over the last "
            f"{len(shares)} published date(s)"}  # fmt: skip


def report(day: dt.date, results: list[dict], accepted: dict | None) -> dict:
    """A run date's checks report: held when a check failed and nobody accepted it."""
    failed = [r for r in results if r["status"] == "failed"]
    return {
        "run_date": day.isoformat(),
        "held": bool(failed) and accepted is None,
        "accepted": accepted if failed else None,
        "checks": results,
    }


def why_held(reports: dict[dt.date, dict]) -> str:
    """The message of a run that held run dates: each held date's failed checks, what to do."""
    held = {day: r for day, r in reports.items() if r["held"]}
    first, doc = next(iter(held.items()))
    failed = "; ".join(
        f"{c['name']}: {c['detail']}" for c in doc["checks"] if c["status"] == "failed"
    )
    more = f" (and {len(held) - 1} more run date(s))" if len(held) > 1 else ""
    return (
        f"snapshot of {first} held by its checks{more}, nothing of the run published: {failed}. "
        'Look at the source; publish it anyway with --accept-checks "WHO: WHY" (accept_checks '
        "in a run request), or fix the source and run again with --force-upstream."
    )


# -- the run's exit code -------------------------------------------------------------------------


def arm_held_exit() -> None:
    """Exit with HELD_EXIT when a task of this run (any of its processes) held a snapshot.

    Registered before the run's alert and last line, so it runs after them (atexit runs the
    last registered first).
    """
    if os.environ.get(HELD_NOTE):
        return
    note = Path(tempfile.gettempdir()) / f"ufo-held-{os.getpid()}-{secrets.token_hex(4)}"
    os.environ[HELD_NOTE] = str(note)  # the task processes inherit it
    atexit.register(_exit_if_held, note)


def note_held() -> None:
    """Say that this run held a snapshot (from whichever process ran the task)."""
    note = os.environ.get(HELD_NOTE)
    if note:
        Path(note).write_text("held\n")


def _exit_if_held(note: Path) -> None:
    if not note.exists():
        return
    note.unlink(missing_ok=True)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(HELD_EXIT)


def published_before(lake: Lake, day: dt.date, count: int = JUMP_DATES) -> list[Published]:
    """Up to ``count`` published run dates before ``day`` (their top ten exists), oldest first."""
    found: list[Published] = []
    names = [n for n in lake.subdirs(TOP10) if n.startswith("date=")]
    for name in sorted(names, reverse=True):
        try:
            other = dt.date.fromisoformat(name.removeprefix("date="))
        except ValueError:
            continue
        if other >= day or not TopTenTarget(lake, other).exists():
            continue
        manifest = AggregateTarget(lake, other).manifest()
        found.append(Published(other, manifest["quality"], manifest.get("layout")))
        if len(found) == count:
            break
    return found[::-1]
