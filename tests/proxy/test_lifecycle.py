"""The proxy's program as a process: it refuses to start on bad users or settings with the
message that says what to fix, keeps its certificate, serves a stack without some services,
and stops on SIGTERM with nginx and the verifier gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.proxy.conftest import USER
from tests.proxy.support import request
from tests.support import REPO


def _run_once(proxy, timeout: int = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "etl.proxy"], cwd=REPO, env=proxy.env, capture_output=True,
        text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize(
    "users, says",
    [
        ("", "PROXY_USERS is empty"),
        (
            "alice:plain-password",
            "PROXY_USERS: the password hash of user alice is not a bcrypt hash",
        ),
        ("alice:$2b$12$tooshort", "PROXY_USERS: the password hash of user alice is cut short"),
    ],
)
def test_it_refuses_to_start_on_bad_users_and_says_why(another_proxy, users, says):
    proxy = another_proxy(PROXY_USERS=users)
    done = _run_once(proxy)
    assert done.returncode == 2
    assert f"ufo-proxy: error: {says}" in done.stderr, done.stderr
    assert "plain-password" not in done.stderr


def test_it_refuses_a_setting_it_cannot_use(another_proxy):
    done = _run_once(another_proxy(PROXY_LUIGID="luigid:8082;evil"))
    assert done.returncode == 2 and "PROXY_LUIGID='luigid:8082;evil'" in done.stderr


def test_it_stops_on_sigterm_with_nginx_and_keeps_its_certificate(another_proxy):
    proxy = another_proxy()
    proxy.start()
    assert request(proxy.target(), "/").status == 200
    pid = int((proxy.tmp / "run" / "nginx.pid").read_text())
    crt = (proxy.tmp / "state" / "tls.crt").read_bytes()
    assert proxy.stop() == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), "nginx outlived the proxy"
    log = proxy.log.read_text()
    assert "ufo-proxy: stopped" in log and "made a self-signed certificate" in log
    proxy.start()  # again: the same certificate
    assert (proxy.tmp / "state" / "tls.crt").read_bytes() == crt
    assert "the self-signed certificate made earlier" in proxy.log.read_text()
    proxy.stop()


def test_nginx_ends_when_the_program_is_killed(another_proxy):
    proxy = another_proxy()
    proxy.start()
    pid = int((proxy.tmp / "run" / "nginx.pid").read_text())
    proxy.process.kill()  # SIGKILL: no handler runs
    proxy.process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), "nginx outlived the program that runs its login verifier"


def test_a_certificate_of_ones_own_is_used(another_proxy, tmp_path):
    proxy = another_proxy()
    tls = proxy.tmp / "tls"
    tls.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=own.example", "-keyout", str(tls / "tls.key"),
         "-out", str(tls / "tls.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    proxy.start()
    import ssl

    served = ssl.get_server_certificate(("127.0.0.1", proxy.port), timeout=10)
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(
        (tls / "tls.crt").read_text()
    )
    assert not (proxy.tmp / "state" / "tls.crt").exists()
    proxy.stop()


def test_a_stack_without_spark_serves_the_rest_and_says_what_is_missing(another_proxy):
    proxy = another_proxy(PROXY_SPARK="off", PROXY_HISTORY="off", PROXY_CONSOLE="off")
    proxy.start()
    target = proxy.target()
    assert request(target, "/").status == 200
    assert request(target, "/luigi/api/task_list").status == 200
    missing = request(target, "/spark/")
    assert missing.status == 404 and b"no Spark-master behind this proxy" in missing.body
    assert request(target, "/history/", login=(USER, "wrong")).status == 401  # login first
    for method in ("GET", "POST"):
        console = request(
            target, "/console/runs", method=method, body=b"" if method == "POST" else None
        )
        assert console.status == 404 and b"no console behind this proxy" in console.body, method
        assert request(target, "/console/", method=method, login=False).status == 401, method
    assert request(target, "/console").header("Location") == "/console/"
    assert proxy.recorders["PROXY_CONSOLE"].seen == []
    proxy.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
