"""What a run request may say: the checks that turn its YAML into an argument list."""

from __future__ import annotations

import pytest

from etl.worker.requests import BadRequest, Incomplete, parse_request


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


def test_yaml_aliases_are_refused_before_they_expand():
    # Nine levels of nine aliases: under 1 KiB of text, 9**9 strings once expanded.
    lines = ['a0: &a0 "xxxxxxxxxx"']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    text = "task: ReadUFOs\nparams: {}\nbomb:\n" + "\n".join(f"  {ln}" for ln in lines) + "\n"
    assert len(text) < 1024
    with pytest.raises(BadRequest) as err:
        parse_request(text)
    assert "aliases (*name) are not allowed in a request" in str(err.value)


def test_a_request_for_more_dates_than_a_batch_holds_is_refused_with_how_to_split_it():
    ten_years = "task: TopStatesToDatabase\nparams: {date: 2009-03-29..2019-03-28}\n"
    assert parse_request(ten_years).params["date"] == "2009-03-29..2019-03-28"  # one batch
    fifteen = "task: TopStatesToDatabase\nparams: {date: 2004-03-29..2019-03-28}\n"
    with pytest.raises(BadRequest) as err:
        parse_request(fifteen)
    assert "a batch holds at most 4000 run dates" in str(err.value)
    far = "task: ReadUFOs\nparams: {date: 0001-01-01..9999-12-31}\n"  # refused without a list
    with pytest.raises(BadRequest):
        parse_request(far)
    assert parse_request("task: ReadUFOs\nparams: {date: 2017-07-03..2019-03-29}\n")  # 1000


@pytest.mark.parametrize(
    "text",
    ["", "task: TopStatesToDatabase\n", "task: TopStatesToDatabase\nenv: {UFO_SOURCE: /x.csv}\n",
     "params: {date: 2019-03-29}\n"],
)  # fmt: skip
def test_a_request_without_task_or_params_is_incomplete_not_run_with_defaults(text):
    with pytest.raises(Incomplete) as err:
        parse_request(text)
    assert "rename it into requests/ once it is whole" in str(err.value)
    # An explicit empty params runs the task's defaults.
    assert parse_request("task: TopStatesToDatabase\nparams: {}\n").params == {}


@pytest.mark.parametrize(
    "text",
    [
        "task: " + "T" * 60_000 + "\nparams: {}",
        "task: ReadUFOs\nparams: {date: " + "9" * 60_000 + "}",
        "task: ReadUFOs\nparams: {" + "w" * 60_000 + ": 1}",
        "task: ReadUFOs\nparams: {}\n" + "k" * 60_000 + ": 1",
        "task: [" + "x " * 30_000,
    ],
    ids=["task", "value", "name", "key", "yaml"],
)
def test_a_long_request_is_refused_at_once_with_a_readable_reason(text):
    import time

    start = time.monotonic()
    with pytest.raises(BadRequest) as refused:
        parse_request(text)
    assert time.monotonic() - start < 2
    assert len(str(refused.value)) < 600, len(str(refused.value))


def test_a_request_may_run_the_chain_anew_from_one_task_on():
    request = parse_request(
        "task: TopStatesToDatabase\nparams: {date: 2019-03-29, force_from: TopTenStates}\n"
    )
    assert request.forced
    assert request.argv([])[-4:] == ["--date", "2019-03-29", "--force-from", "TopTenStates"]
    assert not parse_request("task: ReadUFOs\nparams: {date: 2019-03-29}\n").forced
    for params, says in [
        ("force_from: Spark", "force_from"),  # not a task of the chain
        ("force_from: [TopTenStates]", "must be a single value"),
    ]:
        with pytest.raises(BadRequest) as err:
            parse_request(f"task: TopStatesToDatabase\nparams: {{date: 2019-03-29, {params}}}\n")
        assert says in str(err.value), params
    # A task after the one asked for would never run: refused, saying what to ask instead.
    with pytest.raises(BadRequest) as err:
        parse_request(
            "task: TopTenStates\nparams: {date: 2019-03-29, force_from: TopStatesToDatabase}\n"
        )
    assert "comes after TopTenStates" in str(err.value)
