"""The ``jitsynth`` command line (a contract: see DESIGN.md).

Exit status: 0 done; 2 bad usage or configuration (one line, no traceback); 1 a
runtime failure retries could not overcome (with what was kept and how to resume).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import structlog
import typer

from stream.config import ConfigError, load_settings
from stream.logs import configure

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Synthesise Warp kernels paired with the C++/CUDA Warp generates for them.")
log = structlog.get_logger("jitsynth")

Opt = typer.Option


def _fail(code: int, message: str) -> None:
    typer.echo(f"jitsynth: error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def producer_exit_codes(settings: Any) -> Iterator[None]:
    """Map a producer's failures to the CLI contract: 2 for configuration, 1 for runtime
    failures retries could not overcome (saying what was kept and how to resume)."""
    from sinks.base import SinkConfigError, SinkError, SinkPermanentError
    from stream.pipeline import FencingError

    resume_hint = "nothing committed is lost; rerun the same command to resume"
    try:
        yield
    except (ConfigError, SinkConfigError) as exc:
        _fail(2, str(exc))
    except SinkPermanentError as exc:
        _fail(1, f"{exc}. {resume_hint}")
    except SinkError as exc:
        _fail(1, f"{exc} (gave up after retrying for {settings.retry_deadline:g}s). {resume_hint}")
    except FencingError as exc:
        _fail(1, str(exc))
    except TimeoutError:
        _fail(1, f"the open shard could not be committed within the {settings.grace_period:g}s grace period; "
                 f"{resume_hint}")


@app.command()
def run(
    out: Annotated[str | None, Opt(help="Dataset URL: s3://bucket/prefix or a local directory")] = None,
    count: Annotated[int | None, Opt(help="Stop once this producer has N records committed")] = None,
    workers: Annotated[int | None, Opt(help="Worker processes (default: CPU count)")] = None,
    producer: Annotated[str | None, Opt(help="Producer id (default: $JOB_COMPLETION_INDEX or 0)")] = None,
    seed_start: Annotated[int | None, Opt(help="First seed (default: producer index * 2^40)")] = None,
    shard_records: Annotated[int | None, Opt(help="Roll a shard after N records")] = None,
    shard_bytes: Annotated[str | None, Opt(help="Roll a shard at this compressed size, e.g. 64MiB")] = None,
    shard_age: Annotated[float | None, Opt(help="Roll a shard after this many seconds")] = None,
    checkpoint_every: Annotated[int | None, Opt(help="Write a commit-log checkpoint every N commits "
                                                     "(default 100) and at the end of a run")] = None,
    validate: Annotated[str | None, Opt(help="Tiers: codegen,ptx,cpu-compile,execute")] = None,
    keep_ptx: Annotated[bool | None, Opt("--keep-ptx", help="Store each record's NVRTC PTX (runs the ptx tier)")] = None,
    state_dir: Annotated[Path | None, Opt(help="Local cache of the dedup index")] = None,
    endpoint_url: Annotated[str | None, Opt(help="S3 endpoint (or $AWS_ENDPOINT_URL)")] = None,
    config: Annotated[Path | None, Opt(help="TOML config file")] = None,
    batch_size: Annotated[int | None, Opt(help="Seeds per worker task")] = None,
    task_timeout: Annotated[float | None, Opt(help="Seconds before a worker task is killed")] = None,
    max_rate: Annotated[float | None, Opt(help="Submit at most this many kernels per second (default: "
                                               "unlimited), e.g. on a shared node")] = None,
    grace_period: Annotated[float | None, Opt(help="Seconds to commit the open shard after SIGTERM")] = None,
    log_format: Annotated[str | None, Opt(help="auto, json or console")] = None,
    metrics_port: Annotated[int | None, Opt(help="Serve Prometheus metrics on 127.0.0.1:PORT")] = None,
    metrics_host: Annotated[str | None, Opt(help="Address for --metrics-port (default 127.0.0.1)")] = None,
    progress: Annotated[str | None, Opt(help="Live progress display: auto (on a terminal), on or off")] = None,
    source: Annotated[str | None, Opt(help="Kernel source: generator (default) or variants:DATASET[,DATASET...] "
                                           "(mutations of the real kernels of ingested datasets)")] = None,
) -> None:
    """Produce: stream deduplicated kernel records into committed shards."""
    cli: dict[str, Any] = dict(out=out, count=count, workers=workers, producer=producer, seed_start=seed_start,
                               shard_records=shard_records, shard_bytes=shard_bytes, shard_age=shard_age,
                               checkpoint_every=checkpoint_every, validate_tiers=validate, keep_ptx=keep_ptx,
                               state_dir=state_dir,
                               endpoint_url=endpoint_url,
                               batch_size=batch_size, task_timeout=task_timeout, max_rate=max_rate,
                               grace_period=grace_period,
                               log_format=log_format, metrics_port=metrics_port, metrics_host=metrics_host,
                               progress=progress, source=source)
    try:
        settings = load_settings(cli, config)
    except ConfigError as exc:
        _fail(2, str(exc))
    configure(settings.log_format, settings.log_level)
    from stream.sources import work_spec

    try:
        work = work_spec(settings)
    except ConfigError as exc:
        _fail(2, str(exc))
    from sinks.url import opened_sink
    from stream.metrics import Metrics
    from stream.pipeline import Producer

    metrics = Metrics()
    if settings.metrics_port:
        try:
            metrics.serve(settings.metrics_port, settings.metrics_host)
        except OSError as exc:
            _fail(2, f"--metrics-port {settings.metrics_port} on {settings.metrics_host}: {exc.strerror or exc}")

    async def main() -> Any:
        async with opened_sink(settings.out, settings.endpoint_url, settings.region, settings.retry_deadline) as sink:
            return await Producer(settings, sink, metrics, work=work).run()

    from stream.progress import progress_display

    with producer_exit_codes(settings), progress_display(settings, metrics):
        result = anyio.run(main, backend="asyncio")
    log.info("done", committed=result.committed, shards_written=result.shards_written,
             stopped_by_signal=result.stopped_by_signal, kernels_per_s=round(metrics.rate(), 1))
    if result.stopped_by_signal and settings.count is not None and result.committed < settings.count:
        raise typer.Exit(settings.incomplete_exit_code)


@app.command()
def sample(seed: Annotated[int, Opt(help="Seed to generate")] = 0,
           ir: Annotated[bool, Opt("--ir", help="Also print the extracted CPU/CUDA forward and backward")] = False,
           config: Annotated[Path | None, Opt(help="TOML config file ([generator] knobs)")] = None) -> None:
    """Print one generated kernel (and its extracted IR)."""
    try:
        settings = load_settings({}, config)
    except ConfigError as exc:
        _fail(2, str(exc))
    from synth.gen.generator import generate

    kernel = generate(seed, settings.generator_config())
    sys.stdout.write(kernel.source)
    if ir:
        configure("console", "warning")
        from synth.worker import WorkerSettings, build_record, init_worker

        worker_settings = WorkerSettings(settings.generator_config(), "sample")
        init_worker(worker_settings)
        record = build_record(seed, worker_settings)
        for backend in ("cpu", "cuda"):
            ir_source = getattr(record, backend)
            sys.stdout.write(f"\n# ---- {backend} forward ----\n{ir_source.forward}")
            sys.stdout.write(f"\n# ---- {backend} backward ----\n{ir_source.backward}")


@app.command()
def read(url: str, limit: Annotated[int | None, Opt(help="Stop after N records")] = None,
         where: Annotated[str | None, Opt(help="Only records matching, e.g. \"metadata.loc > 40 and 'loops' in "
                                               "metadata.features\"")] = None,
         endpoint_url: Annotated[str | None, Opt(envvar="AWS_ENDPOINT_URL")] = None,
         split: Annotated[str | None, Opt(help="Only this split: train, validation or test (by dedup key; "
                                               "near-duplicate clusters stay whole)")] = None,
         split_fractions: Annotated[str | None, Opt(help="Split fractions train/validation/test, default "
                                                         "98/1/1")] = None,
         skip_corrupt: Annotated[bool, Opt("--skip-corrupt", help="Go past corrupt or missing shards (say how "
                                                                  "many records were skipped) instead of exit 1")]
         = False) -> None:
    """Committed records as JSONL on stdout."""
    import json

    from sinks.read.reader import SkippedShards, aiter_records
    from sinks.read.splits import SplitError, split_options
    from sinks.read.where import WhereError, compile_where

    try:
        keep = compile_where(where) if where else None
        fractions = split_options(split, split_fractions)
    except (WhereError, SplitError) as exc:
        _fail(2, str(exc))

    skipped = SkippedShards() if skip_corrupt else None

    async def main() -> None:
        n = 0
        out = sys.stdout.buffer
        async for line in aiter_records(url, endpoint_url, split=split, fractions=fractions, skipped=skipped):
            if keep is not None and not keep(json.loads(line)):
                continue
            out.write(line)
            n += 1
            if limit is not None and n >= limit:
                break
        out.flush()

    _run_reader(main)
    if skipped is not None and skipped.shards:
        typer.echo(f"jitsynth: warning: {skipped.message()}", err=True)


@app.command()
def verify(url: str, endpoint_url: Annotated[str | None, Opt(envvar="AWS_ENDPOINT_URL")] = None,
           deep: Annotated[bool, Opt(help="Fetch every commit and read every shard (decompress, ids in order, "
                                          "sha256) even where S3's listed ETags already prove them")] = False) -> None:
    """Check every commit against its shard; exit 1 on any fault. On S3 a shard whose listed
    ETag (the MD5 of its bytes) and size are the committed ones is not fetched; --deep reads
    every shard. A local directory is always read in full."""
    from sinks.url import opened_sink
    from stream.dataset.verify import verify as run_verify

    async def main() -> Any:
        async with opened_sink(url, endpoint_url, create=False) as sink:
            return await run_verify(sink, deep=deep)

    report = _run_reader(main)
    for fault in report.faults:
        typer.echo(f"FAULT {fault}")
    for orphan in report.orphans:
        typer.echo(f"orphan shard (no commit, invisible to readers): {orphan}")
    typer.echo(f"{report.commits} commits, {report.records} records, {report.bytes} bytes, "
               f"{len(report.faults)} faults, {len(report.orphans)} orphan shards")
    if report.cross_duplicates:
        typer.echo(f"{report.cross_duplicates} cross-producer duplicates, listed in dedup/duplicates.json "
                   "(readers skip them)")
    if not report.ok:
        raise typer.Exit(1)


def _run_reader(main: Any) -> Any:
    from sinks.base import SinkConfigError, SinkError
    from sinks.read.shardio import CorruptShard

    configure("auto", "warning")
    try:
        return anyio.run(main, backend="asyncio")
    except SinkConfigError as exc:
        _fail(2, str(exc))
    except (SinkError, CorruptShard) as exc:
        _fail(1, str(exc))
    except BrokenPipeError:
        return None


def _register_command_modules() -> None:
    """Command groups that live in their own modules add themselves to ``app``."""
    import importlib

    for name in ("stream.cli.data", "stream.cli.report", "stream.cli.bench", "stream.cli.dedup", "stream.cli.ingest"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app)


_register_command_modules()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
