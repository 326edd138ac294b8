"""What a run request may say: the checks that turn its YAML into an argument list."""

from __future__ import annotations

import pytest

from etl.worker.requests import BadRequest, parse_request


def test_a_valid_request_becomes_an_argument_list():
    request = parse_request("task: TopStatesToDatabase\nparams: {date: 2019-03-29, force: true}\n")
    assert request.argv(["--local-scheduler"])[2:] == [
        "luigi", "--module", "etl", "TopStatesToDatabase", "--local-scheduler", "--date", "2019-03-29", "--force",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text, reason",
    [
        ("task: [unclosed", "not valid YAML"),
        ("- a list", "must be a mapping"),
        ("task: os.system\nparams: {}", "is not one of"),
        ("task: ReadUFOs\nparams: {date: 2019-02-30}", "'2019-02-30' is not valid"),
        ("task: ReadUFOs\nparams: {workers: 8}", "has no parameter 'workers'"),
        ("task: ReadUFOs\nparams: {date: [1, 2]}", "must be a single value"),
        ("task: ReadUFOs\nenv: {LD_PRELOAD: /tmp/x.so}", "'env' may only set UFO_SOURCE"),
        ("task: ReadUFOs\nrun: rm -rf /", "unknown key(s) ['run']"),
        ("!!python/object/apply:os.system ['id']", "not valid YAML"),
    ],
)
def test_malformed_requests_say_why(text, reason):
    with pytest.raises(BadRequest) as err:
        parse_request(text)
    assert reason in str(err.value)
