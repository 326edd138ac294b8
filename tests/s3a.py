"""Spark's ``s3a://`` in tests: stand-in S3A jars, a moto S3 server and a SPARK_CONF_DIR.

TEST STAND-IN. The product's images carry hadoop-aws 3.4.1 with the AWS SDK v2 bundle 2.24.6
(the pair PySpark 4.0.1's Hadoop was built with), downloaded from Maven Central, which is not
reachable on the machines this project is tested on. What is reachable is PyPI, and the sdist of
``sagemaker-pyspark==1.4.5`` holds ``hadoop-aws-3.3.1.jar`` and
``aws-java-sdk-bundle-1.11.901.jar`` (SDK v1). Those run under PySpark 4.0.1's Hadoop 3.4.1 once
a few settings that Hadoop 3.4 defaults for the v2 SDK are put back (``HADOOP_33_SETTINGS``), so
tests can exercise the real ``s3a://`` path end to end. Another Hadoop release than the
product's: a green test here says the pipeline works through S3A, not that the product's jar
pair does (CI's compose test builds the product image with these jars for the same reason).

* ``stand_in_jars()``: downloads the sdist once (``pip download``, hash-pinned, time-bounded)
  into ``$UFO_S3A_JAR_CACHE`` (default ``~/.cache/ufo-s3a``), extracts only the two jars without
  building anything, and reuses them afterwards;
  ``python -m tests.s3a --copy-to DIR`` does the same from a shell and copies them to DIR.
* ``MotoS3``: a moto S3 server in its own process on 127.0.0.1 (or the one ``UFO_S3A_ENDPOINT``
  names), started with a bounded wait.
* ``write_spark_conf_dir()``: a ``spark-defaults.conf`` with ``spark.jars`` and every
  ``spark.hadoop.fs.s3a.*`` setting the stand-in needs.
* ``require_stand_in_jars()``: for tests; a failure to get the jars fails the test with what to
  do (skips only with ``UFO_S3A_OPTIONAL=1``).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("tests.s3a")

SDIST_REQUIREMENT = "sagemaker-pyspark==1.4.5"
SDIST_NAME = "sagemaker_pyspark-1.4.5.tar.gz"
# Pinned, so a changed upload on PyPI cannot slip other jars into the tests.
SDIST_SHA256 = "05ca2d5081d7138ce29a8fb0a9cba077f28c825288ed07aed46a82e63c0bf1fb"
JARS = {
    "hadoop-aws-3.3.1.jar": "6be50ad8a8b445d2802381b085b2a3ede5c29d353450a6a21f16b2fefa962b6e",
    "aws-java-sdk-bundle-1.11.901.jar": (
        "b87175b32a16544cc1b37cf40390eb375833e62bed67f8ce6cde4b7ad6429ead"
    ),
}
JAR_DIR_IN_SDIST = "sagemaker_pyspark-1.4.5/deps/jars"

NOTICE = (
    "S3A TEST STAND-IN: hadoop-aws 3.3.1 + aws-java-sdk-bundle 1.11.901 (AWS SDK v1) from the "
    "PyPI sdist of sagemaker-pyspark 1.4.5, NOT the product's hadoop-aws 3.4.1 + AWS SDK v2 "
    "bundle 2.24.6 (Maven Central is unreachable here)."
)

#: Hadoop 3.4's defaults name SDK v2 classes and duration strings ("60s") that the 3.3.1
#: connector cannot parse; these are the 3.3 values (CI-ENVIRONMENT.md).
HADOOP_33_SETTINGS = {
    "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    "fs.s3a.connection.timeout": "200000",
    "fs.s3a.connection.establish.timeout": "30000",
    "fs.s3a.threads.keepalivetime": "60",
    "fs.s3a.multipart.purge.age": "86400",
}

#: moto accepts any key pair; these are the ones the tests hand to boto3 and to S3A.
ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"

DOWNLOAD_TIMEOUT = int(os.environ.get("UFO_S3A_DOWNLOAD_TIMEOUT", "900"))
LOCK_TIMEOUT = DOWNLOAD_TIMEOUT + 60
SERVER_START_TIMEOUT = 30


class StandInUnavailable(RuntimeError):
    """The stand-in S3A jars could not be obtained; the message says what to do."""


def cache_dir() -> Path:
    """Where the jars are kept between runs: $UFO_S3A_JAR_CACHE or ~/.cache/ufo-s3a."""
    configured = os.environ.get("UFO_S3A_JAR_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "ufo-s3a"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cached(jar_dir: Path) -> list[Path] | None:
    # A jar lands under its final name only after its hash was checked (see _extract), so
    # presence is proof enough and the 190 MB bundle is not hashed again on every run.
    jars = [jar_dir / name for name in JARS]
    return jars if all(j.is_file() for j in jars) else None


@contextmanager
def _locked(path: Path, timeout: float):
    """An exclusive lock on ``path``, waited for at most ``timeout`` s (parallel test runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StandInUnavailable(
                        f"another process has held {path} for over {timeout:.0f} s; "
                        "if none is downloading the jars, delete that file"
                    ) from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(dest: Path, timeout: int) -> Path:
    requirements = dest / "requirements.txt"
    requirements.write_text(f"{SDIST_REQUIREMENT} --hash=sha256:{SDIST_SHA256}\n")
    # --no-binary: the jars are only in the sdist. pip prepares its metadata (setup.py in an
    # isolated build env, about 20 s) but builds nothing; --timeout bounds each socket wait.
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--require-hashes", "--timeout", "60", "--disable-pip-version-check",
        "--dest", str(dest), "-r", str(requirements),
    ]  # fmt: skip
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StandInUnavailable(
            f"`pip download {SDIST_REQUIREMENT}` did not finish within {timeout} s "
            "(UFO_S3A_DOWNLOAD_TIMEOUT)"
        ) from None
    sdist = dest / SDIST_NAME
    if result.returncode != 0 or not sdist.is_file():
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise StandInUnavailable(
            f"`pip download {SDIST_REQUIREMENT}` failed (exit {result.returncode}):\n{tail}"
        )
    return sdist


