"""Download Maven artifacts (group:artifact:version) into a directory, checking their SHA-1.

Used at image build time only: ``python3 fetch_jars.py --repo URL --dest DIR G:A:V ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.request
from pathlib import Path


def fetch(repo: str, coordinate: str, dest: Path) -> Path:
    group, artifact, version = coordinate.split(":")
    name = f"{artifact}-{version}.jar"
    url = f"{repo.rstrip('/')}/{group.replace('.', '/')}/{artifact}/{version}/{name}"
    target = dest / name
    with urllib.request.urlopen(url, timeout=120) as response, open(target, "wb") as out:
        digest = hashlib.sha1()
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    with urllib.request.urlopen(url + ".sha1", timeout=60) as response:
        expected = response.read().decode().split()[0].strip().lower()
    if digest.hexdigest() != expected:
        target.unlink()
        raise SystemExit(
            f"{name}: SHA-1 {digest.hexdigest()} does not match {expected} from {url}.sha1"
        )
    print(f"{name}: {target.stat().st_size} bytes, sha1 ok")
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--dest", required=True, type=Path)
    parser.add_argument("coordinates", nargs="+")
    args = parser.parse_args(argv)
    args.dest.mkdir(parents=True, exist_ok=True)
    for coordinate in args.coordinates:
        fetch(args.repo, coordinate, args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
