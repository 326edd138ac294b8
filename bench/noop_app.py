"""A Spark application that does nothing: the fixed cost of one spark-submit."""

from pyspark.sql import SparkSession

SparkSession.builder.appName("noop").getOrCreate().stop()
