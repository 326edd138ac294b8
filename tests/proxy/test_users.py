"""PROXY_USERS parsed as the proxy and check-env read it: each malformed entry refused with the
message that names its problem, and never the hash or a password."""

from __future__ import annotations

import bcrypt
import pytest

from etl.proxy import users
from etl.tools import proxyuser

ALICE = proxyuser.entry("alice", "a long passphrase")
HASH = ALICE.split(":", 1)[1]
BOB = proxyuser.entry("bob.k@example.org", "another passphrase")


def test_users_parse_into_names_and_hashes_that_check_their_passwords():
    parsed = users.parse(f"{ALICE}\n  {BOB}\t")
    assert sorted(parsed) == ["alice", "bob.k@example.org"]
    assert bcrypt.checkpw(b"a long passphrase", parsed["alice"])


def _edited_end(hashed: str) -> str:
    # The last character carries two unused bits: 'Z' sets them, which bcrypt never does.
    return hashed[:-1] + "Z"


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "PROXY_USERS is empty"),
        (f"alice:{HASH[:-1]}", "is cut short (59 characters"),
        (f"alice:{HASH}x", "is too long (61 characters"),
        ("alice:my-Secret-pw", "is not a bcrypt hash ($2b$"),
        (f"alice:$2b$99${HASH[7:]}", "has the cost 99"),
        (f"alice:$2b$03${HASH[7:]}", "has the cost 03"),
        (f"alice:$2z$12${HASH[7:]}", "must start with $2b$"),
        (f"alice:{HASH[:29]}!{HASH[30:]}", "not in bcrypt's alphabet"),
        (f"alice:{_edited_end(HASH)}", "does not end as bcrypt's do"),
        (f"{ALICE} {ALICE}", "user alice is listed twice"),
        (f"{ALICE} alice:{BOB.split(':', 1)[1]}", "user alice is listed twice"),
        (f"al ice:{HASH}", "entry 1 has no ':HASH' after the user name"),
        (f"al:ice:{HASH}", "a user name may not hold ':'"),
        (f"al/ice:{HASH}", "a user name may hold letters, digits and . _ @ - only"),
        (f"ålice:{HASH}", "a user name may hold letters, digits and . _ @ - only"),
        (HASH, "starts with a '$', not a user name"),
    ],
)
def test_a_malformed_entry_is_refused_with_what_to_fix(text, says):
    with pytest.raises(users.UsersError) as refused:
        users.parse(text)
    message = str(refused.value)
    assert says in message, message
    assert "my-Secret-pw" not in message and HASH[7:] not in message


def test_every_problem_is_listed_once_for_check_env():
    found = users.problems(f"{ALICE} bob:plain-password {ALICE} carol:{HASH[:20]}")
    assert len(found) == 3, found
    assert "bob" in found[0] and "listed twice" in found[1] and "carol" in found[2]
    assert users.problems(f"{ALICE} {BOB}") == []


def test_bcrypts_own_hashes_of_every_version_and_cost_are_accepted():
    for cost in (4, 10, 13):
        hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=cost)).decode()
        for version in ("2a", "2b", "2y"):
            assert users.bcrypt_problem(f"${version}{hashed[3:]}") is None
