"""``jitsynth bench``: the pipeline measured against the raw codegen ceiling, side by
side in one run on the same seeds, plus the per-stage profile.

- ceiling: W plain processes, each calling the pool's own task (``FramedTask`` around
  ``process_batch``: build, serialise, compress a zstd frame per batch, fold the stats
  facts) on its share of the producer's batches (no pool, no IPC, no dedup, no storage,
  no commits); its rate is the SUM
  of the processes' own rates (kernels / that process's time), what W processes sustain
  when none waits for another; the static split's wall-clock rate, where the slowest
  process sets the figure, is kept as ``static_split_kernels_per_s``;
- pipeline (local sink) and pipeline (S3 sink, against a SeaweedFS the bench starts): the
  real Producer over the same seeds, with the main process's CPU per record (what decides
  how many workers one producer can feed: the scale model in the README);
- sweep: the ceiling and the local pipeline at 1, 2, 4 ... N workers.
Both clocks start after the worker processes have started and initialised Warp; both sides
run under the same sampler, a separate process (``stream.bench.sampler``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio
import psutil

from stream.bench.components import measure_idle_main
from stream.bench.capacity import measure_capacity
from stream.bench.sampler import Sampler


def _ceiling_worker(batches: list[list[int]], ready: Any, go: Any, out: Any) -> None:
    from stream.config import Settings
    from stream.framing import FramedTask
    from synth.gen.config import GeneratorConfig
    from synth.worker import WorkerSettings, init_worker, process_batch

    # The pool's own task on the pipeline's batches: records built, serialised, compressed
    # into a frame per batch and their stats facts folded, as a pool worker does; what the
    # pipeline adds (pool, IPC, dedup, storage, commits) is what the ratio measures.
    task = FramedTask(process_batch, Settings.model_fields["zstd_level"].default)
    init_worker(WorkerSettings(GeneratorConfig(), "bench"))
    ready.set()
    go.wait()
    t0 = time.perf_counter()
    kept = sum(len(task(batch).kept()) for batch in batches)
    n = sum(len(batch) for batch in batches)
    out.put((kept, n, time.perf_counter() - t0, psutil.Process().memory_info().rss))


def batch_grid(seeds: list[int], batch: int) -> list[list[int]]:
    """Consecutive ``seeds`` cut on the producer's grid (``stream.framing.grid_end``), as it submits them."""
    from stream.framing import grid_end

    grid: list[list[int]] = []
    for seed in seeds:
        if not grid or seed == grid_end(grid[-1][0], batch):
            grid.append([])
        grid[-1].append(seed)
    return grid


def bracket(before: float, after: float) -> float:
    """The ceiling a pipeline run is compared with: the mean of those measured just before
    and just after it, so a steady drift of the host's speed moves both sides alike."""
    return round((before + after) / 2, 1)


def measure_ceiling(seeds: list[int], workers: int) -> dict[str, Any]:
    from stream.config import Settings

    batches = batch_grid(seeds, Settings.model_fields["batch_size"].default)
    workers = min(workers, len(batches))  # a tiny run: no process without a batch
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    readies = [ctx.Event() for _ in range(workers)]
    procs = [ctx.Process(target=_ceiling_worker, args=(batches[i::workers], readies[i], go, out))
             for i in range(workers)]
    for p in procs:
        p.start()
    for r in readies:
        r.wait()
    # The same sampler as the pipeline's: whatever it costs, both sides pay it.
    with Sampler() as sampler:
        t0 = time.perf_counter()
        go.set()
        results = [out.get() for _ in procs]
        wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    done = sum(r[1] for r in results)
    return {"kernels": done, "records": sum(r[0] for r in results), "wall_s": round(wall, 2),
            "kernels_per_s": round(sum(r[1] / r[2] for r in results), 1),
            "static_split_kernels_per_s": round(done / wall, 1),
            "per_process_kernels_per_s": [round(r[1] / r[2], 1) for r in results],
            "worker_rss_mb": [round(r[3] / 2**20, 1) for r in results],
            "peak_rss_workers_mb": sorted(round(v / 2**20, 1) for v in sampler.peak_workers.values()),
            "cpu_utilisation": round(sampler.cpu_utilisation(), 3)}


