"""UfoTask.get_params: Luigi's parameter list, worked out once per task class."""

from __future__ import annotations

import luigi
import pytest

from etl.pipeline.aggregate import AggregateUFOsByState
from etl.pipeline.load import TopStatesToDatabase
from etl.pipeline.read import ReadUFOs
from etl.pipeline.topten import TopTenStates


@pytest.mark.parametrize("cls", [ReadUFOs, AggregateUFOsByState, TopTenStates, TopStatesToDatabase])
def test_a_task_class_has_luigis_own_parameters_in_luigis_order(cls):
    expected = luigi.Task.get_params.__func__(cls)  # Luigi's own, through dir(cls)
    assert cls.get_params() == expected
    assert [name for name, _ in cls.get_params()][:1] == ["date"]
    mutated = cls.get_params()
    mutated.clear()  # a caller's list is its own
    assert cls.get_params() == expected


def test_each_class_keeps_its_own_list():
    class WithMore(TopTenStates):
        extra = luigi.Parameter(default="x")

    assert TopTenStates.get_params()  # worked out for the parent first
    names = [name for name, _ in WithMore.get_params()]
    assert "extra" in names and "extra" not in [n for n, _ in TopTenStates.get_params()]
