"""Adapters to the outside world: the data lake and its manifests, the database, the raw
source, and how Spark is started. Nothing here knows the pipeline's tasks."""
