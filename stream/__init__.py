"""The producer: configuration, CLI, the anyio pipeline, process pool, dedup index,
commit log and resume. Knows neither how a kernel is built nor how bytes reach storage."""
