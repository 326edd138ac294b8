"""nginx.conf as the proxy renders it: the rules that keep every route the same, checked on the
file itself, and settings that cannot carry anything into it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from etl.proxy import config
from etl.tools import localproxy
from tests.proxy.support import ALLOWED_UPSTREAM

KEY = "Qe0-kp_4" * 5
ENV = {"PROXY_USERS": "x", "PROXY_HOSTNAME": "ufo.example.org", "PROXY_PUBLIC_PORT": "443",
       "PROXY_CONSOLE": "console:8090", "PROXY_CONSOLE_KEY": KEY}  # fmt: skip


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
    assert len(locations) == 13
    own = [head for head, body in locations if "proxy_set_header" in body]
    assert own == ["= /_verify"], own
    # ...and the shared ones are in http {}, where every location inherits them.
    [(_, http)] = blocks(_rendered(), "http")
    assert "proxy_pass_request_headers off;" in http.split("server {")[0]
    assert "proxy_set_header Authorization" not in http.split("server {")[0]


def test_no_location_adds_response_headers_or_redirect_rules_of_its_own():
    for directive in ("add_header", "proxy_redirect", "proxy_hide_header"):
        assert [head for head, body in blocks(_rendered(), "location") if directive in body] == []


def test_the_headers_sent_upstream_are_the_allowlist_and_name_the_verifiers_user():
    [(_, http)] = blocks(_rendered(), "http")
    shared = dict(
        re.findall(r"^\s*proxy_set_header (\S+) ([^;]*);", http.split("server {")[0], re.M)
    )
    # What an upstream may receive (tests/proxy/support.py), but the Content-Length of a body.
    assert {name.lower() for name in shared} == ALLOWED_UPSTREAM - {"content-length"}
    assert shared["X-Ufo-User"] == "$ufo_user"
    assert shared["X-Forwarded-Prefix"] == "$ufo_forwarded_prefix"
    # $ufo_user is the verifier's answer and nothing else: set once, from the verifier's header.
    setting = re.findall(r"^\s*(\w+)\s+\$ufo_user\s+([^;{]*);", http, re.M)
    assert setting == [("auth_request_set", "$upstream_http_x_ufo_user")], setting
    assert not re.search(r"\bmap\s+\S+\s+\$ufo_user\b", http)
    # No client header passes by another way.
    assert "$http_x_ufo_user" not in http and "$http_x_forwarded" not in http
    for passes in ("proxy_pass_request_headers on", "underscores_in_headers", "ignore_invalid"):
        assert passes not in http, passes


def test_every_proxied_location_is_read_only_but_productos_the_consoles_and_the_verifiers():
    allowed = {}
    for head, body in blocks(_rendered(), "location"):
        if "proxy_pass" not in body or head in ("/", "= /_verify"):
            continue
        [methods] = re.findall(r"limit_except ([^{]*)\{", body) or [""]
        allowed[head] = methods.split()
        assert "deny all;" in body, head
    assert allowed.pop("/console/") == ["GET", "HEAD", "POST"]
    assert allowed and all(methods == ["GET", "HEAD"] for methods in allowed.values()), allowed


def test_the_console_is_behind_the_proxy_only_when_its_address_is_set():
    text = _rendered({"PROXY_CONSOLE": "127.0.0.1:8090"})
    assert "upstream console {\n        server 127.0.0.1:8090;" in text
    routes = dict(blocks(text, "location"))
    assert "return 301 /console/;" in routes["= /console"]
    assert "proxy_pass http://console/;" in routes["/console/"]
    assert "~^/console/  /console;" in text and "~^/console/         /console/;" in text
    assert "upstream console" in _rendered()  # compose's default: console:8090
    assert "server console:8090;" in _rendered()
    for off in ("off", "", " off "):
        text = _rendered({"PROXY_CONSOLE": off})
        assert "upstream console" not in text and "http://console/" not in text, off
        routes = dict(blocks(text, "location"))
        assert routes["/console/"].strip() == "proxy_pass http://verifier/absent/console/;"
        assert "return 301 /console/;" in routes["= /console"]
        assert "@CONSOLE@" not in text


def test_the_local_products_proxy_puts_the_console_behind_it_when_given(monkeypatch):
    monkeypatch.setenv("PROXY_USERS", "x")
    monkeypatch.setattr(localproxy, "nginx", lambda: "/usr/sbin/nginx")
    servers = ("http://127.0.0.1:8000", "http://127.0.0.1:8082", "http://127.0.0.1:18080")
    given = localproxy.environment(8443, *servers, console="http://127.0.0.1:8090")
    assert given["PROXY_CONSOLE"] == "127.0.0.1:8090"
    assert config.load(given).upstreams["CONSOLE"] == "127.0.0.1:8090"
    assert localproxy.environment(8443, *servers)["PROXY_CONSOLE"] == "off"
    assert config.load(localproxy.environment(8443, *servers)).upstreams["CONSOLE"] is None


def test_the_consoles_key_is_sent_on_its_route_only():
    text = _rendered()
    [(_, http)] = blocks(text, "http")
    shared = dict(
        re.findall(r"^\s*proxy_set_header (\S+) ([^;]*);", http.split("server {")[0], re.M)
    )
    assert shared["X-Ufo-Proxy-Key"] == "$ufo_console_key"
    [(_, mapped)] = [(h, b) for h, b in blocks(text, "map") if "$ufo_console_key" in h]
    assert re.findall(r"^\s*(\S+)\s+(\S+);", mapped, re.M) == [("~^/console/", f'"{KEY}"'),
                                                              ("default", '""')]  # fmt: skip
    assert text.count(KEY) == 1
    off = _rendered({"PROXY_CONSOLE": "off", "PROXY_CONSOLE_KEY": ""})
    [(_, mapped)] = [(h, b) for h, b in blocks(off, "map") if "$ufo_console_key" in h]
    assert re.findall(r"^\s*(\S+)\s+(\S+);", mapped, re.M) == [("default", '""')]


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
        ("PROXY_CONSOLE", "console:8090; proxy_set_header X-Ufo-User admin"),
        ("PROXY_CONSOLE", "http://console:8090"),
        ("PROXY_CONSOLE_KEY", ""),
        ("PROXY_CONSOLE_KEY", "too-short"),
        ("PROXY_CONSOLE_KEY", KEY + '"; proxy_set_header X-Ufo-User admin; #'),
        ("PROXY_CONSOLE_KEY", KEY + "\n}"),
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


def test_the_console_is_off_unless_given():
    """The compose stack does not run the console yet: its route answers 404 there."""
    settings = config.load({k: v for k, v in ENV.items() if k != "PROXY_CONSOLE"})
    assert settings.upstreams["CONSOLE"] is None