def measure_pipeline(out: str, seeds: list[int], workers: int, state_dir: Path,
                     endpoint_url: str | None = None) -> dict[str, Any]:
    from sinks.url import opened_sink
    from stream.config import load_settings
    from stream.metrics import Metrics
    from stream.pipeline import Producer

    # --count equals the seed count only if there are no duplicates or failures; a
    # producer that sees some simply consumes a few more seeds, which is counted.
    settings = load_settings({"out": out, "count": len(seeds), "workers": workers, "seed_start": seeds[0],
                              "state_dir": state_dir, "endpoint_url": endpoint_url, "shard_records": 500,
                              "log_format": "json", "log_level": "warning"})
    metrics = Metrics()

    async def main() -> Any:
        async with opened_sink(settings.out, settings.endpoint_url) as sink:
            return await Producer(settings, sink, metrics).run()

    with Sampler() as sampler:
        anyio.run(main, backend="asyncio")
    # To the last commit, as the ceiling's clock stops at its last kernel (pool shutdown excluded).
    elapsed = (metrics.finished or time.monotonic()) - metrics.started
    processed = metrics.processed._value.get()
    records = metrics.records._value.get()
    main_cpu = metrics.main_cpu_seconds()  # the sampler is another process (stream.bench.sampler)
    return {
        "kernels": int(processed), "records": int(records), "wall_s": round(elapsed, 2), "main_cpu_s": round(main_cpu, 4),
        "kernels_per_s": round(processed / elapsed, 1),
        # From the workers being up to the last commit.
        "main_cpu_ms_per_record": round(1000 * main_cpu / max(records, 1), 4),
        "main_cpu_ms_per_kernel": round(1000 * main_cpu / max(processed, 1), 4),
        "stored_bytes_per_record": round(metrics.stored_bytes._value.get() / max(records, 1)),
        "raw_bytes_per_record": round(metrics.raw_bytes._value.get() / max(records, 1)),
        "peak_rss_main_mb": round(sampler.peak_main / 2**20, 1),
        "peak_rss_workers_mb": sorted(round(v / 2**20, 1) for v in sampler.peak_workers.values()),
        "cpu_utilisation": round(sampler.cpu_utilisation(), 3),
        "storage_retries": int(metrics.storage_retries._value.get()) if hasattr(metrics.storage_retries, "_value")
        else 0,
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(), "warp": version("warp-lang"),
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}


