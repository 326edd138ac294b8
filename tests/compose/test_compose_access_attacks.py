"""The proxy's promises tried on the running stack (its image, the real services behind it),
with the attacks of tests/proxy (which try every route outside Docker): TLS suites, a flood of
wrong logins, luigid's state changes, forged cross-site requests and forwarding headers."""

from __future__ import annotations

import json

import pytest

from tests.compose.support import LUIGID_PORT, PROXY_PASSWORD, PROXY_PORT, PROXY_USER, get_json
from tests.proxy.support import (
    FORGED,
    LUIGID_WRITES,
    STRONG_TLS12,
    Target,
    flood_of_wrong_logins,
    request,
    session_ticket_issued,
    tls12_suites_accepted,
)

pytestmark = [pytest.mark.compose, pytest.mark.shared_data, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def target(stack) -> Target:
    return Target(port=PROXY_PORT, user=PROXY_USER, password=PROXY_PASSWORD)


def test_tls12_offers_only_forward_secret_aead_suites(target):
    offered, accepted = tls12_suites_accepted(target)
    assert len(offered) > 30 and accepted and set(accepted) <= STRONG_TLS12, accepted
    assert not session_ticket_issued(target)


def test_a_flood_of_wrong_logins_leaves_others_answered(target):
    seen = flood_of_wrong_logins(target, "/api/v1/runs", parallel=16)
    assert all(status == 200 for status, _ in seen["logged_in"]), seen
    assert max(seconds for _, seconds in seen["logged_in"]) < 1.0, seen
    assert seen["newcomer"][0] == 200 and seen["newcomer"][1] < 1.5, seen


def test_luigids_state_cannot_be_changed_through_the_proxy(target):
    before = get_json(f"http://127.0.0.1:{LUIGID_PORT}/api/worker_list")
    for call in LUIGID_WRITES:
        assert request(target, f"/luigi/api/{call}?data=%7B%7D").status == 403, call
    # A worker disabled through the proxy would show here; the read calls still pass.
    workers = json.loads(request(target, "/luigi/api/worker_list").body)["response"]
    assert [w.get("state") for w in workers] == [w.get("state") for w in before["response"]]
    assert all(w.get("state") != "disabled" for w in workers)


def test_a_forged_cross_site_request_is_refused(target):
    for path in ("/api/v1/runs", "/luigi/api/task_list", "/spark/app/kill/", "/history/"):
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            answer = request(target, path, method="POST", headers=headers, body=b"id=x")
            assert answer.status == 403, (path, headers, answer.status)
    # The Spark master's kill buttons are POSTs too: refused through the proxy even when sent
    # from the proxy's own pages.
    assert request(target, "/spark/app/kill/?id=x&terminate=true", method="POST",
                   body=b"").status == 403  # fmt: skip


def test_producto_sees_the_proxys_forwarding_headers_not_the_clients(stack, target):
    marker = "/api/v1/runs?limit=3&forged=1"
    assert request(target, marker, headers=FORGED).status == 200
    logs = stack.compose("logs", "--no-color", "--tail", "200", "producto").stdout
    assert "forged=1" in logs, logs[-2000:]
    assert "6.6.6.6" not in logs
