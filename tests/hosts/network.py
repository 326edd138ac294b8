"""Hosts of the several-hosts test: network namespaces on one bridge, and the test's way in.

Each host is a network namespace with one interface (``eth0``) on a private /24, joined to the
others by a bridge in a namespace of its own: both ends of every veth pair are made inside
namespaces, so nothing is added to the machine's own interfaces or routes. A host's processes
run with ``ip netns exec NS ...`` in the host's own directory. The test reaches them from a
thread that has entered a host's namespace (``Host.call``), so its requests go over that
host's interface like any other client's.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cluster.support import spark_env, stop_process
from tests.support import REPO

HOST_NAMES = ("store", "master", "worker1", "worker2", "driver", "connect")
IFACE = "eth0"  # every host's one interface, in its own namespace
SUBNET = "10.231"  # 10.231.X.0/24, X chosen at random per network
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(netns: str, fn: Callable[..., Any], *args, timeout: float = 60) -> Any:
    """``fn(*args)`` in a thread of its own that has entered network namespace ``netns``.

    A network namespace is per thread: the sockets ``fn`` opens (urllib, boto3, psycopg2)
    belong to ``netns``, while the rest of pytest stays in the machine's namespace.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns({netns}): {os.strerror(errno)}")
            finally:
                os.close(fd)
            box["value"] = fn(*args)
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, name=f"in-{netns}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{getattr(fn, '__name__', fn)} in {netns} took over {timeout} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def get_json(url: str, timeout: float = 10) -> Any:
    """GET a URL on one of the test's hosts and decode its JSON body."""
    assert (urllib.parse.urlparse(url).hostname or "").startswith(f"{SUBNET}."), url
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Host:
    """One "machine": a network namespace, its address, its directory and its processes."""

    name: str
    netns: str
    address: str
    directory: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        """This host's environment: Spark and temporary files on its own address and disk."""
        tmp = self.directory / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = spark_env()
        env.update(
            SPARK_LOCAL_IP=self.address,
            SPARK_LOCAL_HOSTNAME=self.address,  # not the machine's name, which is not this host
            SPARK_LOCAL_DIRS=str(tmp),
            TMPDIR=str(tmp),
            PYTHONPATH=str(REPO),
            PYSPARK_DRIVER_PYTHON=sys.executable,
        )
        env.pop("SPARK_CONF_DIR", None)
        env.update(extra)
        return env

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *command]

    def log(self, label: str) -> Path:
        return self.directory / f"{label}.log"

    def start(self, label: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Start ``command`` on this host in a process group of its own, its output in
        ``LABEL.log`` in the host's directory."""
        with self.log(label).open("wb") as out:
            process = subprocess.Popen(
                self.argv(*command), env=env, cwd=self.directory, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.processes[label] = process
        return process

    def run(
        self, command: list[str], env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.argv(*command), env=env, cwd=self.directory, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def call(self, fn: Callable[..., Any], *args, timeout: float = 60) -> Any:
        """``fn(*args)`` from this host's network (see in_netns)."""
        return in_netns(self.netns, fn, *args, timeout=timeout)

    def get_json(self, url: str, timeout: float = 10) -> Any:
        return self.call(get_json, url, timeout, timeout=timeout + 5)

    def answers(self, port: int, address: str | None = None) -> bool:
        """Whether a TCP connection to ``address:port`` (default this host's) opens from here."""
        import socket

        def connect_once() -> bool:
            with socket.create_connection((address or self.address, port), timeout=2):
                return True

        try:
            return self.call(connect_once, timeout=10)
        except OSError:
            return False

    def stop(self, label: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Stop one process gently (``sig``), then its whole group with SIGKILL."""
        process = self.processes.get(label)
        if process is None:
            return
        if process.poll() is None:
            if sig == signal.SIGTERM:
                stop_process(process, timeout)
            else:
                process.send_signal(sig)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        kill_group(process)

    def tail(self, label: str, chars: int = 3000) -> str:
        path = self.log(label)
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL whatever is left in ``process``'s group (a worker's executors, a run's JVM)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Network:
    """The hosts on one bridge: ``ufo-SUFFIX-NAME`` namespaces on 10.231.X.0/24."""

    prefix: str
    subnet: str
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def bridge_netns(self) -> str:
        return f"{self.prefix}-br"

    def namespaces(self) -> list[str]:
        return [self.bridge_netns, *(h.netns for h in self.hosts.values())]

    @classmethod
    def create(cls, root: Path, names: tuple[str, ...] = HOST_NAMES) -> Network:
        """Namespaces, one bridge and a veth pair per host; the caller must ``destroy()`` it
        (it is returned half-made only through an exception, after cleaning up itself)."""
        suffix = secrets.token_hex(3)
        network = cls(f"ufo-{suffix}", f"{SUBNET}.{secrets.randbelow(250) + 2}")
        try:
            ip("netns", "add", network.bridge_netns)
            br = ["-n", network.bridge_netns]
            ip(*br, "link", "add", "br0", "type", "bridge")
            ip(*br, "link", "set", "br0", "up")
            ip(*br, "link", "set", "lo", "up")
            for number, name in enumerate(names, start=2):
                host = Host(
                    name, f"{network.prefix}-{name}", f"{network.subnet}.{number}", root / name
                )
                host.directory.mkdir(parents=True, exist_ok=True)
                network.hosts[name] = host
                ip("netns", "add", host.netns)
                # Both ends are made inside namespaces: nothing ever appears in the machine's own.
                port = f"p-{name}"[:15]
                ip(*br, "link", "add", port, "type", "veth", "peer", "name", IFACE, "netns", host.netns)  # fmt: skip
                ip(*br, "link", "set", port, "master", "br0")
                ip(*br, "link", "set", port, "up")
                ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", IFACE)
                ip("-n", host.netns, "link", "set", IFACE, "up")
                ip("-n", host.netns, "link", "set", "lo", "up")
        except BaseException:
            network.destroy()
            raise
        return network

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def cut(self, name: str) -> None:
        """Take a host off the network (its interface down), as a pulled cable would."""
        ip("-n", self.hosts[name].netns, "link", "set", IFACE, "down")

    def destroy(self) -> None:
        """Kill every process still in the namespaces (only this network's), then delete them."""
        for host in self.hosts.values():
            for process in host.processes.values():
                if process.poll() is None:
                    process.kill()
                kill_group(process)
        existing = set(
            subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        )
        for netns in self.namespaces():
            if netns not in existing:
                continue
            pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
            for pid in pids.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        for host in self.hosts.values():
            for process in host.processes.values():
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    pass
