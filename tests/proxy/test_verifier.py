"""The login verifier's rules, with a clock of the test's own: remembered logins, failures
limited per address, the queue of checks bounded, unknown names checked like known ones."""

from __future__ import annotations

import base64
import threading
import time

import bcrypt
import pytest

from etl.proxy.verifier import DENIED, LIMITED, OK, Verifier

PASSWORD = b"correct horse battery"
HASHES = {"alice": bcrypt.hashpw(PASSWORD, bcrypt.gensalt(rounds=4))}


def basic(name: str, password: bytes) -> str:
    return "Basic " + base64.b64encode(name.encode() + b":" + password).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def test_the_right_login_passes_and_names_the_user(clock):
    verifier = Verifier(HASHES, clock=clock)
    assert verifier.check(basic("alice", PASSWORD), "10.0.0.1").outcome == OK
    assert verifier.check(basic("alice", PASSWORD), "10.0.0.1").user == "alice"


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer abc", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(),
     basic("alice", PASSWORD + b"x"), basic("mallory", PASSWORD), basic("alice", b""),
     basic("alice", b"x" * 100), basic("alice", PASSWORD + b"\0"), "Basic " + "A" * 5000,
     "Basic " + base64.b64encode(b"\xff\xfe:" + PASSWORD).decode()],
)  # fmt: skip
def test_anything_but_the_right_login_is_denied(clock, header):
    assert Verifier(HASHES, clock=clock).check(header, "10.0.0.1").outcome == DENIED


def test_a_verified_login_is_remembered_for_its_time_then_checked_again(clock, monkeypatch):
    verifier = Verifier(HASHES, cache_seconds=300, clock=clock)
    checks = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda p, h: checks.append(1) or real(p, h))
    for _ in range(5):
        assert verifier.check(basic("alice", PASSWORD), "10.0.0.1").outcome == OK
    assert len(checks) == 1
    clock.now += 301
    assert verifier.check(basic("alice", PASSWORD), "10.0.0.1").outcome == OK
    assert len(checks) == 2


def test_failures_from_one_address_are_limited_for_the_window(clock):
    verifier = Verifier(HASHES, failures=3, window=60, clock=clock)
    wrong = basic("alice", b"guess")
    assert [verifier.check(wrong, "10.0.0.9").outcome for _ in range(3)] == [DENIED] * 3
    assert verifier.check(wrong, "10.0.0.9").outcome == LIMITED
    assert verifier.check(basic("alice", PASSWORD), "10.0.0.9").outcome == LIMITED
    assert verifier.check(basic("alice", PASSWORD), "10.0.0.8").outcome == OK  # another address
    clock.now += 61
    assert verifier.check(basic("alice", PASSWORD), "10.0.0.9").outcome == OK


def test_checks_run_one_at_a_time_and_an_address_cannot_fill_the_queue(monkeypatch):
    verifier = Verifier(HASHES, queue=4, per_address=2)
    release, running, most = threading.Event(), [], [0]
    lock = threading.Lock()

    def slow_check(password, hashed):
        with lock:
            running.append(1)
            most[0] = max(most[0], len(running))
        release.wait(5)
        with lock:
            running.pop()
        return False

    monkeypatch.setattr(bcrypt, "checkpw", slow_check)
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(
            verifier.check(basic("alice", b"guess"), "10.0.0.1").outcome))
        for _ in range(6)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    assert outcomes.count(LIMITED) == 4  # two of one address wait; the rest answered at once
    other = threading.Thread(target=lambda: outcomes.append(
        verifier.check(basic("alice", b"guess2"), "10.0.0.2").outcome))  # fmt: skip
    other.start()
    time.sleep(0.1)
    release.set()
    for thread in [*threads, other]:
        thread.join(5)
    assert most[0] == 1  # never two bcrypt checks at once
    assert outcomes.count(DENIED) == 3  # 10.0.0.2 was not refused for 10.0.0.1's guesses


def test_an_unknown_name_costs_a_check_as_a_known_one(clock, monkeypatch):
    verifier = Verifier(HASHES, clock=clock)
    checked = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda p, h: checked.append(h) or real(p, h))
    assert verifier.check(basic("mallory", PASSWORD), "10.0.0.1").outcome == DENIED
    assert len(checked) == 1 and checked[0] != HASHES["alice"]
    assert checked[0][:7] == HASHES["alice"][:7]  # the decoy has the users' cost
