"""Read a source cut into pieces (whole records each) into the raw zone, the pieces in parallel.

A standalone PySpark job: ``ReadUFOs`` submits it for a source it reads on the cluster
(``UFO_INGEST``), after cutting the source's UTF-8 copy at record boundaries
(``etl/adapters/pieces.py``). It runs the same with plain spark-submit::

    spark-submit spark_jobs/ingest_source.py --pieces lake/_attempts/A/raw/source \\
        --header '["Date / Time", "City", "State", "Shape", "Duration", "Summary", "Posted"]' \\
        --columns '["Date / Time", "State", "Posted"]' --positions '[0, 2, 6]' \\
        --output lake/_attempts/A/raw/records

or as a session of a Spark Connect server (``SPARK_REMOTE=sc://host:15002``). The pieces are the
files of ``--pieces`` in the order of their names; the first starts with the source's header,
the others with a record. Each piece is one Spark task: its executor reads the piece from the
lake and writes its records to ``--output``/``part-NNNNN.parquet`` itself, with the pipeline's
own reader (``records.py``, shipped with the job), so every piece's records are exactly those the
reader finds in it on one machine, ragged records and blank lines included, and the data never
passes through Spark's JVM. A task run again writes the same file again. The lake is a local
path the executors share, or S3 (``jobfiles.py``, with boto3 and the usual ``AWS_*`` variables).

Beside the Parquet files, ``_ingest.json``: the files, and how many records, blank lines and
ragged records the executors found.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import LongType, StringType, StructField, StructType

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# Beside this file: shipped with the job, no package needed.
import arrowpool  # noqa: E402
import jobfiles  # noqa: E402
import records  # noqa: E402

#: What the executors import besides PySpark, by their own names.
SHIPPED = ("records.py", "jobfiles.py", "arrowpool.py")
#: What each piece's task reports.
COUNTS = ("records", "blank_lines", "ragged")
REPORT = StructType(
    [StructField("piece", LongType()), StructField("file", StringType())]
    + [StructField(name, LongType()) for name in COUNTS]
)


def ship(spark: SparkSession, connect: bool) -> None:
    """Make the modules of ``SHIPPED`` importable on the executors."""
    for name in SHIPPED:
        path = os.path.join(HERE, name)
        if connect:
            spark.addArtifacts(path, pyfile=True)
        else:
            spark.sparkContext.addPyFile(path)


def piece_file(index: int) -> str:
    return f"part-{index:05d}.parquet"


def read_piece(piece: str, index: int, header: list[str], names: list[str],
               positions: list[int], output: str) -> dict:  # fmt: skip
    """Parse the piece at ``piece`` (number ``index``; the first starts with the header) into
    its Parquet file under ``output``: what it found."""
    target = f"{output.rstrip('/')}/{piece_file(index)}"
    with tempfile.TemporaryDirectory(prefix="ufo-piece-") as tmp:
        source = jobfiles.fetch(piece, tmp)
        written_to = jobfiles.local(target)
        if written_to is not None:
            os.makedirs(os.path.dirname(written_to), exist_ok=True)
        else:
            written_to = os.path.join(tmp, piece_file(index))
        found = records.write_piece(
            source, len(header), names, positions, written_to, header=index == 0
        )
        if jobfiles.local(target) is None:
            jobfiles.upload(written_to, target)
    return {"piece": index, "file": piece_file(index), "records": found.records,
            "blank_lines": found.blank_lines, "ragged": found.ragged}  # fmt: skip


def transform_read_pieces(
    spark: SparkSession, pieces: list[str], header: list[str], names: list[str],
    positions: list[int], output: str,
) -> DataFrame:  # fmt: skip
    """One task per piece, each writing its piece's records; a row of ``REPORT`` for each."""

    def read(batches):
        import pyarrow as pa

        arrowpool.use_jemalloc()  # an executor's Python worker, started by Spark
        for batch in batches:
            for index in batch.column("id").to_pylist():
                found = read_piece(pieces[index], index, header, names, positions, output)
                yield pa.RecordBatch.from_pylist([found])

    return spark.range(0, len(pieces), 1, len(pieces)).mapInArrow(read, REPORT)


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
    folder = args.pieces.rstrip("/")
    pieces = [f"{folder}/{name}" for name in jobfiles.list_files(folder)]
    if not pieces:
        print(f"error: {args.pieces} holds no pieces of a source", file=sys.stderr, flush=True)
        return 2
    connect = "SPARK_REMOTE" in os.environ or "SPARK_CONNECT_MODE_ENABLED" in os.environ
    name = args.name or f"ReadUFOs on the cluster ({len(pieces)} pieces)"
    spark = SparkSession.builder.appName(name).getOrCreate()
    try:
        ship(spark, connect)
        found = transform_read_pieces(
            spark, pieces, args.header, args.columns, args.positions, args.output
        ).collect()
        found = sorted((row.asDict() for row in found), key=lambda row: row["piece"])
        if [row["piece"] for row in found] != list(range(len(pieces))):  # Spark lost none, but
            raise RuntimeError(f"the pieces read are not the {len(pieces)} pieces of the source")
        report = {name: sum(row[name] for row in found) for name in COUNTS}
        report.update(files=[row["file"] for row in found], pieces=len(pieces))
        jobfiles.write_bytes(
            f"{args.output.rstrip('/')}/_ingest.json", json.dumps(report).encode("utf-8")
        )
        print(json.dumps({k: v for k, v in report.items() if k != "files"}), flush=True)
        return 0
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
