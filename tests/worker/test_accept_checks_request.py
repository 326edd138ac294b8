"""A run request can publish a held run date: ``accept_checks`` becomes ``--accept-checks``."""

from __future__ import annotations

import pytest

from etl.worker.requests import BadRequest, parse_request

WHY = "alice: the source shrank because NUFORC removed duplicates"


def test_accept_checks_in_a_request_is_passed_to_the_run():
    request = parse_request(
        f'task: TopStatesToDatabase\nparams: {{date: 2019-03-29, accept_checks: "{WHY}"}}\n'
    )
    argv = request.argv(["--local-scheduler"])
    assert argv[argv.index("--accept-checks") + 1] == WHY


def test_a_misspelt_field_is_refused():
    with pytest.raises(BadRequest):
        parse_request(
            f'task: TopStatesToDatabase\nparams: {{date: 2019-03-29, accept_check: "{WHY}"}}\n'
        )
