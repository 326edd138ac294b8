"""The proxy's settings, read from the environment once, and nginx.conf rendered from them.

Every value that goes into nginx's configuration is checked first (a host, a port, a number),
so that no setting can carry a ``;`` or a new line into the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: The template beside the package in a checkout; the image puts it at /etc/ufo-proxy.
_CHECKOUT_TEMPLATE = Path(__file__).resolve().parents[2] / "docker-images/proxy/nginx.conf.template"
_IMAGE_TEMPLATE = Path("/etc/ufo-proxy/nginx.conf.template")
HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
UPSTREAM = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}")
#: The key the proxy sends the console (X-Ufo-Proxy-Key) so that it knows a request is the
#: proxy's: long and random, and safe in nginx's configuration.
CONSOLE_KEY = re.compile(r"[A-Za-z0-9_-]{32,256}")
CONSOLE_KEY_RULE = "32 to 256 letters, digits, '-' or '_' (e.g. `openssl rand -hex 24`)"
LISTEN = re.compile(r"((\[[0-9A-Fa-f:.]+\]|[0-9.]+|[A-Za-z0-9.-]+):)?(\d{1,5})")
#: The services behind the proxy: (setting, default in the compose stack, template section).
SERVICES = (
    ("PROXY_PRODUCTO", "producto:8000", "PRODUCTO"),
    ("PROXY_LUIGID", "luigid:8082", "LUIGID"),
    ("PROXY_SPARK", "spark-master:8080", "SPARK"),
    ("PROXY_HISTORY", "spark-history:18080", "HISTORY"),
    # Off unless given (with PROXY_CONSOLE_KEY, the key the console wants from the proxy).
    ("PROXY_CONSOLE", "", "CONSOLE"),
)


class SettingsError(ValueError):
    """A PROXY_ setting that cannot be used; the message names it and says what is expected."""


@dataclass(frozen=True)
class Settings:
    """Everything the proxy reads from its environment."""

    users: str
    listen: str  # PORT or ADDRESS:PORT, as nginx's listen takes it
    hostname: str
    public_port: int
    rate: int
    upstreams: dict[str, str | None]  # template section -> host:port, None when switched off
    console_key: str | None  # sent to the console only (X-Ufo-Proxy-Key)
    template: Path
    run_dir: Path
    state_dir: Path
    tls_dir: Path
    log_dir: Path
    nginx: str
    cache_seconds: float
    failures: int
    window: float

    @property
    def public_host(self) -> str:
        """Host[:port] as users reach the proxy: what upstreams are told, and redirects name."""
        return self.hostname if self.public_port == 443 else f"{self.hostname}:{self.public_port}"


def _number(env: dict[str, str], name: str, default: str, kind: type, low: float, high: float):
    text = env.get(name, "") or default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(f"{name}={text!r}: expected a number from {low} to {high}")
    return value


def load(env: dict[str, str] | None = None) -> Settings:
    """The settings in ``env`` (default: the process's environment); SettingsError if one is bad."""
    env = dict(os.environ if env is None else env)
    listen = env.get("PROXY_LISTEN", "") or "8443"
    matched = LISTEN.fullmatch(listen)
    if not matched or not 1 <= int(matched.group(3)) <= 65535:
        raise SettingsError(f"PROXY_LISTEN={listen!r}: expected PORT or ADDRESS:PORT")
    hostname = env.get("PROXY_HOSTNAME", "") or "localhost"
    if not HOST.fullmatch(hostname):
        raise SettingsError(
            f"PROXY_HOSTNAME={hostname!r}: expected a host name, e.g. ufo.example.org"
        )
    upstreams: dict[str, str | None] = {}
    for name, default, section in SERVICES:
        value = env.get(name, default).strip()
        if value in ("", "off"):
            upstreams[section] = None
        elif UPSTREAM.fullmatch(value):
            upstreams[section] = value
        else:
            raise SettingsError(f"{name}={value!r}: expected HOST:PORT, or off")
    if upstreams["PRODUCTO"] is None:
        raise SettingsError(
            "PROXY_PRODUCTO is off: producto is the proxy's home page; give HOST:PORT"
        )
    console_key = env.get("PROXY_CONSOLE_KEY", "").strip() or None
    if upstreams["CONSOLE"] is not None and not (
        console_key and CONSOLE_KEY.fullmatch(console_key)
    ):
        raise SettingsError(
            "PROXY_CONSOLE is on but PROXY_CONSOLE_KEY is not a key: give the console's "
            f"UFO_CONSOLE_PROXY_KEY, {CONSOLE_KEY_RULE}"
        )
    # A checkout's own template first: the image has none beside the package, only its own.
    template = Path(env.get("PROXY_TEMPLATE", "") or (
        _CHECKOUT_TEMPLATE if _CHECKOUT_TEMPLATE.exists() else _IMAGE_TEMPLATE
    ))  # fmt: skip
    return Settings(
        users=env.get("PROXY_USERS", ""),
        listen=listen,
        hostname=hostname,
        public_port=_number(env, "PROXY_PUBLIC_PORT", matched.group(3), int, 1, 65535),
        rate=_number(env, "PROXY_RATE", "20", int, 1, 100_000),
        upstreams=upstreams,
        console_key=console_key if upstreams["CONSOLE"] else None,
        template=template,
        run_dir=Path(env.get("PROXY_RUN_DIR", "") or "/run/ufo-proxy"),
        state_dir=Path(env.get("PROXY_STATE_DIR", "") or "/var/lib/ufo-proxy"),
        tls_dir=Path(env.get("PROXY_TLS_DIR", "") or "/etc/ufo-proxy/tls"),
        log_dir=Path(env.get("PROXY_LOG_DIR", "") or "/var/log/ufo-proxy"),
        nginx=env.get("PROXY_NGINX", "") or "nginx",
        cache_seconds=_number(env, "PROXY_LOGIN_CACHE_SECONDS", "300", float, 0, 86_400),
        failures=_number(env, "PROXY_LOGIN_FAILURES", "10", int, 1, 10_000),
        window=_number(env, "PROXY_LOGIN_WINDOW_SECONDS", "60", float, 1, 86_400),
    )


def render(settings: Settings, cert: Path, key: Path, verifier: str, as_root: bool) -> str:
    """nginx.conf: the template's @NAME@ placeholders filled, sections of absent services cut.

    A section is the lines between ``#@if NAME`` and ``#@end NAME``; ``#@else NAME`` gives what
    stands in when the service is off."""
    text = settings.template.read_text()
    for section, upstream in settings.upstreams.items():
        text = _section(text, section, keep=upstream is not None)
        if upstream:
            text = text.replace(f"@{section}@", upstream)
    if settings.console_key:
        text = text.replace("@CONSOLE_KEY@", settings.console_key)
    values = {
        # nginx started as root runs its workers as nobody; as anyone else, as that user.
        "USER": "user nobody nogroup;" if as_root else "",
        "LISTEN": settings.listen,
        "PUBLIC_HOST": settings.public_host,
        "RATE": str(settings.rate),
        "CERT": str(cert),
        "KEY": str(key),
        "RUN": str(settings.run_dir),
        "LOGS": str(settings.log_dir),
        "VERIFIER": verifier,
    }
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise SettingsError(f"{settings.template}: placeholders with no value: {sorted(set(left))}")
    return text


def _section(text: str, name: str, keep: bool) -> str:
    pattern = re.compile(
        rf"^[ \t]*#@if {name}\n(.*?)(?:^[ \t]*#@else {name}\n(.*?))?^[ \t]*#@end {name}\n",
        re.S | re.M,
    )
    return pattern.sub(lambda m: m.group(1) if keep else (m.group(2) or ""), text)
