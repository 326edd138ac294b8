"""The product database (PostgreSQL): its schema and the loader of run dates."""

from etl.adapters.database.connection import engine, normalise_url, safe_url
from etl.adapters.database.loaded import RunLoadedTarget, loaded_dates, loaded_recently
from etl.adapters.database.loader import Loader, RunResults
from etl.adapters.database.schema import (
    SCHEMA_VERSION,
    metadata,
    migrate,
    public,
    reject_samples,
    schema_versions,
    state_sightings,
    top_states,
    ufo_runs,
)

__all__ = [
    "SCHEMA_VERSION",
    "Loader",
    "RunLoadedTarget",
    "RunResults",
    "engine",
    "loaded_dates",
    "loaded_recently",
    "metadata",
    "migrate",
    "normalise_url",
    "public",
    "reject_samples",
    "safe_url",
    "schema_versions",
    "state_sightings",
    "top_states",
    "ufo_runs",
]
