"""``jitsynth bench --capacity N``: how many records a second one producer's main process can
take, measured with workers that cost almost nothing.

The pipeline bench runs the main process beside real workers, so it mostly waits: on a
2-worker machine it handles ~120 records/s, and its CPU per record is then dominated by
what waking up costs (on this project's VMs ~10 ms of scheduler runtime per idle wake-up of
a thread; ``main_idle_cpu_ms_per_s`` in the bench). What decides how many workers one
producer can feed is its cost per record when it is busy. Here each worker builds a few real
records once (Warp codegen, in its initialiser), then answers every batch at once with
those lines under fresh ids, so the whole producer path runs for real (pool IPC, worker-side
facts and compression at zstd level 1, dedup, shard planning, frames written, commits,
checkpoints) at the rate the main process can sustain. ``main_ms_per_record`` is its CPU
per record then; ``records_per_core_s`` = 1000 / that is how many records a second one core
of main process takes, and ``workers_one_producer_feeds`` divides it by what one real
worker makes (the ceiling's kernels/s per process, measured in the same bench run).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

_LINES: list[bytes] = []
_FIRST_SEED = 10_000_000


def init_instant_worker(n_lines: int) -> None:
    """Pool initialiser: real records for ``n_lines`` seeds, built once."""
    from synth.gen.config import GeneratorConfig
    from synth.record import encode_line
    from synth.worker import WorkerSettings, build_records, init_worker

    settings = WorkerSettings(GeneratorConfig(), "capacity")
    init_worker(settings)
    results = build_records(list(range(_FIRST_SEED, _FIRST_SEED + n_lines)), settings)
    _LINES[:] = [encode_line(r) for r in results if not isinstance(r, BaseException)]


def instant_batch(seeds: list[int]) -> list[Any]:
    """A real record's line for each seed, under an id of its own (so dedup keeps it)."""
    from synth.worker import Produced

    return [Produced(s, hashlib.blake2b(s.to_bytes(8, "little"), digest_size=16).hexdigest(),
                     _LINES[s % len(_LINES)]) for s in seeds]


def measure_capacity(records: int, workers: int = 2, n_lines: int = 32) -> dict[str, Any]:
    import anyio

    from sinks.url import opened_sink
    from stream.config import load_settings
    from stream.metrics import Metrics
    from stream.pipeline import Producer, WorkSpec

    with tempfile.TemporaryDirectory(prefix="jitsynth-capacity-") as tmp:
        root = Path(tmp)
        settings = load_settings({"out": str(root / "ds"), "count": records, "workers": workers, "zstd_level": 1,
                                  "state_dir": root / "state", "log_format": "json", "log_level": "warning"})
        work = WorkSpec(instant_batch, init_instant_worker, (n_lines,), "capacity-bench")
        metrics = Metrics()

        async def main() -> Any:
            async with opened_sink(settings.out, None) as sink:
                return await Producer(settings, sink, metrics, work).run()

        anyio.run(main, backend="asyncio")
    wall = (metrics.finished or time.monotonic()) - metrics.started
    committed = int(metrics.records._value.get())
    cpu_ms = 1000 * metrics.main_cpu_seconds() / max(committed, 1)
    return {"records": committed, "workers": workers, "batch_size": settings.batch_size,
            "shard_records": settings.shard_records, "wall_s": round(wall, 2),
            "records_per_s": round(committed / wall, 1), "main_ms_per_record": round(cpu_ms, 4),
            "main_cpu_utilisation": round(metrics.main_cpu_seconds() / wall, 3),
            "records_per_core_s": round(1000 / cpu_ms) if cpu_ms > 0 else None}


def feeds(capacity: dict[str, Any], kernels_per_s_per_worker: float) -> int | None:
    """Workers whose records one core of main process takes (the capacity scale model)."""
    per_core = capacity.get("records_per_core_s")
    return int(per_core / kernels_per_s_per_worker) if per_core and kernels_per_s_per_worker > 0 else None
