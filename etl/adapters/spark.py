"""How the pipeline starts Spark: the spark-submit to run, the driver's JIT, event logs, UIs.

The driver's class archive is ``etl/adapters/classarchive.py``'s. A driver that works briefly (a
small input, or executors of its own doing the work) is started with the quick JIT only
(``QUICK_JIT``); luigi.cfg's ``[spark] driver-java-options`` come after it and win.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from etl.parsers import remote_parts


def default_spark_submit() -> str:
    found = shutil.which(
        "spark-submit",
        path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    if found:
        return found
    import pyspark  # the pip package ships spark-submit

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


#: The driver's JIT for a brief run: the quick compiler (C1) only. A JVM that lives a few seconds
#: gains nothing from the optimizing compiler (C2) but its cost: on two cores its compiler threads
#: took half the CPU of a cold Spark step on the 2019 index (26 s of CPU; 14 s without them, and
#: 3.5 s less wall time). A driver that works through millions of rows itself (a local master on
#: a large input) keeps both: C2's code runs them faster.
QUICK_JIT = "-XX:TieredStopAtLevel=1"


#: An application's event log is rolled into files of this size, so that a long one stays
#: readable and the history server's cleaner can drop old parts.
EVENT_LOG_FILE_SIZE = "64m"


def event_log_conf(where: str) -> dict[str, str]:
    """``spark.eventLog.*`` settings for event logs under ``where`` (a directory, a ``file:``
    URI, or a URI such as ``s3a://bucket/spark-events``); a local directory is made first,
    since Spark refuses to start without it."""
    if "://" not in where and not where.startswith("file:"):
        path = Path(where).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        where = path.as_uri()
    elif where.startswith("file:"):
        Path(urlsplit(where).path).mkdir(parents=True, exist_ok=True)
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": where,
        "spark.eventLog.rolling.enabled": "true",
        "spark.eventLog.rolling.maxFileSize": EVENT_LOG_FILE_SIZE,
    }


def history_page(history_url: str, application_id: str) -> str:
    """The history server's page of one application."""
    return f"{history_url.rstrip('/')}/history/{application_id}/jobs/"


_JETTY = re.compile(r"Start Jetty (\S+):(\d+) for SparkUI")


def ui_address(line: str) -> str | None:
    """A Spark UI's address from the line Spark 4 logs as it starts (``Start Jetty HOST:PORT for
    SparkUI``); every interface (0.0.0.0) is named as this machine. None for another line."""
    found = _JETTY.search(line)
    if found is None:
        return None
    host, port = found.groups()
    if host in ("0.0.0.0", "[::]"):
        host = socket.getfqdn()
    return f"http://{host}:{port}"


def session_page(ui: str, session_id: str) -> str:
    """The page of one Spark Connect session (its statements and their jobs) in a server's UI:
    its live UI (``http://HOST:PORT``) or its page in the history server
    (``HISTORY/history/APP``)."""
    return f"{ui.rstrip('/')}/connect/session/?id={session_id}"


#: Seconds to wait for a Spark Connect server to answer before running cold.
CONNECT_PROBE_TIMEOUT = 3.0
# Parameters of an sc:// address that PySpark's client reads itself; any other is sent to the
# server as a header (PySpark's ChannelBuilder does the same).
_CLIENT_PARAMS = frozenset(
    {"token", "use_ssl", "user_id", "user_agent", "session_id", "grpc_max_message_size"}
)


def connect_problem(remote: str, timeout: float = CONNECT_PROBE_TIMEOUT) -> str | None:
    """Why the Spark Connect server at ``remote`` cannot take a job, in one line; None when it
    answers the Spark Connect protocol (tells its Spark version) within ``timeout`` seconds.

    A TCP connect would not do: any listening port (a web server, a proxy) accepts one, and
    PySpark's client then retries against it for minutes. A ``token`` or ``use_ssl=true`` means
    TLS, as PySpark's client has it; a server without TLS then fails the handshake here.
    """
    import uuid

    import grpc
    from pyspark.sql.connect.proto import base_pb2, base_pb2_grpc

    try:
        host, port, params = remote_parts(remote)
    except ValueError as err:
        return str(err)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if "token" in params or params.get("use_ssl", "").lower() == "true":
        credentials = grpc.ssl_channel_credentials()
        if "token" in params:
            token = grpc.access_token_call_credentials(params["token"])
            credentials = grpc.composite_channel_credentials(credentials, token)
        channel = grpc.secure_channel(target, credentials)
    else:
        channel = grpc.insecure_channel(target)
    metadata = [(k, v) for k, v in params.items() if k not in _CLIENT_PARAMS]
    # A session of its own, released at once: the probe leaves nothing behind on the server.
    session = str(uuid.uuid4())
    user = base_pb2.UserContext(user_id=params.get("user_id", "ufo"))
    try:
        with channel:
            stub = base_pb2_grpc.SparkConnectServiceStub(channel)
            try:
                answer = stub.AnalyzePlan(
                    base_pb2.AnalyzePlanRequest(
                        session_id=session,
                        user_context=user,
                        spark_version=base_pb2.AnalyzePlanRequest.SparkVersion(),
                    ),
                    timeout=timeout,
                    metadata=metadata,
                )
            except grpc.RpcError as err:
                return _rpc_problem(err, timeout)
            with contextlib.suppress(grpc.RpcError):
                stub.ReleaseSession(
                    base_pb2.ReleaseSessionRequest(session_id=session, user_context=user),
                    timeout=timeout,
                    metadata=metadata,
                )
    except Exception as err:  # noqa: BLE001 - whatever it is, the server did not answer
        return _one_line(f"{type(err).__name__}: {err}")
    if not answer.spark_version.version:
        return "it answered, but without a Spark version"
    return None


def _rpc_problem(err, timeout: float) -> str:
    import grpc

    code = err.code() if callable(getattr(err, "code", None)) else None
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no Spark Connect answer within {timeout:g} s"
    details = err.details() if callable(getattr(err, "details", None)) else str(err)
    name = code.name if code is not None else "error"
    return _one_line(f"{name}: {details}")


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit] + "..."


def connect_answers(remote: str, timeout: float = CONNECT_PROBE_TIMEOUT) -> bool:
    """Whether the Spark Connect server at ``remote`` (``sc://host:port``) answers."""
    return connect_problem(remote, timeout) is None
