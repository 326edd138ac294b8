"""The pipeline: four Luigi tasks chained over the lake, each partitioned by run date.

    ReadUFOs -> AggregateUFOsByState (spark-submit) -> TopTenStates -> TopStatesToDatabase

Each task reads only ``self.input()``; the targets in ``targets.py`` know how to load what they
point to.
"""

from etl.pipeline.aggregate import AggregateUFOsByState
from etl.pipeline.load import TopStatesToDatabase
from etl.pipeline.read import ReadUFOs
from etl.pipeline.topten import TopTenStates

__all__ = ["ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase"]
