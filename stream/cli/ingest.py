"""``jitsynth ingest PATH_OR_PACKAGE... --out URL``: real Warp kernels into the same dataset format.

``stream.cli.app`` imports this module and calls ``register(app)``. Discovery runs here, in the
main process, by parsing files only (``synth.ingest.discover``); importing the user's modules
happens in the pool workers (``synth.ingest.worker``), with the pool's isolation and timeouts.
Item *i* of the sorted kernel list is the pipeline's seed *i*, so dedup, shards, commits,
resume and verify are those of ``jitsynth run``. At the end a report gives kernels found,
records written and failures by reason (a failure is never silent: each is also in its
shard's commit).

Exit status: 0 done (failed kernels included: they are reported), 2 bad usage or
configuration, 1 a runtime failure retries could not overcome.
"""

from __future__ import annotations

import os
import typing
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

Opt = typer.Option
Arg = typer.Argument
DEFAULT_IMPORT_TIMEOUT = 30.0


def _fail(code: int, message: str) -> typing.NoReturn:
    typer.echo(f"jitsynth: error: {message}", err=True)
    raise typer.Exit(code)


def category(reason: str) -> str:
    """The machine-friendly prefix of a failure reason ("closure", "import", "worker timed out"...)."""
    head = reason.split(":", 1)[0].strip()
    return head if head and len(head) <= 32 else "other"


def ingest(
    paths: Annotated[list[str], Arg(help="Python files, directories or importable package names (e.g. warp.examples)",
                                    metavar="PATH_OR_PACKAGE")],
    out: Annotated[str | None, Opt(help="Dataset URL: s3://bucket/prefix or a local directory")] = None,
    workers: Annotated[int | None, Opt(help="Worker processes (default: CPU count)")] = None,
    producer: Annotated[str | None, Opt(help="Producer id (default: ingest-<first path or package name>)")] = None,
    state_dir: Annotated[Path | None, Opt(help="Local cache of the dedup index")] = None,
    endpoint_url: Annotated[str | None, Opt(help="S3 endpoint (or $AWS_ENDPOINT_URL)")] = None,
    shard_records: Annotated[int | None, Opt(help="Roll a shard after N records")] = None,
    config: Annotated[Path | None, Opt(help="TOML config file")] = None,
    batch_size: Annotated[int | None, Opt(help="Kernels per worker task")] = None,
    task_timeout: Annotated[float | None, Opt(help="Seconds before a worker task is killed")] = None,
    import_timeout: Annotated[float, Opt(help="Seconds a module may take to import before only its "
                                              "definitions are run")] = DEFAULT_IMPORT_TIMEOUT,
    log_format: Annotated[str | None, Opt(help="auto, json or console")] = None,
    progress: Annotated[str | None, Opt(help="Live progress display: auto (on a terminal), on or off")] = None,
) -> None:
    """Ingest real Warp kernels: every @wp.kernel in the given files or packages, with its helpers,
    generated for CPU and CUDA, as records of the usual schema (metadata.origin = "real")."""
    from stream.config import ConfigError, load_settings
    from synth.ingest.discover import DiscoveryError, default_producer, discover, resolve_target

    try:
        first = resolve_target(paths[0])
    except DiscoveryError as exc:
        _fail(2, str(exc))
    if producer is None and "JITSYNTH_PRODUCER" not in os.environ:
        producer = default_producer([first])
    cli: dict[str, Any] = dict(out=out, workers=workers, producer=producer, seed_start=0, state_dir=state_dir,
                               endpoint_url=endpoint_url, shard_records=shard_records, batch_size=batch_size,
                               task_timeout=task_timeout, log_format=log_format, progress=progress)
    try:
        settings = load_settings(cli, config)
    except ConfigError as exc:
        _fail(2, str(exc))
    if import_timeout <= 0:
        _fail(2, "--import-timeout must be positive")
    exclude = [settings.resolved_state_dir()]
    if not settings.out.startswith("s3://"):
        exclude.append(Path(settings.out.removeprefix("file://")))
    try:
        found = discover(paths, exclude=exclude)
    except DiscoveryError as exc:
        _fail(2, str(exc))

    from stream.logs import configure

    configure(settings.log_format, settings.log_level)
    import structlog

    log = structlog.get_logger("jitsynth.ingest")
    for file, error in found.unparsable:
        log.warning("file mentions kernels but does not parse; skipped", file=file, error=error)
    log.info("kernels found", kernels=len(found.items), files=found.files_scanned, producer=settings.producer,
             config_hash=found.config_hash())
    if not found.items:
        typer.echo(f"ingest {' '.join(paths)}: no @wp.kernel found in {found.files_scanned} files; nothing to do")
        return
    _produce(settings, found, import_timeout, paths)


