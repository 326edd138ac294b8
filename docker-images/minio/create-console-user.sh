#!/bin/sh
# One-shot (compose service create-console-user): the console's own MinIO user, which may list,
# read and write under s3://$S3_BUCKET/lake/requests/ and nothing else (console-policy.json):
# the console writes run requests and reads their results and logs; the worker runs them.
# Run with the root credentials; idempotent (the user's secret and policy are set again).
set -eu
: "${CONSOLE_S3_ACCESS_KEY_ID:?set CONSOLE_S3_ACCESS_KEY_ID in .env}"
: "${CONSOLE_S3_SECRET_ACCESS_KEY:?set CONSOLE_S3_SECRET_ACCESS_KEY in .env (the proxy profile runs the console)}"
policy="/tmp/ufo-console-policy.json"
sed "s/@BUCKET@/${S3_BUCKET:?}/g" /etc/ufo/console-policy.json.template >"$policy"
mc alias set ufo "${AWS_ENDPOINT_URL:?}" "${S3_ACCESS_KEY_ID:?}" "${S3_SECRET_ACCESS_KEY:?}" >/dev/null
mc admin user add ufo "$CONSOLE_S3_ACCESS_KEY_ID" "$CONSOLE_S3_SECRET_ACCESS_KEY" >/dev/null
mc admin policy create ufo ufo-console "$policy" >/dev/null
# Attaching a policy the user already has is an error in mc: detach first (none on a new user).
mc admin policy detach ufo ufo-console --user "$CONSOLE_S3_ACCESS_KEY_ID" >/dev/null 2>&1 || true
mc admin policy attach ufo ufo-console --user "$CONSOLE_S3_ACCESS_KEY_ID" >/dev/null
echo "create-console-user: $CONSOLE_S3_ACCESS_KEY_ID may use s3://$S3_BUCKET/lake/requests/ only"
