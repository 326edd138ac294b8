"""The proxy in front of the local product: ``make up`` with PROXY_USERS set.

The same program and nginx template as the compose stack's proxy (``python -m etl.proxy``), run
with Debian's nginx: HTTPS on 127.0.0.1:PROXY_PORT (8443; PROXY_BIND opens it to a network), a
login before producto, luigid, Spark's history server and the operations console (when its
address is given; else ``/console/`` answers 404). The local product runs Spark without a master,
so ``/spark/`` answers 404. Its certificate, nginx.conf and access log are in ``RUN_DIR/proxy/``,
its log in ``RUN_DIR/logs/proxy.log``.
"""

from __future__ import annotations

import os
import shutil
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from etl.tools import localconsole
from etl.tools.ports import HOST
from etl.tools.services import LocalStackError, Service, run_dir

PROXY = Service("proxy", marker="etl.proxy")


def wanted() -> bool:
    """Whether `make up` starts the proxy: PROXY_USERS is set."""
    return bool(os.environ.get("PROXY_USERS", "").strip())


def nginx() -> str:
    """nginx's path, or a LocalStackError that says how to get it."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )
    if not found:
        raise LocalStackError(
            "nothing started: PROXY_USERS is set, so `make up` starts the proxy, which needs "
            "nginx: install it (Debian: apt-get install nginx-light), or unset PROXY_USERS."
        )
    return found


def environment(
    port: int, producto: str, luigid: str, history: str, console: str | None = None
) -> dict[str, str]:
    """The proxy's settings for the local product's servers (``http://host:port`` each); the
    console's route answers 404 when its address is None."""
    home = run_dir() / "proxy"
    given = os.environ
    return {
        "PROXY_USERS": given["PROXY_USERS"],
        "PROXY_LISTEN": f"{given.get('PROXY_BIND') or HOST}:{port}",
        "PROXY_PUBLIC_PORT": str(port),
        "PROXY_HOSTNAME": given.get("PROXY_HOSTNAME") or "localhost",
        "PROXY_PRODUCTO": urlsplit(producto).netloc,
        "PROXY_LUIGID": urlsplit(luigid).netloc,
        "PROXY_SPARK": "off",
        "PROXY_HISTORY": urlsplit(history).netloc,
        "PROXY_CONSOLE": urlsplit(console).netloc if console else "off",
        "PROXY_CONSOLE_KEY": localconsole.proxy_key() if console else "",
        "PROXY_RUN_DIR": str(home / "run"),
        "PROXY_STATE_DIR": str(home / "tls"),
        "PROXY_LOG_DIR": str(home / "logs"),
        "PROXY_TLS_DIR": given.get("PROXY_TLS_DIR") or str(home / "own-tls"),
        "PROXY_NGINX": nginx(),
    }


def start(port: int, producto: str, luigid: str, history: str, console: str | None = None) -> str:
    """The proxy in front of the given servers, unless it runs; its address."""
    settings = environment(port, producto, luigid, history, console)
    address = f"https://{settings['PROXY_HOSTNAME']}:{port}"
    if PROXY.running_pid() is None:
        PROXY.address = address
    PROXY.start(
        [sys.executable, "-m", "etl.proxy"], dict(os.environ, **settings), lambda: _asks(port)
    )
    return PROXY.recorded_address() or address


def _asks(port: int) -> bool:
    """Whether the proxy answers over TLS and asks for a login (401)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # its own self-signed certificate, checked by its tests
    try:
        urllib.request.urlopen(f"https://{HOST}:{port}/", timeout=3, context=context)
    except urllib.error.HTTPError as err:
        return err.code == 401
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False
    return False
