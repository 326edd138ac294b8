"""Local tooling: ``make demo`` and ``make up`` (the local stack, a private PostgreSQL), the
sample generator, and the Spark driver's class archive."""
