#!/bin/sh
# The proxy's entrypoint: check the users, find or make the TLS certificate, render nginx.conf
# from the environment, then exec nginx. Nothing secret is printed: user names, yes; hashes, no.
#
#   PROXY_USERS        "name:bcrypt-hash" entries separated by spaces or new lines (required)
#   PROXY_LISTEN       the port nginx listens on in the container (default 8443)
#   PROXY_HOSTNAME     the name in a self-signed certificate (default localhost)
#   PROXY_RATE         requests per second per client address, with bursts of 200 (default 20)
#   PROXY_PRODUCTO, PROXY_LUIGID, PROXY_SPARK, PROXY_HISTORY   host:port of each service
#
# TLS: /etc/ufo-proxy/tls/tls.crt and tls.key when both are there (PROXY_TLS_DIR in .env);
# otherwise a self-signed certificate made at first start and kept in /var/lib/ufo-proxy.
set -eu
set -f  # no file-name expansion of the users' entries

say() { echo "ufo-proxy: $*" >&2; }
fail() { say "error: $*"; exit 1; }

run=/run/ufo-proxy
mkdir -p "$run"

# --- users -------------------------------------------------------------------------------------
users="${PROXY_USERS:-}"
[ -n "$(printf '%s' "$users" | tr -d ' \n\t')" ] || fail "PROXY_USERS is empty: give at least \
one user as NAME:BCRYPT-HASH in .env (make one with: python -m etl.tools.proxyuser NAME)"
umask 077
: > "$run/htpasswd"
names=""
for entry in $users; do
    name="${entry%%:*}"
    hash="${entry#*:}"
    case "$name" in
        ""|*[!A-Za-z0-9._@-]*) fail "PROXY_USERS: a user name may hold letters, digits and . _ @ - only" ;;
    esac
    case "$hash" in
        '$2a$'??'$'*|'$2b$'??'$'*|'$2y$'??'$'*) ;;
        *) fail "PROXY_USERS: the password of user $name is not a bcrypt hash (\$2b\$...): make \
one with: python -m etl.tools.proxyuser $name" ;;
    esac
    [ "${#hash}" -eq 60 ] || fail "PROXY_USERS: the bcrypt hash of user $name is cut short \
(quote the whole value in .env with single quotes, so that compose leaves its \$ signs alone)"
    printf '%s:%s\n' "$name" "$hash" >> "$run/htpasswd"
    names="$names $name"
done
umask 022
say "users:$names"

# --- TLS ---------------------------------------------------------------------------------------
own=/etc/ufo-proxy/tls
made=/var/lib/ufo-proxy
if [ -f "$own/tls.crt" ] && [ -f "$own/tls.key" ]; then
    cert="$own/tls.crt"; key="$own/tls.key"
    say "TLS: the certificate in PROXY_TLS_DIR"
else
    cert="$made/tls.crt"; key="$made/tls.key"
    host="${PROXY_HOSTNAME:-localhost}"
    if [ -f "$cert" ] && [ -f "$key" ]; then
        say "TLS: the self-signed certificate made earlier (kept in the proxy-tls volume)"
    else
        openssl req -x509 -newkey rsa:3072 -sha256 -days 825 -nodes -subj "/CN=$host" \
            -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" \
            -keyout "$key.new" -out "$cert.new" 2>/dev/null
        chmod 600 "$key.new"
        mv "$key.new" "$key"; mv "$cert.new" "$cert"
        say "TLS: made a self-signed certificate for $host (put your own in PROXY_TLS_DIR)"
    fi
fi
say "TLS certificate SHA-256 fingerprint: $(openssl x509 -in "$cert" -noout -fingerprint -sha256 | cut -d= -f2)"

# --- nginx.conf --------------------------------------------------------------------------------
sed -e "s|@LISTEN@|${PROXY_LISTEN:-8443}|g" \
    -e "s|@RATE@|${PROXY_RATE:-20}|g" \
    -e "s|@CERT@|$cert|g" -e "s|@KEY@|$key|g" \
    -e "s|@PRODUCTO@|${PROXY_PRODUCTO:-producto:8000}|g" \
    -e "s|@LUIGID@|${PROXY_LUIGID:-luigid:8082}|g" \
    -e "s|@SPARK@|${PROXY_SPARK:-spark-master:8080}|g" \
    -e "s|@HISTORY@|${PROXY_HISTORY:-spark-history:18080}|g" \
    /etc/ufo-proxy/nginx.conf.template > "$run/nginx.conf"
nginx -t -q -c "$run/nginx.conf"
say "listening on port ${PROXY_LISTEN:-8443} (HTTPS only)"
exec nginx -c "$run/nginx.conf" -g 'daemon off;'
