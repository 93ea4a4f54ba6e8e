"""The producer loop (anyio on asyncio, which aioboto3 requires).

submitter ──(bounded channel of in-flight batches, seed order)──► consumer
  consumer: await batches in seed order ─► dedup ─► shard writer ─► roll ─► commit

The channel's capacity bounds the work in flight, so a slow sink (or an S3 outage)
stops the submitter and memory stays flat. Because results are consumed in seed order,
the shards of a run are a deterministic function of (seed range, config, Warp): a run
resumed after a crash rewrites exactly the bytes the crashed one would have written.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version

import anyio
import msgspec
import structlog

from sinks.shard import ShardWriter
from sinks.checkpoints import CheckpointWriter
from stream.commitlog import Commit, Failure, commit_key, decode_commit, encode_commit, now_iso, shard_key
from stream.config import Settings
from stream.dedup import DedupIndex
from stream.metrics import Metrics
from stream.pacing import Pacer
from stream.pool import WorkerPool
from stream.resume import resume
from synth.worker import Failed, WorkerSettings, init_worker, process_batch

log = structlog.get_logger("jitsynth.pipeline")


@contextlib.contextmanager
def _unwrap_group() -> Iterator[None]:
    """Surface the first real error of a task group, so callers can catch it by type."""
    try:
        yield
    except BaseExceptionGroup as group:
        errors = [e for e in group.exceptions if not isinstance(e, asyncio.CancelledError)]
        if len(errors) == 1:
            raise errors[0] from None
        raise


class FencingError(RuntimeError):
    """Another producer writes under the same id."""


@dataclass
class _OpenShard:
    seq: int
    seed_start: int
    writer: ShardWriter
    opened: float = field(default_factory=time.monotonic)
    seed_end: int = 0
    ids: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    duplicates: int = 0


@dataclass(frozen=True)
class WorkSpec:
    """What the pool computes: a picklable ``task(seeds) -> [Produced | Failed]`` plus its
    worker initialiser. Generation is the default; ``jitsynth ingest`` supplies its own,
    with ``limit`` = the number of items (seeds at or past it are never submitted)."""

    task: Callable[[list[int]], list]
    initializer: Callable[..., None]
    initargs: tuple
    config_hash: str
    limit: int | None = None


@dataclass
class RunResult:
    committed: int
    shards_written: int
    stopped_by_signal: bool


class Producer:
    def __init__(self, settings: Settings, sink, metrics: Metrics | None = None,  # noqa: ANN001
                 work: WorkSpec | None = None) -> None:
        self.s = settings
        self.sink = sink
        self.metrics = metrics or Metrics()
        self.metrics.watch_sink(sink)
        if work is None:
            gen_cfg = settings.generator_config()
            worker_settings = WorkerSettings(gen_cfg, settings.producer, tuple(settings.validate_tiers))
            work = WorkSpec(process_batch, init_worker, (worker_settings,), gen_cfg.config_hash)
        self.work = work
        self.config_hash = work.config_hash
        self.warp_version = version("warp-lang")
        self.stop = anyio.Event()
        self.stopped_by_signal = False
        self.shards_written = 0
        self._tasks: set[asyncio.Task] = set()

    # -- setup -------------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        state_dir = self.s.resolved_state_dir()
        self.index = DedupIndex(state_dir / "index.sqlite")
        try:
            pos = await resume(self.sink, self.s.producer, self.s.seed_start or 0, self.index,
                               self.config_hash, self.warp_version)
            self.next_seq, self.next_seed, self.committed = pos.next_seq, pos.next_seed, pos.committed
            self.metrics.committed.set(self.committed)
            self.checkpoints = CheckpointWriter(self.sink, self.s.producer, self.s.checkpoint_every)
            await self.checkpoints.load()
            if self.s.count is not None and self.committed >= self.s.count:
                log.info("dataset already complete", producer=self.s.producer, committed=self.committed)
                return RunResult(self.committed, 0, False)
            self.pool = WorkerPool(self.s.workers, self.work.task, Failed, self.work.initializer,
                                   self.work.initargs, self.s.task_timeout, self.s.worker_max_tasks)
            try:
                await self.pool.warm_up(self.s.workers)
                self.metrics.started = time.monotonic()
                with _unwrap_group():
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._watch_signals)
                        send, receive = anyio.create_memory_object_stream[tuple[list[int], asyncio.Task]](
                            self.s.max_in_flight or 1)
                        tg.start_soon(self._submit, send)
                        await self._consume(receive)
                        tg.cancel_scope.cancel()
                await self.checkpoints.write()  # the end of a run (or of a SIGTERM's last commit)
            finally:
                for task in self._tasks:
                    task.cancel()
                self.pool.close(now=True)
                if set(self.s.validate_tiers) - {"codegen"}:
                    from synth.validate import sweep_stale_workdirs

                    sweep_stale_workdirs()  # compiler temp folders of workers killed above
        finally:
            self.index.close()
        return RunResult(self.committed, self.shards_written, self.stopped_by_signal)

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.warning("signal received: finishing the open shard", signal=signal.Signals(signum).name,
                            grace_s=self.s.grace_period)
                self.stopped_by_signal = True
                self.stop.set()

    async def _submit(self, send: anyio.abc.ObjectSendStream) -> None:
        seed, batch = self.next_seed, self.s.batch_size
        limit = self.work.limit
        pacer = Pacer(self.s.max_rate, burst=batch) if self.s.max_rate else None
        if pacer is not None:
            log.info("pacing submissions", max_rate=self.s.max_rate, burst=batch)
        async with send:
            while not self.stop.is_set() and (limit is None or seed < limit):
                seeds = list(range(seed, seed + batch if limit is None else min(seed + batch, limit)))
                if pacer is not None and not await self._paced(pacer, len(seeds)):
                    return  # stopped while waiting for the rate budget
                task = asyncio.ensure_future(self._timed(seeds))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                try:
                    await send.send((seeds, task))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    task.cancel()  # the consumer is done
                    return
                seed += batch

    async def _paced(self, pacer: Pacer, n: int) -> bool:
        """Wait until ``--max-rate`` allows ``n`` more seeds; False if a stop came first."""
        delay = pacer.reserve(n)
        if delay > 0:
            with anyio.move_on_after(delay):
                await self.stop.wait()
        return not self.stop.is_set()

    async def _timed(self, seeds: list[int]) -> list:
        started = time.monotonic()
        outcomes = await self.pool.process(seeds)
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        return outcomes

    async def _await_batch(self, task: asyncio.Task) -> list | None:
        """The batch's outcomes, or None if a stop was requested first."""
        stop_wait = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
        return task.result() if task.done() else None

    # -- the consumer: seed order, dedup, shards, commits --------------------------------------------
    def _target(self) -> int:
        if self.s.count is None:
            return self.s.shard_records
        return min(self.s.shard_records, self.s.count - self.committed)

    async def _open_shard(self) -> _OpenShard:
        key = commit_key(self.s.producer, self.next_seq)
        if await self.sink.size(key) is not None:
            raise FencingError(self._fencing_message())
        key = shard_key(self.s.producer, self.next_seq, self.next_seed, self.config_hash)
        upload = await self.sink.open_shard(key)
        writer = ShardWriter(upload, key, self.sink.min_part_size, self.s.zstd_level)
        return _OpenShard(self.next_seq, self.next_seed, writer, seed_end=self.next_seed)

    def _fencing_message(self) -> str:
        return (f"commit {self.next_seq} of producer {self.s.producer!r} already exists with other content: "
                f"another producer is writing with the same id. Stop it, or give each producer its own "
                f"--producer (or JOB_COMPLETION_INDEX)")

    def _should_roll(self, shard: _OpenShard) -> bool:
        if len(shard.ids) >= self._target():
            return True
        if shard.writer.stored_bytes >= self.s.shard_bytes:
            return True
        return bool(shard.ids) and time.monotonic() - shard.opened >= self.s.shard_age

    async def _consume(self, receive: anyio.abc.ObjectReceiveStream) -> None:
        shard: _OpenShard | None = None
        async with receive:
            async for seeds, task in receive:
                outcomes = await self._await_batch(task)
                if outcomes is None:
                    break
                for outcome in outcomes:
                    if shard is None:
                        shard = await self._open_shard()
                    shard.seed_end = outcome.seed + 1
                    if self._take(shard, outcome):
                        await shard.writer.add(outcome.line)
                    if self._should_roll(shard):
                        await self._commit(shard)
                        shard = None
                        if self.s.count is not None and self.committed >= self.s.count:
                            return
                if self.stop.is_set():
                    break
        if shard is not None:
            # At the item limit (ingest) a shard of only failures or duplicates is committed
            # too, so they are recorded and a rerun does not redo them.
            finished = self.work.limit is not None and not self.stop.is_set() and shard.seed_end >= self.work.limit
            if shard.ids or (finished and (shard.failures or shard.duplicates)):
                with anyio.fail_after(self.s.grace_period):
                    await self._commit(shard)
            else:
                await shard.writer.abort()

    def _take(self, shard: _OpenShard, outcome) -> bool:  # noqa: ANN001
        """Account for one outcome; True if it is a new record to write."""
        self.metrics.processed.inc()
        if isinstance(outcome, Failed):
            shard.failures.append(Failure(outcome.seed, outcome.reason))
            self.metrics.failures.inc()
            log.warning("kernel failed", seed=outcome.seed, reason=outcome.reason)
            return False
        if self.index.seen(outcome.id):
            shard.duplicates += 1
            self.metrics.duplicates.inc()
            return False
        self.index.add_pending(outcome.id)
        shard.ids.append(outcome.id)
        return True

    async def _commit(self, shard: _OpenShard) -> None:
        started = time.monotonic()
        stored = await shard.writer.finish()
        commit = Commit(
            producer=self.s.producer, seq=shard.seq, shard=stored.key, seed_start=shard.seed_start,
            seed_end=shard.seed_end, count=stored.count, bytes=stored.bytes, raw_bytes=stored.raw_bytes,
            sha256=stored.sha256, ids=shard.ids, config_hash=self.config_hash, warp_version=self.warp_version,
            created_at=now_iso(), duplicates=shard.duplicates, failures=shard.failures)
        key = commit_key(self.s.producer, shard.seq)
        if not await self.sink.put_if_absent(key, encode_commit(commit)):
            existing = await self.sink.get(key)
            if existing is None or not decode_commit(existing).same_content(commit):
                raise FencingError(self._fencing_message())
            log.info("commit already present with identical content (resumed run)", seq=shard.seq)
        self.committed += commit.count
        await self.checkpoints.add(key, msgspec.to_builtins(commit))
        self.index.apply_commit(commit.seq, commit.sha256, commit.ids, self.committed)
        self.next_seq, self.next_seed = shard.seq + 1, shard.seed_end
        self.shards_written += 1
        self.metrics.on_commit(commit.count, commit.bytes, commit.raw_bytes, time.monotonic() - started,
                               self.committed)
        log.info("committed", producer=self.s.producer, seq=commit.seq, records=commit.count,
                 bytes=commit.bytes, seeds=f"[{commit.seed_start},{commit.seed_end})", duplicates=commit.duplicates,
                 failures=len(commit.failures), total=self.committed)
