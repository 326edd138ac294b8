"""The pipeline's standalone PySpark applications, run by spark-submit."""

from pathlib import Path

#: The application AggregateUFOsByState submits.
AGGREGATE_BY_STATE = Path(__file__).resolve().parent / "aggregate_by_state.py"
#: The application ReadUFOs submits for a source it parses on the cluster.
INGEST_SOURCE = Path(__file__).resolve().parent / "ingest_source.py"
#: The driver of the local product's Spark Connect server (``make up``).
CONNECT_SERVER = Path(__file__).resolve().parent / "connect_server.py"
