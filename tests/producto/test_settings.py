"""Settings and start-up, without a database."""

from __future__ import annotations

import subprocess
import sys

import pytest

from producto.settings import ConfigError, Settings
from tests.support import REPO


def test_producto_url_wins_and_plain_postgresql_uses_psycopg2():
    env = {"PRODUCTO_DATABASE_URL": "postgresql://ro@db/ufo", "UFO_DATABASE_URL": "x://other"}
    assert Settings.from_env(env).database_url == "postgresql+psycopg2://ro@db/ufo"


def test_falls_back_to_the_pipeline_url():
    env = {"UFO_DATABASE_URL": "postgresql+psycopg2://u@h:5/ufo"}
    assert Settings.from_env(env).database_url == "postgresql+psycopg2://u@h:5/ufo"


def test_no_database_url_fails_saying_what_to_set():
    with pytest.raises(ConfigError, match="PRODUCTO_DATABASE_URL"):
        Settings.from_env({"PRODUCTO_DATABASE_URL": "  "})


def test_python_m_producto_without_a_database_exits_with_the_message():
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "producto"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "set PRODUCTO_DATABASE_URL" in result.stderr


def test_module_level_app_is_built_from_the_environment_on_first_use(monkeypatch):
    import producto.app

    monkeypatch.delitem(producto.app.__dict__, "app", raising=False)
    monkeypatch.delenv("PRODUCTO_DATABASE_URL", raising=False)
    monkeypatch.delenv("UFO_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError):
        producto.app.app  # noqa: B018
    monkeypatch.setenv("PRODUCTO_DATABASE_URL", "postgresql://ro@127.0.0.1:1/ufo")
    assert producto.app.app.title.startswith("producto")


def test_openapi_is_versioned_and_no_page_loads_from_a_cdn():
    from fastapi.testclient import TestClient

    from producto.app import create_app

    client = TestClient(create_app(Settings("postgresql+psycopg2://x@127.0.0.1:1/ufo")))
    spec = client.get("/api/v1/openapi.json").json()
    assert {p for p in spec["paths"] if p != "/health"} == {
        "/api/v1/runs",
        "/api/v1/runs/{run_date}",
        "/api/v1/runs/{run_date}/top-states",
        "/api/v1/runs/{run_date}/state-sightings",
        "/api/v1/runs/{run_date}/monthly",
        "/api/v1/runs/{run_date}/rejects",
        "/api/v1/runs/{run_date}/rejects.csv",
    }
    for page in ("/docs", "/redoc"):
        assert client.get(page).status_code == 404


def test_database_down_health_is_503_and_bad_values_are_422_anyway():
    from fastapi.testclient import TestClient

    from producto.app import create_app

    client = TestClient(create_app(Settings("postgresql+psycopg2://x@127.0.0.1:1/ufo")))
    assert client.get("/health").status_code == 503
    assert client.get("/api/v1/runs").status_code == 503
    assert client.get("/api/v1/runs/2019-02-30").status_code == 422


@pytest.mark.parametrize("given,kept", [
    ("http://127.0.0.1:8090/", "http://127.0.0.1:8090"), ("/console", "/console"), ("", None),
])  # fmt: skip
def test_the_console_link_is_an_address_or_a_path(given, kept):
    env = {"PRODUCTO_DATABASE_URL": "postgresql://x@h/db", "PRODUCTO_CONSOLE_URL": given}
    assert Settings.from_env(env).console_url == kept


@pytest.mark.parametrize("given", ["javascript:alert(1)", "//evil.example", '/x" onclick="y'])
def test_a_console_link_that_is_not_an_address_is_refused(given):
    env = {"PRODUCTO_DATABASE_URL": "postgresql://x@h/db", "PRODUCTO_CONSOLE_URL": given}
    with pytest.raises(ConfigError, match="PRODUCTO_CONSOLE_URL"):
        Settings.from_env(env)


@pytest.mark.parametrize("console", ["/console", None])
def test_every_page_links_to_the_console_when_it_is_given(console):
    from fastapi.testclient import TestClient

    from producto.app import create_app

    client = TestClient(create_app(Settings("postgresql+psycopg2://x@127.0.0.1:1/ufo", console)))
    for path in ("/", "/nowhere"):  # the database down, a missing page: both HTML
        page = client.get(path, headers={"Accept": "text/html"}).text
        assert ('id="console-link" href="/console/"' in page) is (console is not None), page[:300]
