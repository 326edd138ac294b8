"""Local tooling: ``make demo`` and ``make up`` (the local stack, a private PostgreSQL), the
sample generator, the Spark driver's class archive, the database rebuilt from the lake and the
lake's check and sweep."""
