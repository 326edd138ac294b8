#!/usr/bin/env bash
# The luigi_worker's default command: run the pipeline once for RUN_DATE (default: yesterday)
# against luigid, then serve as the worker service (python -m etl.worker: the daily schedule
# and the run requests in the lake), staying up for `docker compose exec` too.
# The container's health reports the outcome: healthy once the run succeeded.
set -uo pipefail

# Kept alive (luigi.cfg explains): waits for tasks another worker runs, retries failed ones
# under luigid's retry policy until they succeed or are disabled.
args=(--module etl TopStatesToDatabase --worker-keep-alive)
if [ -n "${RUN_DATE:-}" ]; then
  args+=(--date "$RUN_DATE")
fi
rm -f /tmp/ufo-pipeline.ok

rc=10
for attempt in 1 2 3 4 5 6; do
  echo "ufo: running python -m luigi ${args[*]} (attempt $attempt)"
  python -m luigi "${args[@]}"
  rc=$?
  # 10 = a task is already running on another worker: wait for it, then check again.
  [ "$rc" = 10 ] || break
  sleep 20
done

if [ "$rc" = 0 ]; then
  echo "ufo: pipeline finished; this worker now serves the schedule and run requests"
  touch /tmp/ufo-pipeline.ok
else
  echo "ufo: error: the pipeline failed with exit code $rc (see above, and ${UFO_LOG_DIR:-the container log})" >&2
fi
exec python -m etl.worker
