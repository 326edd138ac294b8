"""Sightings per 100,000 residents, from the 2020 Census figures the page uses, computed here."""

from __future__ import annotations

import json

from tests.reference import STATES
from tests.support import REPO


def per_100k(counts: dict[str, int]) -> dict[str, float]:
    """Every state's (and DC's) sightings per 100,000 residents; 0 where it had none."""
    data = json.loads((REPO / "producto" / "static" / "population-2020.json").read_text())
    population = data["population"]
    return {code: counts.get(code, 0) * 100_000 / population[code] for code in STATES}