def run_bench(n: int, workers: int, with_s3: bool = True, seed_start: int = 10_000_000,
              rounds: int = 3, capacity: int = 20_000) -> dict[str, Any]:
    """Ceiling, local pipeline and S3 pipeline, interleaved for ``rounds`` rounds on the same
    seeds, with one more ceiling at the end: each round's pipelines are compared with the
    mean of the ceilings measured just before and just after them, so a host whose speed
    drifts during a round (this shared VM's does, by 5-10% in a minute) moves both sides
    alike. Each ratio is the median of the per-round ratios, so a noisy neighbour that slows
    one measurement does not decide the result."""
    import statistics

    seeds = list(range(seed_start, seed_start + n))
    result: dict[str, Any] = {"machine": machine(), "kernels": n, "workers": workers, "rounds": rounds,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    runs: dict[str, list[dict[str, Any]]] = {"ceiling": [], "pipeline_local": [], "pipeline_s3": []}
    with tempfile.TemporaryDirectory(prefix="jitsynth-bench-") as tmp:
        root = Path(tmp)
        server = _start_seaweed(root) if with_s3 else None
        if with_s3 and isinstance(server, str):
            runs["pipeline_s3"].append({"skipped": server})
            server = None
        try:
            for r in range(rounds):
                runs["ceiling"].append(measure_ceiling(seeds, workers))
                runs["pipeline_local"].append(measure_pipeline(str(root / f"ds{r}"), seeds, workers, root / f"st{r}"))
                if server is not None:
                    with _aws_env():
                        runs["pipeline_s3"].append(measure_pipeline(f"s3://bench/ds{r}", seeds, workers,
                                                                    root / f"st-s3-{r}", endpoint_url=server.endpoint))
            runs["ceiling"].append(measure_ceiling(seeds, workers))  # closes the last round's bracket
            if server is not None:
                with _aws_env():
                    runs["pipeline_s3"][-1]["shard_memory"] = anyio.run(_shard_memory, server.endpoint,
                                                                        backend="asyncio")
        finally:
            if server is not None:
                server.cleanup()
    rates = [c["kernels_per_s"] for c in runs["ceiling"]]
    brackets = [bracket(before, after) for before, after in zip(rates, rates[1:])]
    result["runs"] = runs
    result["ceiling"] = runs["ceiling"][-1]
    result["pipeline_local"] = runs["pipeline_local"][-1]
    result["ceiling_kernels_per_s"] = statistics.median(rates)
    result["ceiling_per_round"] = brackets
    result["pipeline_kernels_per_s"] = statistics.median(p["kernels_per_s"] for p in runs["pipeline_local"])
    local = [round(p["kernels_per_s"] / c, 3) for p, c in zip(runs["pipeline_local"], brackets)]
    result["ratio"] = statistics.median(local)
    s3_runs = [p for p in runs["pipeline_s3"] if "kernels_per_s" in p]
    s3 = [round(p["kernels_per_s"] / c, 3) for p, c in zip(s3_runs, brackets)]
    if runs["pipeline_s3"]:
        result["pipeline_s3"] = runs["pipeline_s3"][-1]
    if s3_runs:
        result["pipeline_s3_kernels_per_s"] = statistics.median(p["kernels_per_s"] for p in s3_runs)
        result["ratio_s3"] = statistics.median(s3)
    result["main_idle_cpu_ms_per_s"] = idle = measure_idle_main(workers)
    result["capacity"] = measure_capacity(capacity, workers) if capacity else None
    result["scale_model"] = scale_model(runs["ceiling"], runs["pipeline_local"], idle, result["capacity"])
    result["ratios_per_round"] = {"local": local, "s3": s3}
    return result


def scale_model(ceilings: list[dict[str, Any]], pipelines: list[dict[str, Any]], idle_ms_per_s: float = 0.0,
                capacity: dict[str, Any] | None = None) -> dict[str, Any]:
    """How many workers one producer's main process can feed (medians of the runs).

    A worker spends ``worker_ms_per_kernel`` per kernel (the ceiling's per-process rates).
    The main process spends ``idle_ms_per_s`` every second whatever the rate (its pool's
    manager threads waking up, measured with the pool idle) and ``busy_ms_per_record`` per
    record when busy (``stream.bench.capacity``: instant workers, so it never waits). W workers
    then cost it idle + W * 1000 / worker_ms * busy ms a second, one core at
    W = (1000 - idle) * worker_ms / (1000 * busy). ``workers_one_producer_feeds_all_per_kernel``
    is the stricter reading that charges all of its CPU in the 2-worker pipeline runs per
    kernel (mostly wake-ups while it waits for two workers)."""
    import statistics

    worker_ms = statistics.median(1000 / r for c in ceilings for r in c["per_process_kernels_per_s"])
    main_ms = statistics.median(p["main_cpu_ms_per_kernel"] for p in pipelines)
    busy = capacity["main_ms_per_record"] if capacity else None
    feeds = int((1000 - idle_ms_per_s) * worker_ms / (1000 * busy)) if busy else None
    return {"worker_ms_per_kernel": round(worker_ms, 2), "main_ms_per_kernel": round(main_ms, 4),
            "main_ms_per_record": statistics.median(p["main_cpu_ms_per_record"] for p in pipelines),
            "idle_ms_per_s": idle_ms_per_s, "busy_ms_per_record": busy,
            "workers_one_producer_feeds_all_per_kernel": int(worker_ms / main_ms) if main_ms > 0 else None,
            "workers_one_producer_feeds": feeds}


def run_sweep(n: int, max_workers: int, seed_start: int = 10_000_000, capacity: int = 20_000) -> dict[str, Any]:
    """The ceiling and the local pipeline at 1, 2, 4 ... ``max_workers`` workers, side by
    side (n kernels per worker, so each step runs about as long as the others); each step's
    pipeline is compared with the mean of a ceiling just before and one just after it."""
    steps = sorted({min(2 ** i, max_workers) for i in range(max_workers.bit_length() + 1)})
    result: dict[str, Any] = {"machine": machine(), "kernels_per_worker": n, "steps": [],
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    result["capacity"] = busy = measure_capacity(capacity, 2) if capacity else None
    with tempfile.TemporaryDirectory(prefix="jitsynth-sweep-") as tmp:
        for workers in steps:
            idle = measure_idle_main(workers)
            seeds = list(range(seed_start, seed_start + n * workers))
            # The pipeline between two ceilings, against their mean (as run_bench's rounds).
            before = measure_ceiling(seeds, workers)
            pipeline = measure_pipeline(str(Path(tmp) / f"ds{workers}"), seeds, workers, Path(tmp) / f"st{workers}")
            after = measure_ceiling(seeds, workers)
            ceiling = bracket(before["kernels_per_s"], after["kernels_per_s"])
            result["steps"].append({
                "workers": workers, "ceiling_kernels_per_s": ceiling,
                "ceilings_before_after": [before["kernels_per_s"], after["kernels_per_s"]],
                "pipeline_kernels_per_s": pipeline["kernels_per_s"],
                "ratio": round(pipeline["kernels_per_s"] / ceiling, 3),
                "main_cpu_ms_per_record": pipeline["main_cpu_ms_per_record"],
                "main_idle_cpu_ms_per_s": idle, "scale_model": scale_model([before, after], [pipeline], idle, busy)})
    return result


_BENCH_KEY, _BENCH_SECRET = "jitsynth-bench", "jitsynth-bench-secret"


def _start_seaweed(root: Path) -> Any:
    from sinks.seaweed import SeaweedServer

    try:
        return SeaweedServer("bench", _BENCH_KEY, _BENCH_SECRET, data_dir=root / "weed").start()
    except Exception as exc:  # noqa: BLE001 - the bench still reports the local numbers
        return f"SeaweedFS did not start: {exc}"


@contextlib.contextmanager
def _aws_env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID=_BENCH_KEY, AWS_SECRET_ACCESS_KEY=_BENCH_SECRET)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def _shard_memory(endpoint: str) -> dict[str, Any]:
    from sinks.url import opened_sink
    from stream.bench.components import shard_memory

    async with opened_sink("s3://bench/memtest", endpoint_url=endpoint) as sink:
        return await shard_memory(sink, 200)
