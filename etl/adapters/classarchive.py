"""The Spark driver's class archive, one per Spark and Java, shared by every install on a machine.

Before it does any work, a Spark driver loads and verifies some 25,000 classes from Spark's
jars: most of the 5 s a no-op spark-submit takes here, and a quarter of a daily
AggregateUFOsByState. Java (13 and later) can keep those classes, parsed and verified, in an
archive that later JVMs map at start (application class-data sharing, ``-XX:SharedArchiveFile``).
``python -m etl.tools.jvmcache`` makes one; the driver is started with it whenever one exists
(and UFO_JVM_ARCHIVE is not ``off``). An archive Java cannot use is ignored by Java itself.

Java maps an archive only for the class path it was made with: the same jar paths, in the same
order, each jar's size and modification time unchanged. Every virtualenv holds its own copy of
pyspark's jars, at its own path and with its own times, so an archive made for one is refused by
every other (a second clone, CI's clones). The driver therefore runs from a Spark home in the
cache, ``spark-home-KEY``: the install's jars, scripts and Python libraries, hard-linked (copied
across file systems) once and never changed, keyed by their contents. Every install of the same
Spark uses that one home and its archive, ``driver-JAVA.jsa`` (one per Java build). Which home
an install uses is remembered in ``installs/`` under its jars' paths, sizes and times, so their
contents are read once per install (0.7 s for pyspark's 440 MB).

Without an archive (none made yet, or UFO_JVM_ARCHIVE=off) the driver starts from the install's
own Spark, with bytecode verification of the class path off: the archive's classes were
verified when it was made, and the jars are the ones the archive would hold, so the run trusts
nothing more than with it; it takes about 1 s off the start (5.4 s to 4.5 s for a no-op).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from etl.settings import setting

#: The Spark homes kept in the cache, the most recently used first (a home costs no space while
#: it shares its files with an install; its archive is about 160 MB).
KEEP_HOMES = 3
#: What a home holds of an install's Spark: the driver's class path, the scripts spark-submit
#: runs, and the Python libraries PySpark puts on its workers' path.
HOME_PARTS = ("jars", "bin", "python/lib")
#: The driver's start without an archive: its class path not verified again.
NO_VERIFY = ["-XX:+UnlockDiagnosticVMOptions", "-XX:-BytecodeVerificationRemote"]


def cache_dir() -> Path:
    """Where homes and archives are kept (UFO_JVM_CACHE)."""
    return setting("jvm_cache")


def java_binary() -> str | None:
    """The ``java`` spark-submit starts: ``$JAVA_HOME/bin/java``, else the first on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.isfile(os.path.join(home, "bin", "java")):
        return os.path.realpath(os.path.join(home, "bin", "java"))
    found = shutil.which("java")
    return os.path.realpath(found) if found else None


def spark_home(spark_submit: str) -> Path | None:
    """The Spark that ``spark_submit`` runs (the folder with its ``jars``): beside its ``bin``,
    else ``$SPARK_HOME``, else pip's pyspark (whose ``spark-submit`` script finds it so too)."""
    candidates = [Path(os.path.realpath(spark_submit)).parent.parent]
    if os.environ.get("SPARK_HOME"):
        candidates.append(Path(os.environ["SPARK_HOME"]))
    try:
        import pyspark

        candidates.append(Path(pyspark.__file__).parent)
    except ImportError:
        pass
    return next((c for c in candidates if (c / "jars").is_dir()), None)


def _files(home: Path) -> list[Path]:
    """The files of ``home`` a shared home holds, in a fixed order."""
    found = []
    for part in HOME_PARTS:
        folder = home / part
        if folder.is_dir():
            found += sorted(p for p in folder.rglob("*") if p.is_file())
    return found


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _stat_key(paths: list[Path]) -> str:
    """A key of where and what ``paths`` are, from their metadata only (cheap)."""
    lines = []
    for path in paths:
        stat = path.stat()
        lines.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return _digest(lines)


