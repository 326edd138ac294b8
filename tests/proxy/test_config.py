"""nginx.conf as the proxy renders it: the rules that keep every route the same, checked on the
file itself, and settings that cannot carry anything into it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from etl.proxy import config

ENV = {"PROXY_USERS": "x", "PROXY_HOSTNAME": "ufo.example.org", "PROXY_PUBLIC_PORT": "443"}


def _rendered(env: dict[str, str] | None = None, as_root: bool = False) -> str:
    settings = config.load({**ENV, **(env or {})})
    return config.render(settings, Path("/c.crt"), Path("/c.key"), "127.0.0.1:9", as_root)


def blocks(text: str, kind: str) -> list[tuple[str, str]]:
    """(head, body) of every ``kind`` block (e.g. location), nested blocks included in body."""
    text = re.sub(r"#[^\n]*", "", text)
    found = []
    for match in re.finditer(rf"\b{kind}\b([^{{;]*)\{{", text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        found.append((match.group(1).strip(), text[match.end() : i - 1]))
    return found


def test_no_location_sets_upstream_headers_of_its_own_but_the_verifiers():
    locations = blocks(_rendered(), "location")
    assert len(locations) == 11
    own = [head for head, body in locations if "proxy_set_header" in body]
    assert own == ["= /_verify"], own
    # ...and the shared ones are in http {}, where every location inherits them.
    [(_, http)] = blocks(_rendered(), "http")
    assert "proxy_pass_request_headers off;" in http.split("server {")[0]
    assert "proxy_set_header Authorization" not in http.split("server {")[0]


def test_no_location_adds_response_headers_or_redirect_rules_of_its_own():
    for directive in ("add_header", "proxy_redirect", "proxy_hide_header"):
        assert [head for head, body in blocks(_rendered(), "location") if directive in body] == []


def test_every_proxied_location_is_read_only_but_productos_and_the_verifiers():
    for head, body in blocks(_rendered(), "location"):
        if "proxy_pass" not in body or head in ("/", "= /_verify"):
            continue
        assert "limit_except GET HEAD" in body, head


def test_the_public_host_and_tls_settings_are_the_ones_given():
    text = _rendered()
    assert "proxy_set_header Host ufo.example.org;" in text  # port 443 is not written
    assert "https://ufo.example.org$request_uri" in text
    assert "ssl_prefer_server_ciphers on;" in text and "ssl_session_tickets off;" in text
    assert "user nobody nogroup;" in _rendered(as_root=True) and "user " not in text.split("\n")[0]


def test_a_service_switched_off_answers_404_and_has_no_upstream():
    text = _rendered({"PROXY_SPARK": "off", "PROXY_HISTORY": ""})
    assert "spark_master" not in text and "spark_history" not in text
    assert "proxy_pass http://verifier/absent/Spark-master/;" in text
    assert "proxy_pass http://verifier/absent/Spark-history-server/;" in text
    assert "upstream luigid" in text


@pytest.mark.parametrize(
    "name, value",
    [
        ("PROXY_PRODUCTO", "producto:8000; return 200"),
        ("PROXY_PRODUCTO", "off"),
        ("PROXY_LUIGID", "luigid:8082\n}"),
        ("PROXY_HOSTNAME", "evil.example; add_header X 1"),
        ("PROXY_HOSTNAME", "-bad"),
        ("PROXY_LISTEN", "8443 default_server"),
        ("PROXY_LISTEN", "70000"),
        ("PROXY_RATE", "20r/s"),
        ("PROXY_PUBLIC_PORT", "0"),
        ("PROXY_LOGIN_FAILURES", "many"),
    ],
)
def test_a_setting_that_would_carry_anything_into_the_file_is_refused(name, value):
    with pytest.raises(config.SettingsError, match=name):
        config.load({**ENV, name: value})
