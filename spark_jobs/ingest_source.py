"""Read a source cut into pieces (whole records each) into the raw zone, the pieces in parallel.

A standalone PySpark job: ``ReadUFOs`` submits it for a source too large to read on one
machine (``UFO_INGEST``), after cutting the source's UTF-8 copy at record boundaries
(``etl/adapters/pieces.py``). It runs the same with plain spark-submit::

    spark-submit spark_jobs/ingest_source.py --pieces lake/_attempts/A/raw/source \\
        --header '["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted"]' \\
        --columns '["Date / Time", "State", "Posted"]' --positions '[0, 2, 6]' \\
        --output lake/_attempts/A/raw/records

or as a session of a Spark Connect server (``SPARK_REMOTE=sc://host:15002``). Each executor
reads whole pieces with the pipeline's own reader (``records.py``, shipped with the job), so
every piece's records are exactly those the reader finds in it on one machine, ragged records
and blank lines included. The pieces are the files of ``--pieces`` in the order of their names;
the first starts with the source's header, the others with a record. Under ``--output``: the records' Parquet files (the raw zone's columns:
one string per kept column, and ``_record``) and ``_ingest.json``: the files, and how many
records, blank lines and ragged records the executors found.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# Beside this file: shipped with the job, no package needed.
import jobfiles  # noqa: E402
import records  # noqa: E402
from records import RECORD  # noqa: E402

#: What the executors need besides this file: imported by their own names there.
SHIPPED = ("records.py",)
#: The size of the Parquet row groups the executors write.
ROW_GROUP_BYTES = 32 << 20
#: The column carrying a piece's count of blank lines, on one extra row per piece (not written).
BLANK = "_blank_lines"


def raw_schema(names: list[str]) -> StructType:
    return StructType([StructField(name, StringType(), False) for name in (*names, RECORD)])


def ship(spark: SparkSession, connect: bool) -> None:
    """Make ``records.py`` importable on the executors."""
    for name in SHIPPED:
        path = os.path.join(HERE, name)
        if connect:
            spark.addArtifacts(path, pyfile=True)
        else:
            spark.sparkContext.addPyFile(path)


def transform_read_pieces(
    pieces: DataFrame, header: list[str], names: list[str], positions: list[int], first: str
) -> DataFrame:
    """The records of every piece (``path``, ``content``: Spark's binaryFile rows), and for
    each piece one more row, all fields empty, whose ``BLANK`` holds its blank lines (every
    record's is null). ``first``: the name of the piece that starts with the header."""
    import pyarrow as pa

    schema = StructType([*raw_schema(names).fields, StructField(BLANK, LongType(), True)])

    def read(batches):
        for batch in batches:
            paths = batch.column("path").to_pylist()
            for path, content in zip(paths, batch.column("content")):
                is_first = posixpath.basename(path) == first
                tables, written = records.read_piece(
                    content.as_py(), header, names, positions, is_first
                )
                for table in tables:
                    blank = pa.nulls(table.num_rows, pa.int64())
                    yield from table.append_column(BLANK, blank).to_batches()
                counts = [pa.array([""], pa.string())] * (len(names) + 1)
                counts.append(pa.array([written.blank_lines], pa.int64()))
                yield pa.RecordBatch.from_arrays(counts, schema=_arrow(schema))

    return pieces.select("path", "content").mapInArrow(read, schema)


def _arrow(schema: StructType):
    import pyarrow as pa

    types = {StringType(): pa.string(), LongType(): pa.int64()}
    return pa.schema(
        [pa.field(f.name, types[f.dataType], nullable=f.nullable) for f in schema.fields]
    )


def load_records(read: DataFrame, output: str) -> dict[str, int]:
    """Write the records of ``read`` (``transform_read_pieces``) as Parquet under ``output``:
    how many records, blank lines and ragged records there were, counted as they are written."""
    counted = Observation("ingested")
    observed = read.observe(
        counted,
        F.count(F.when(F.col(BLANK).isNull(), 1)).alias("records"),
        F.coalesce(F.sum(BLANK), F.lit(0)).alias("blank_lines"),
        F.count(F.when(F.col(BLANK).isNull() & (F.col(RECORD) != ""), 1)).alias("ragged"),
    )
    records = observed.where(F.col(BLANK).isNull()).drop(BLANK)
    # Row groups of 32 MB, not 128: an executor holds one per file it writes.
    writer = records.write.mode("errorifexists").option("compression", "snappy")
    writer.option("parquet.block.size", str(ROW_GROUP_BYTES)).parquet(output)
    return {name: int(value) for name, value in counted.get.items()}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pieces",
        required=True,
        help="the folder of the source's pieces (the first starts with its header)",
    )
    parser.add_argument(
        "--header",
        required=True,
        type=json.loads,
        help="the source's header, a JSON list of its fields",
    )
    parser.add_argument(
        "--columns",
        required=True,
        type=json.loads,
        help="the columns kept, a JSON list of names as the header spells them",
    )
    parser.add_argument(
        "--positions",
        required=True,
        type=json.loads,
        help="their positions in the header, a JSON list",
    )
    parser.add_argument("--output", required=True, help="where the records' Parquet goes")
    parser.add_argument("--name", help="the Spark application's name")
    return parser.parse_args(argv)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    connect = "SPARK_REMOTE" in os.environ or "SPARK_CONNECT_MODE_ENABLED" in os.environ
    pieces = [f"{args.pieces.rstrip('/')}/{name}" for name in jobfiles.list_files(args.pieces)]
    if not pieces:
        print(f"error: {args.pieces} holds no pieces of a source", file=sys.stderr, flush=True)
        return 2
    name = args.name or f"ReadUFOs on the cluster ({len(pieces)} pieces)"
    spark = SparkSession.builder.appName(name).getOrCreate()
    try:
        ship(spark, connect)
        # One piece to an Arrow batch: several would pass its 2 GB, or the JVM's memory, sooner.
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "1")
        rows = spark.read.format("binaryFile").load(pieces)
        first = posixpath.basename(pieces[0])
        read = transform_read_pieces(rows, args.header, args.columns, args.positions, first)
        counts = load_records(read, args.output)
        files = jobfiles.list_files(args.output)
        report = {**counts, "files": files, "pieces": len(pieces)}
        jobfiles.write_bytes(
            f"{args.output.rstrip('/')}/_ingest.json", json.dumps(report).encode("utf-8")
        )
        print(json.dumps(report), flush=True)
        return 0
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
