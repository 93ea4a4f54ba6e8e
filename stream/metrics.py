"""Run metrics: Prometheus counters/histograms (served with ``--metrics-port``) that
also feed the progress display and the end-of-run summary."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.processed = Counter("jitsynth_kernels_processed", "Seeds whose outcome reached the pipeline", registry=r)
        self.duplicates = Counter("jitsynth_duplicates", "Kernels dropped as duplicates", registry=r)
        self.failures = Counter("jitsynth_failures", "Seeds that produced no record (Warp rejection, worker fault)",
                                registry=r)
        self.records = Counter("jitsynth_records_committed", "Records committed by this run", registry=r)
        self.shards = Counter("jitsynth_shards_committed", "Shards committed by this run", registry=r)
        self.stored_bytes = Counter("jitsynth_stored_bytes", "Compressed bytes committed", registry=r)
        self.raw_bytes = Counter("jitsynth_raw_bytes", "Uncompressed JSONL bytes committed", registry=r)
        self.committed = Gauge("jitsynth_dataset_records", "Records this producer has committed in the dataset",
                               registry=r)
        self.commit_seconds = Histogram("jitsynth_commit_seconds", "Time to finish a shard and write its commit",
                                        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r)
        self.batch_seconds = Histogram("jitsynth_batch_seconds", "Time a batch of seeds spends in the pool "
                                       "(queueing included)", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 120),
                                       registry=r)
        self.storage_retries = Gauge("jitsynth_storage_retries", "Transient storage errors retried so far",
                                     registry=r)
        self.started = time.monotonic()
        self.started_cpu = time.process_time()
        self.finished: float | None = None
        self.finished_cpu: float | None = None

    def mark_started(self) -> None:
        """The workers are up: throughput and this process's CPU count from here."""
        self.started = time.monotonic()
        self.started_cpu = time.process_time()

    def mark_finished(self) -> None:
        """The last commit is stored (before the pool and the sink shut down)."""
        self.finished = time.monotonic()
        self.finished_cpu = time.process_time()

    def main_cpu_seconds(self) -> float:
        """CPU seconds this (main) process used between mark_started and mark_finished."""
        return (self.finished_cpu if self.finished_cpu is not None else time.process_time()) - self.started_cpu

    def watch_sink(self, sink: object) -> None:
        """Export the sink's retry counter (S3 sinks count transient errors they retried)."""
        self.storage_retries.set_function(lambda: float(getattr(sink, "retries", 0)))

    def on_commit(self, count: int, stored: int, raw: int, seconds: float, total: int) -> None:
        self.records.inc(count)
        self.shards.inc()
        self.stored_bytes.inc(stored)
        self.raw_bytes.inc(raw)
        self.commit_seconds.observe(seconds)
        self.committed.set(total)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.processed._value.get() / elapsed if elapsed > 0 else 0.0
