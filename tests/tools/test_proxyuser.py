"""``python -m etl.tools.proxyuser NAME``: the PROXY_USERS entry of a user, a bcrypt hash."""

from __future__ import annotations

import bcrypt
import pytest

from etl.tools import proxyuser


def test_the_entry_holds_a_bcrypt_hash_of_the_password_and_never_the_password():
    line = proxyuser.entry("alice@example.org", "a long passphrase")
    name, hashed = line.split(":", 1)
    assert name == "alice@example.org" and "passphrase" not in line
    assert hashed.startswith("$2b$12$") and len(hashed) == 60
    assert bcrypt.checkpw(b"a long passphrase", hashed.encode())
    assert not bcrypt.checkpw(b"a long passphrasE", hashed.encode())


@pytest.mark.parametrize(
    "name, password, says",
    [
        ("al ice", "a long passphrase", "a user name may hold"),
        ("alice:x", "a long passphrase", "a user name may hold"),
        ("alice", "short", "at least 12 characters"),
        ("alice", "x" * 73, "72 bytes"),
    ],
)
def test_bad_names_and_passwords_are_refused(name, password, says):
    with pytest.raises(ValueError, match=says):
        proxyuser.entry(name, password)


def test_the_command_asks_twice_and_prints_only_the_entry(monkeypatch, capsys):
    answers = iter(["a long passphrase", "a long passphrase"])
    monkeypatch.setattr(proxyuser.getpass, "getpass", lambda prompt: next(answers))
    assert proxyuser.main(["bob"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("bob:$2b$12$") and "passphrase" not in out + err
    assert "single quotes" in err

    answers = iter(["a long passphrase", "another passphrase"])
    assert proxyuser.main(["bob"]) == 1
    assert "the two passwords differ" in capsys.readouterr().err