def _extract(sdist: Path, jar_dir: Path) -> None:
    jar_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist, "r:gz") as tar:
        for name, expected in JARS.items():
            member = tar.getmember(f"{JAR_DIR_IN_SDIST}/{name}")
            source = tar.extractfile(member)
            if source is None:
                raise StandInUnavailable(f"{name} in {sdist.name} is not a regular file")
            partial = jar_dir / f".{name}.partial"
            with source, open(partial, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            if _sha256(partial) != expected:
                partial.unlink()
                raise StandInUnavailable(
                    f"{name} from {sdist.name} does not have SHA-256 {expected}"
                )
            partial.replace(jar_dir / name)


def stand_in_jars(cache: Path | None = None, timeout: int = DOWNLOAD_TIMEOUT) -> list[Path]:
    """The two stand-in S3A jars, downloaded and extracted once into ``cache``, then reused."""
    jar_dir = (cache or cache_dir()) / "jars"
    found = _cached(jar_dir)
    if found:
        logger.warning("%s Using %s.", NOTICE, jar_dir)
        return found
    with _locked(jar_dir.parent / ".lock", LOCK_TIMEOUT):
        found = _cached(jar_dir)  # another process may have finished while we waited
        if not found:
            logger.warning("%s Downloading them once into %s.", NOTICE, jar_dir)
            start = time.monotonic()
            with tempfile.TemporaryDirectory(dir=jar_dir.parent) as tmp:
                _extract(_download(Path(tmp), timeout), jar_dir)
            logger.warning("S3A stand-in jars ready in %.0f s", time.monotonic() - start)
            found = _cached(jar_dir)
    assert found
    return found


def require_stand_in_jars() -> list[Path]:
    """``stand_in_jars()`` for a test: fail clearly, or skip only when UFO_S3A_OPTIONAL=1."""
    import pytest

    try:
        jars = stand_in_jars()
    except (StandInUnavailable, OSError) as err:
        message = (
            f"Cannot get the S3A stand-in jars ({SDIST_REQUIREMENT} from PyPI into "
            f"{cache_dir()}): {err}\nThe s3a tests need them; set UFO_S3A_JAR_CACHE to a "
            "directory holding jars/ from an earlier run, or UFO_S3A_OPTIONAL=1 to skip."
        )
        if os.environ.get("UFO_S3A_OPTIONAL") == "1":
            pytest.skip(message)
        pytest.fail(message)
    print(f"\n{NOTICE}", file=sys.stderr)
    return jars


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


@dataclass
class MotoS3:
    """A moto S3 server on 127.0.0.1 in its own process (Spark's traffic stays off pytest's GIL)."""

    endpoint: str
    process: subprocess.Popen | None = None

    @classmethod
    def start(cls, log_path: Path | None = None, timeout: float = SERVER_START_TIMEOUT) -> MotoS3:
        """Reuse the server UFO_S3A_ENDPOINT names, or start one, waiting at most ``timeout`` s."""
        given = os.environ.get("UFO_S3A_ENDPOINT")
        if given:
            if not _answers(given):
                raise RuntimeError(f"UFO_S3A_ENDPOINT={given} does not answer")
            return cls(given.rstrip("/"))
        from tests.support import free_port

        port = free_port()
        log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        server = cls(f"http://127.0.0.1:{port}", process)
        deadline = time.monotonic() + timeout
        while not _answers(server.endpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"moto server on port {port} did not answer within {timeout:.0f} s"
                    + (f" (log: {log_path})" if log_path else "")
                )
            time.sleep(0.2)
        return server

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def client(self):
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def env(self) -> dict[str, str]:
        """What boto3 (the pipeline's Luigi side) needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }


def s3a_settings(endpoint: str) -> dict[str, str]:
    """Every Hadoop setting the stand-in connector needs to reach ``endpoint`` (moto)."""
    return {
        **HADOOP_33_SETTINGS,
        "fs.s3a.access.key": ACCESS_KEY,
        "fs.s3a.secret.key": SECRET_KEY,
        "fs.s3a.endpoint": endpoint,
        "fs.s3a.endpoint.region": REGION,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
    }


def write_spark_conf_dir(
    conf_dir: Path, jars: list[Path], endpoint: str, extra: dict[str, str] | None = None
) -> Path:
    """A SPARK_CONF_DIR whose spark-defaults.conf puts ``jars`` on Spark's path and s3a on moto."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# {NOTICE}",
        f"spark.jars {','.join(str(j) for j in jars)}",
        *(f"spark.hadoop.{k} {v}" for k, v in s3a_settings(endpoint).items()),
        # Small test inputs: the default 200 shuffle partitions cost most of a job's time.
        "spark.sql.shuffle.partitions 4",
        "spark.ui.enabled false",
        "spark.driver.bindAddress 127.0.0.1",
        "spark.driver.host 127.0.0.1",
        *(f"{k} {v}" for k, v in (extra or {}).items()),
    ]
    (conf_dir / "spark-defaults.conf").write_text("\n".join(lines) + "\n")
    return conf_dir


def copy_jars(jars: list[Path], dest: Path) -> list[Path]:
    """Hard-link (or copy) ``jars`` into ``dest``: a build context, for S3A_JARS=local."""
    dest.mkdir(parents=True, exist_ok=True)
    copies = []
    for jar in jars:
        target = dest / jar.name
        if not target.exists() or target.stat().st_size != jar.stat().st_size:
            target.unlink(missing_ok=True)
            try:
                os.link(jar, target)
            except OSError:  # another file system
                shutil.copyfile(jar, target)
        copies.append(target)
    return copies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch the S3A test stand-in jars (cached).")
    parser.add_argument("--copy-to", type=Path, help="also copy (hard-link) the jars here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        jars = stand_in_jars()
    except StandInUnavailable as err:
        print(f"s3a: error: {err}", file=sys.stderr)
        return 1
    for jar in copy_jars(jars, args.copy_to) if args.copy_to else jars:
        print(jar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
