"""The web app: the page at ``/``, the JSON API under ``/api/v1``, ``/health`` and ``/metrics``.

``create_app(settings)`` wires the parts: ``producto.pages`` (the page), ``producto.api`` (the
API and health), ``producto.metrics`` (Prometheus metrics), ``producto.errors`` (error answers
and security headers); all SQL is in ``producto.queries``. ``app`` (for ``uvicorn
producto.app:app``) is built from the environment on first use, so importing this module needs
no configuration and no database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from producto import api, errors, metrics, pages, queries
from producto.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app over the database of ``settings`` (from the environment when not given)."""
    settings = settings or Settings.from_env()
    engine = queries.create_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="producto: UFO sightings by US state",
        version="1.1.0",
        description="Read-only figures of the NUFORC UFO pipeline, by run date.",
        openapi_url=f"{api.API}/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: the OpenAPI JSON is enough.
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.console_url = settings.console_url  # linked from every page when set
    app.mount("/static", StaticFiles(directory=pages.HERE / "static"), name="static")
    app.include_router(api.health_router)
    app.include_router(api.router)
    app.include_router(pages.router)
    # Before errors.install, so that its middlewares wrap the metrics' one: HeadAsGet hands on a
    # copy of the scope, and the route the router notes is seen only in the copy.
    metrics.install(app, engine, CollectorRegistry())
    errors.install(app)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn producto.app:app` builds the app from the environment only when asked for it.
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
