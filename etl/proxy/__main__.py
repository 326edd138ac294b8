"""Start the proxy: check the users, find or make the certificate, render nginx.conf, start the
login verifier, then run nginx until a signal stops both.

    python -m etl.proxy          # the proxy image's entrypoint is this, as ufo-proxy

Settings (environment; docs/how-to/run-for-a-team.md):
    PROXY_USERS          "NAME:BCRYPT-HASH" entries separated by spaces or new lines (required)
    PROXY_LISTEN         PORT or ADDRESS:PORT nginx listens on (default 8443)
    PROXY_HOSTNAME       the name users reach it by; in a self-signed certificate (localhost)
    PROXY_PUBLIC_PORT    the port users reach it on, when not PROXY_LISTEN's (compose's PROXY_PORT)
    PROXY_RATE           requests per second per client address, bursts of 200 (default 20)
    PROXY_PRODUCTO, PROXY_LUIGID, PROXY_SPARK, PROXY_HISTORY, PROXY_CONSOLE
                         HOST:PORT of each service, or off (or empty); producto cannot be off
    PROXY_LOGIN_CACHE_SECONDS, PROXY_LOGIN_FAILURES, PROXY_LOGIN_WINDOW_SECONDS   the verifier
    PROXY_TLS_DIR        tls.crt and tls.key of your own (default /etc/ufo-proxy/tls)
    PROXY_RUN_DIR, PROXY_STATE_DIR, PROXY_LOG_DIR, PROXY_TEMPLATE, PROXY_NGINX
                         where it writes and what it runs (defaults: the image's paths)

Nothing secret is printed: user names, yes; hashes, never.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from . import config, users
from .verifier import Verifier, VerifierServer


def say(message: str) -> None:
    print(f"ufo-proxy: {message}", file=sys.stderr, flush=True)


def certificate(settings: config.Settings) -> tuple[Path, Path]:
    """(certificate, key): the user's in PROXY_TLS_DIR, else a self-signed one made once."""
    own_cert, own_key = settings.tls_dir / "tls.crt", settings.tls_dir / "tls.key"
    if own_cert.is_file() and own_key.is_file():
        say(f"TLS: the certificate in {settings.tls_dir}")
        return own_cert, own_key
    cert, key = settings.state_dir / "tls.crt", settings.state_dir / "tls.key"
    if cert.is_file() and key.is_file():
        say(f"TLS: the self-signed certificate made earlier (kept in {settings.state_dir})")
        return cert, key
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    names = [f"DNS:{settings.hostname}", "DNS:localhost", "IP:127.0.0.1"]
    alt = ",".join(dict.fromkeys(names))  # once each, when the host name is localhost
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:3072", "-sha256", "-days", "825", "-nodes",
         "-subj", f"/CN={settings.hostname}", "-addext", f"subjectAltName={alt}",
         "-keyout", f"{key}.new", "-out", f"{cert}.new"],
        check=True, capture_output=True,
    )  # fmt: skip
    os.chmod(f"{key}.new", 0o600)
    os.replace(f"{key}.new", key)
    os.replace(f"{cert}.new", cert)
    say(
        f"TLS: made a self-signed certificate for {settings.hostname} (put your own in PROXY_TLS_DIR)"
    )
    return cert, key


def fingerprint(cert: Path) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return out.strip().split("=", 1)[1]


def prepare(settings: config.Settings, verifier: str) -> Path:
    """nginx.conf written into the run directory, checked by ``nginx -t``; its path."""
    for folder in (settings.run_dir, settings.log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    cert, key = certificate(settings)
    say(f"TLS certificate SHA-256 fingerprint: {fingerprint(cert)}")
    conf = settings.run_dir / "nginx.conf"
    conf.write_text(config.render(settings, cert, key, verifier, as_root=os.geteuid() == 0))
    checked = subprocess.run(
        [settings.nginx, "-t", "-q", "-e", "stderr", "-c", str(conf)],
        capture_output=True, text=True,
    )  # fmt: skip
    if checked.returncode:
        raise config.SettingsError(f"nginx refused its configuration:\n{checked.stderr.strip()}")
    return conf


def serve(settings: config.Settings, conf: Path, server: VerifierServer) -> int:
    """Run nginx beside the verifier until a signal or nginx's end; nginx's exit status."""
    # nginx first, then the verifier's thread (its socket already listens): a child is best
    # started before threads exist.
    nginx = subprocess.Popen(
        [settings.nginx, "-e", "stderr", "-c", str(conf), "-g", "daemon off;"],
        preexec_fn=_end_with_parent,
    )
    server.serve_in_background()
    stopping = threading.Event()

    def stop(signum, _frame) -> None:
        # SIGQUIT is nginx's graceful stop: requests under way are answered first.
        stopping.set()
        if nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)

    def reload(_signum, _frame) -> None:
        if nginx.poll() is None:
            nginx.send_signal(signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    where = settings.listen if ":" in settings.listen else f"port {settings.listen}"
    say(f"listening on {where} (HTTPS only), https://{settings.public_host}/")
    try:
        code = nginx.wait(timeout=None)
        while nginx.poll() is None:  # pragma: no cover (wait returns when nginx has ended)
            code = nginx.wait()
    finally:
        server.shutdown()
        server.server_close()
    if stopping.is_set():
        say("stopped")
        return 0
    say(f"nginx ended by itself (exit {code})")
    return code or 1


def _end_with_parent() -> None:
    """In nginx's process before it starts: SIGTERM it when this program ends, even by SIGKILL
    (Linux's PR_SET_PDEATHSIG), so that no nginx outlives the verifier it asks."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: `make stop` and `docker stop` still end both


def main() -> int:
    try:
        settings = config.load()
        known = users.parse(settings.users)
        say(f"users: {' '.join(sorted(known))}")
        verifier = Verifier(known, settings.cache_seconds, settings.failures, settings.window)
        server = VerifierServer(verifier)
        conf = prepare(settings, server.address)
    except (config.SettingsError, users.UsersError) as err:
        say(f"error: {err}")
        return 2
    except (OSError, subprocess.CalledProcessError) as err:
        say(f"error: {err}")
        return 1
    return serve(settings, conf, server)


if __name__ == "__main__":
    sys.exit(main())
