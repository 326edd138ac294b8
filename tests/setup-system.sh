#!/usr/bin/env bash
# System packages the test suite needs beyond Python's: installed when missing and we are root
# (as on CI); otherwise the tests that need them skip and say why.
set -euo pipefail

need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
# producto's browser tests drive Debian's Chromium (never a browser downloaded by a test tool).
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)  # no font: blank text
# The proxy's tests run it outside Docker too, with Debian's nginx (as `make up` does).
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v openssl >/dev/null || need+=(openssl)
# Spark writes its event logs zstd-compressed: the tests that read them decompress with zstd.
command -v zstd >/dev/null || need+=(zstd)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup-system: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup-system: missing ${need[*]} (not root or no apt-get): the tests that need them will skip"
  fi
fi
