"""The private PostgreSQL of the demo and the tests: a throwaway cluster leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etl.errors import DatabaseError
from etl.tools.localpg import LocalPostgres, _bin


@pytest.fixture
def initdb() -> None:
    try:
        _bin("initdb")
    except DatabaseError as err:
        pytest.skip(str(err))


def test_discard_removes_a_cluster_moved_out_of_a_closed_directory(initdb, tmp_path):
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    server = LocalPostgres(closed / "postgres")
    if os.geteuid() == 0:  # root's closed directory: the cluster moves to the temp directory
        assert not Path(server.directory).is_relative_to(closed)
    server.start()
    assert server.running() and (server.data_dir / "PG_VERSION").exists()
    server.discard()
    assert not server.running()
    assert not Path(server.directory).exists()


def test_stop_keeps_the_cluster_for_the_next_start(initdb, tmp_path):
    server = LocalPostgres(tmp_path / "postgres").start()
    try:
        server.stop()
        assert not server.running()
        assert (server.data_dir / "PG_VERSION").exists()
    finally:
        server.discard()
