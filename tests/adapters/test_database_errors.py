"""A database that refuses the load says so in one line: the URL without its password, what
happened and what to do. Against a real PostgreSQL (a user that must give its password) and a
real closed port."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from etl.adapters.database import Loader, loaded_dates
from etl.errors import DatabaseError
from tests.support import free_port, pipeline_env, run_luigi

PASSWORD = "right-Pw-789"
WRONG = "wrong-Pw-123"


@pytest.fixture
def password_user(postgres):
    """A user of the session's server that must give its password (scram-sha-256): the server
    trusts every other local user, so its own pg_hba.conf line goes first, and goes again after."""
    name = f"pw_user_{os.getpid()}"
    server = postgres.url.rsplit("/", 1)[0]
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        hba = Path(conn.execute(sa.text("SHOW hba_file")).scalar_one())
        before = hba.read_text()
        conn.execute(sa.text(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'"))
        hba.write_text(f"host all {name} 127.0.0.1/32 scram-sha-256\n{before}")
        conn.execute(sa.text("SELECT pg_reload_conf()"))
    _until_refused(f"postgresql+psycopg2://{name}:{WRONG}@127.0.0.1:{postgres.port}/postgres")
    yield name
    hba.write_text(before)
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_reload_conf()"))
        conn.execute(sa.text(f"DROP ROLE {name}"))
    admin.dispose()


def _until_refused(url: str) -> None:
    """Wait for the server to read its new pg_hba.conf (a reload is a signal, not a call)."""
    engine = sa.create_engine(url)
    try:
        for _ in range(50):
            try:
                engine.connect().close()
            except sa.exc.OperationalError:
                return
            time.sleep(0.1)
        pytest.fail("the server never asked for the password")
    finally:
        engine.dispose()


def _refusal(url: str) -> str:
    with pytest.raises(DatabaseError) as err:
        with Loader(url):
            pass
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message and WRONG not in message
    return message


def test_a_wrong_password_is_said_as_such_naming_the_url_without_it(postgres, password_user):
    server = f"127.0.0.1:{postgres.port}"
    assert _refusal(f"postgresql://{password_user}:{WRONG}@{server}/ufo") == (
        f"Cannot use the database postgresql+psycopg2://{password_user}:***@{server}/ufo: the "
        f"server refused the password of user '{password_user}': fix the password in "
        "UFO_DATABASE_URL."
    )
    # No password at all is the same mistake.
    assert "the server refused the password of user" in _refusal(
        f"postgresql://{password_user}@{server}/ufo"
    )
    # The right one is let in: it was the password, not the set-up.
    right = sa.create_engine(f"postgresql+psycopg2://{password_user}:{PASSWORD}@{server}/ufo")
    with right.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == password_user
    right.dispose()


def test_a_closed_port_says_nothing_listens_there_and_what_to_do():
    port = free_port()
    url = f"postgresql://ufo:{WRONG}@127.0.0.1:{port}/ufo"
    expected = (
        f"Cannot use the database postgresql+psycopg2://ufo:***@127.0.0.1:{port}/ufo: nothing "
        f"listens at 127.0.0.1:{port} (connection refused): start PostgreSQL or fix "
        "UFO_DATABASE_URL."
    )
    assert _refusal(url) == expected
    with pytest.raises(DatabaseError) as err:  # the completeness check before a load, too
        loaded_dates(url, [])
    assert str(err.value) == expected


def test_a_database_or_user_the_server_lacks_is_named(postgres):
    server = f"127.0.0.1:{postgres.port}"
    assert _refusal(f"postgresql://{postgres.user}@{server}/no_such_db") == (
        f"Cannot use the database postgresql+psycopg2://{postgres.user}@{server}/no_such_db: the "
        "server has no database 'no_such_db': create it, or fix its name in UFO_DATABASE_URL."
    )
    assert _refusal(f"postgresql://nobody_here:{WRONG}@{server}/ufo") == (
        f"Cannot use the database postgresql+psycopg2://nobody_here:***@{server}/ufo: the server "
        "has no user 'nobody_here': create it, or fix the user in UFO_DATABASE_URL."
    )


@pytest.mark.integration
def test_a_run_against_a_wrong_password_ends_with_that_line(tmp_path, postgres, password_user):
    url = f"postgresql://{password_user}:{WRONG}@127.0.0.1:{postgres.port}/ufo"
    env = pipeline_env(str(tmp_path / "lake"), url, str(tmp_path / "x.csv"))
    result = run_luigi("TopStatesToDatabase", "--date", "2019-03-29", "--local-scheduler", env=env,
                       timeout=120)  # fmt: skip
    assert result.returncode == 35, result.stderr[-3000:]  # [retcode] scheduling_error
    assert result.stderr.rstrip().splitlines()[-1] == (
        "ufo: error: TopStatesToDatabase(date=2019-03-29): Cannot use the database "
        f"postgresql+psycopg2://{password_user}:***@127.0.0.1:{postgres.port}/ufo: the server "
        f"refused the password of user '{password_user}': fix the password in UFO_DATABASE_URL."
    )
    assert WRONG not in result.stdout + result.stderr
