"""The worker service's log file: each line of a run once, and a failed request's reason in it.

The run the worker starts writes ``$UFO_LOG_DIR/pipeline.log`` itself (all of its lines, Luigi's
included); the worker shows the run's lines on its terminal as ``LABEL | line`` and adds its own
to the file, so no line is there twice.
"""

from __future__ import annotations

import re
from collections import Counter

from tests.support import pipeline_env
from tests.worker.support import lake_with_source, run_worker

STAMP = re.compile(r"^\S+ \S+ \w+ [\w.-]+\[(\d+)\]: ")


def test_each_line_of_a_request_is_in_the_log_file_once(tmp_path):
    requests, src = lake_with_source(tmp_path)
    (requests / "good.yaml").write_text("task: ReadUFOs\nparams: {date: 2019-03-29}\n")
    (requests / "bad.yaml").write_text(
        "task: ReadUFOs\nparams: {date: 2019-03-28}\nenv: {UFO_SOURCE: /nowhere/index.csv}\n"
    )
    logs = tmp_path / "logs"
    result = run_worker(pipeline_env(str(requests.parent), None, str(src), UFO_LOG_DIR=str(logs)))
    assert result.returncode == 1, result.stdout[-3000:]  # one request failed

    lines = (logs / "pipeline.log").read_text().splitlines()
    bare = [STAMP.sub("", line) for line in lines if STAMP.match(line)]
    # No process says a line twice (each run says "Done scheduling tasks" once, say).
    said = Counter((STAMP.match(line).group(1), STAMP.sub("", line)) for line in lines
                   if STAMP.match(line) and STAMP.sub("", line).strip())  # fmt: skip
    assert [line for line, n in said.items() if n > 1] == []
    assert bare.count("done: ReadUFOs(date=2019-03-29) in " + bare_suffix(bare)) == 1
    # The run's own lines are in the file as the run wrote them, not as the worker relayed them.
    assert not any(" | " in line and "ReadUFOs" in line for line in bare)
    failed = (
        "ufo: error: ReadUFOs(date=2019-03-28): The source file /nowhere/index.csv does not exist"
    )
    assert sum(line.startswith(failed) for line in bare) == 1
    # The worker's terminal shows the runs' lines, labelled by request.
    assert re.search(r"good\.yaml.* \| .*done: ReadUFOs\(date=2019-03-29\)", result.stdout)


def bare_suffix(bare: list[str]) -> str:
    """What follows ``done: ReadUFOs(date=2019-03-29) in `` in the file (its time and output)."""
    prefix = "done: ReadUFOs(date=2019-03-29) in "
    found = [line[len(prefix) :] for line in bare if line.startswith(prefix)]
    return found[0] if found else "(none)"