def _produce(settings: Any, found: Any, import_timeout: float, paths: list[str]) -> None:
    import anyio
    import structlog

    from sinks.url import opened_sink
    from stream.commitlog import commit_keys, load_commit
    from stream.logs import add_tap, remove_tap
    from stream.metrics import Metrics
    from stream.cli.app import producer_exit_codes
    from stream.pipeline import Producer, WorkSpec
    from stream.progress import progress_display
    from synth.ingest.worker import IngestSettings, init_ingest, process_items

    log = structlog.get_logger("jitsynth.ingest")
    config_hash = found.config_hash()
    worker_settings = IngestSettings(settings.producer, config_hash, tuple(found.targets), tuple(found.items),
                                     import_timeout)
    work = WorkSpec(process_items, init_ingest, (worker_settings,), config_hash, limit=len(found.items))
    metrics = Metrics()
    failed_now: dict[int, str] = {}  # this run's failures, as the pipeline logs them

    def tap(event: dict[str, Any]) -> None:
        if event.get("event") == "kernel failed" and "seed" in event:
            failed_now[int(event["seed"])] = str(event.get("reason", ""))

    async def main() -> tuple[Any, list[Any]]:
        async with opened_sink(settings.out, settings.endpoint_url, settings.region, settings.retry_deadline) as sink:
            result = await Producer(settings, sink, metrics, work=work).run()
            commits = [await load_commit(sink, key) for key in await commit_keys(sink, settings.producer)]
            return result, commits

    add_tap(tap)
    try:
        with producer_exit_codes(settings), progress_display(settings, metrics):
            result, commits = anyio.run(main, backend="asyncio")
    finally:
        remove_tap(tap)
    report = Report.build(len(found.items), found.files_scanned, commits, failed_now)
    log.info("ingest done", committed=result.committed, failures=len(report.failures),
             stopped_by_signal=result.stopped_by_signal, by_reason=dict(report.by_category()))
    for line in report.lines(" ".join(paths), settings.producer, result.stopped_by_signal):
        typer.echo(line)


class Report:
    """Counts for the closing report, from the producer's commits (all runs) plus this run's
    failures that no commit holds (a final stretch of failures with no record after them)."""

    def __init__(self, found: int, files: int, consumed: int, records: int, duplicates: int,
                 failures: dict[int, str]) -> None:
        self.found, self.files, self.consumed = found, files, consumed
        self.records, self.duplicates, self.failures = records, duplicates, failures

    @classmethod
    def build(cls, found: int, files: int, commits: list[Any], failed_now: dict[int, str]) -> Report:
        failures = {f.seed: f.reason for c in commits for f in c.failures}
        consumed = max((c.seed_end for c in commits), default=0)
        failures.update({s: r for s, r in failed_now.items() if s >= consumed})
        if failures:
            consumed = max(consumed, max(failures) + 1)
        return cls(found, files, consumed, sum(c.count for c in commits), sum(c.duplicates for c in commits),
                   failures)

    def by_category(self) -> list[tuple[str, int]]:
        return Counter(category(r) for r in self.failures.values()).most_common()

    def lines(self, what: str, producer: str, stopped: bool) -> list[str]:
        produced = self.records + self.duplicates
        share = f" ({100 * produced / self.found:.1f}%)" if self.found else ""
        out = [f"ingest {what} -> producer {producer}: {self.found} kernels found in {self.files} files",
               f"  {produced} became records{share}: {self.records} written, {self.duplicates} duplicates of "
               f"kernels already written",
               f"  {len(self.failures)} failed"]
        if stopped or self.consumed < self.found:
            out.append(f"  {self.found - self.consumed} not processed yet (stopped early): rerun to finish")
        if self.failures:
            out.append("failures by reason:")
            by_reason: dict[str, Counter] = {}
            for reason in self.failures.values():
                by_reason.setdefault(category(reason), Counter())[reason] += 1
            for cat, n in self.by_category():
                out.append(f"  {cat}: {n}")
                for reason, k in by_reason[cat].most_common(2):
                    out.append(f"      {k} x {reason[:160]}")
        return out


def register(app: typer.Typer) -> None:
    app.command()(ingest)
