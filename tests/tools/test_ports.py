"""The local product's ports (etl/tools/ports.py): one variable each, checked before anything
starts. The real `make up` on other ports is in tests/producto/test_local_ports.py."""

from __future__ import annotations

import socket

import pytest

from etl.tools import ports
from etl.tools.services import LocalStackError
from tests.support import free_port


def test_each_server_has_its_variable_and_default():
    assert ports.wanted({}) == {
        "producto": 8000,
        "luigid": 8082,
        "history": 18080,
        "connect": 15002,
        "proxy": 8443,
        "console": 8090,
    }
    given = {"PORT": "9000", "SPARK_HISTORY_PORT": "19080", "SPARK_CONNECT_PORT": ""}
    assert ports.wanted(given) == {
        "producto": 9000, "luigid": 8082, "history": 19080, "connect": 15002, "proxy": 8443,
        "console": 8090,
    }  # fmt: skip
    # A hint repeats what differs from the defaults, so its command opens what it names.
    assert ports.changed(given) == " PORT=9000 SPARK_HISTORY_PORT=19080"
    assert ports.changed({}) == ""


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1"])
def test_a_value_that_is_not_a_port_is_refused_by_name(value):
    with pytest.raises(LocalStackError, match=f"SPARK_CONNECT_PORT='{value}' is not a port"):
        ports.wanted({"SPARK_CONNECT_PORT": value})


def test_two_servers_on_one_port_are_refused():
    with pytest.raises(LocalStackError, match="PORT and LUIGID_PORT are both 9000"):
        ports.check({"producto": 9000, "luigid": 9000})


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_taken_port_is_named_with_its_variable_unless_its_server_runs():
    with _listening() as first, _listening() as second:
        taken, other = first.getsockname()[1], second.getsockname()[1]
        wanted = {"producto": free_port(), "history": taken}
        with pytest.raises(LocalStackError) as err:
            ports.check(wanted)
        assert str(err.value) == (
            f"nothing started: port {taken} (SPARK_HISTORY_PORT, Spark's history server) is "
            "taken by another program: stop it, or choose a free port: make up "
            "SPARK_HISTORY_PORT=N."
        )
        ports.check(wanted, running={"history"})  # this run directory's own server: fine
        with pytest.raises(LocalStackError) as err:
            ports.check({"producto": taken, "connect": other})
        assert f"\n  PORT={taken}  (producto, the web app)\n" in str(err.value)
        assert f"\n  SPARK_CONNECT_PORT={other}  (the Spark Connect server)\n" in str(err.value)
        assert str(err.value).endswith("make up PORT=N1 SPARK_CONNECT_PORT=N2")


def test_a_free_port_is_below_the_kernels_ephemeral_range_and_free():
    """The port a server is given a moment before it binds is not one an outgoing connection
    can take in between: the kernel numbers those from its ephemeral range."""
    low = ports.ephemeral_range()[0]
    given = [ports.free_port() for _ in range(50)]
    assert len(set(given)) == 50  # never the same one twice in a process
    assert all(20000 <= number < low for number in given)
    for number in given[:5]:
        with socket.socket() as server:
            server.bind((ports.HOST, number))  # nothing holds it


def test_a_free_port_skips_a_port_a_server_holds(monkeypatch):
    with socket.socket() as holder:
        holder.bind((ports.HOST, 0))
        held = holder.getsockname()[1]
        monkeypatch.setattr(ports, "ephemeral_range", lambda: (held + 1000, 60999))
        choices = iter([held, held, held + 1])

        class Pick:
            def randrange(self, low, high):
                return next(choices)

        monkeypatch.setattr(ports.random, "SystemRandom", Pick)
        monkeypatch.setattr(ports, "_HANDED_OUT", set())
        assert ports.free_port() == held + 1