def content_key(home: Path) -> str:
    """A key of what ``home``'s jars, scripts and libraries hold (their names and bytes)."""
    lines = []
    for path in _files(home):
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        lines.append(f"{path.relative_to(home)}\0{digest}")
    return _digest(lines)


@dataclass(frozen=True)
class DriverArchive:
    """The shared Spark home an install's driver runs from, and that home's archive."""

    home: Path
    path: Path


def _link_tree(source: Path, target: Path) -> None:
    for part in HOME_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, copy_function=_link_or_copy,
                            symlinks=False)  # fmt: skip


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: a copy, times kept
        shutil.copy2(source, target)


def driver_archive(spark_submit: str, create: bool = True) -> DriverArchive | None:
    """The shared home and archive of ``spark_submit``'s install; None when Java or Spark's
    jars cannot be found, or (``create`` False) when this install has not been matched to a
    home yet (``python -m etl.tools.jvmcache`` does it, once per install)."""
    java, home = java_binary(), spark_home(spark_submit)
    if java is None or home is None:
        return None
    cache = cache_dir()
    memo = cache / "installs" / _stat_key(_files(home))
    try:
        key = memo.read_text().strip()
    except OSError:
        if not create:
            return None
        key = content_key(home)
        memo.parent.mkdir(parents=True, exist_ok=True)
        _write_whole(memo, key + "\n")
    shared = cache / f"spark-home-{key}"
    if not shared.is_dir():
        if not create:
            return None
        staged = cache / f".spark-home-{key}.{os.getpid()}"
        shutil.rmtree(staged, ignore_errors=True)
        _link_tree(home, staged)
        try:
            os.rename(staged, shared)
        except OSError:  # made meanwhile by another process: theirs is the same
            shutil.rmtree(staged, ignore_errors=True)
    return DriverArchive(shared, shared / f"driver-{_stat_key([Path(java)])}.jsa")


def _write_whole(path: Path, text: str) -> None:
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    staged.write_text(text)
    os.replace(staged, path)


def _usable(spark_submit: str) -> DriverArchive | None:
    if not setting("jvm_archive"):
        return None
    found = driver_archive(spark_submit, create=False)
    return found if found is not None and found.path.is_file() else None


def driver_java_options(spark_submit: str) -> list[str]:
    """The driver's JVM options: the archive when there is one for this Spark and Java, else
    no second verification of the class path."""
    found = _usable(spark_submit)
    if found is None:
        return list(NO_VERIFY)
    os.utime(found.home)  # used: kept by prune, which drops the least recently used
    return [f"-XX:SharedArchiveFile={found.path}"]


def driver_environment(spark_submit: str) -> dict[str, str]:
    """The driver's environment beside the archive: the shared Spark home it was made for."""
    found = _usable(spark_submit)
    return {} if found is None else {"SPARK_HOME": str(found.home)}


def prune(current: DriverArchive) -> None:
    """Keep the ``KEEP_HOMES`` most recently used homes (``current``'s among them), one archive
    in each (``current``'s Java's in its own), and only the installs that name a kept home; and
    drop the archives of earlier releases, which were named by install."""
    cache = current.home.parent
    homes = sorted(cache.glob("spark-home-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    kept = [current.home, *(h for h in homes if h != current.home)][:KEEP_HOMES]
    for home in homes:
        if home not in kept:
            shutil.rmtree(home, ignore_errors=True)
    for archive in current.home.glob("driver-*.jsa"):
        if archive != current.path:
            archive.unlink(missing_ok=True)
    names = {h.name.removeprefix("spark-home-") for h in kept}
    for memo in (cache / "installs").glob("*"):
        try:
            if memo.read_text().strip() not in names:
                memo.unlink()
        except OSError:
            pass
    for old in cache.glob("spark-driver-*.jsa"):
        old.unlink(missing_ok=True)
