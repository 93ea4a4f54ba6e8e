"""The producer loop (anyio on asyncio, which aioboto3 requires).

submitter ──(bounded channel of in-flight batches, seed order)──► consumer
  consumer: await batches in seed order ─► dedup ─► append frames ─► roll ─► commit

Workers return each batch as one zstd frame plus its ids (``stream/framing.py``): the
main process does no per-record serialisation or compression, only dedup lookups and
bookkeeping. Batches follow a fixed grid of seeds (multiples of the batch size), also
after a resume, so frames fall at the same places in every run.

The channel's capacity bounds the work in flight, so a slow sink (or an S3 outage)
stops the submitter and memory stays flat. Because results are consumed in seed order,
the shards of a run are a deterministic function of (seed range, config, Warp): a run
resumed after a crash rewrites exactly the bytes the crashed one would have written.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version

import anyio
import msgspec
import structlog

from sinks.shard import ShardWriter
from sinks.checkpoints import CheckpointWriter
from stream.commitlog import Commit, Failure, commit_key, decode_commit, encode_commit, now_iso, shard_key
from stream.config import ConfigError, Settings
from stream.dedup import DedupIndex
from stream.framing import (BatchSplitter, FramedBatch, FramedTask, Kept, Segment, failed_batch, grid_end,
                            rebuild_frame)
from stream.metrics import Metrics
from stream.pacing import Pacer
from stream.pool import WorkerPool
from stream.recordstats import summary_of
from stream.shardplan import Append, Close, ShardPlan
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
        self._deadline = 0.0  # when a signal's grace period ends
        self._progress = anyio.Event()  # set by the sequencer after each batch
        self._open_ids: list[str] = []  # ids of the shard the sequencer is filling
        self._tasks: set[asyncio.Task] = set()
        self._stop_wait: asyncio.Future | None = None

    # -- setup -------------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        state_dir = self.s.resolved_state_dir()
        try:
            self.index = DedupIndex(state_dir / "index.sqlite")
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"state directory {state_dir} cannot hold the dedup index ({exc}); give a writable "
                              f"--state-dir (JITSYNTH_STATE_DIR)") from None
        try:
            pos = await resume(self.sink, self.s.producer, self.s.seed_start or 0, self.index,
                               self.config_hash, self.warp_version)
            self.next_seq, self.next_seed, self.committed = pos.next_seq, pos.next_seed, pos.committed
            self.planned = self.committed  # records in shards the sequencer has closed
            self.metrics.committed.set(self.committed)
            self.checkpoints = CheckpointWriter(self.sink, self.s.producer, self.s.checkpoint_every)
            await self.checkpoints.load()
            if self.s.count is not None and self.committed >= self.s.count:
                log.info("dataset already complete", producer=self.s.producer, committed=self.committed)
                return RunResult(self.committed, 0, False)
            task = FramedTask(self.work.task, self.s.zstd_level)
            self.pool = WorkerPool(self.s.workers, task, failed_batch, self.work.initializer,
                                   self.work.initargs, self.s.task_timeout, self.s.worker_max_tasks)
            try:
                await self.pool.warm_up(self.s.workers)
                self.metrics.mark_started()
                with _unwrap_group():
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._watch_signals)
                        send, receive = anyio.create_memory_object_stream[tuple[list[int], asyncio.Task]](
                            self.s.max_in_flight or 1)
                        # Frames waiting to be stored: a few batches' worth (~2 KB a record).
                        ops_send, ops_receive = anyio.create_memory_object_stream[Append | Close](
                            4 * (self.s.max_in_flight or 1))
                        tg.start_soon(self._submit, send)
                        tg.start_soon(self._consume, receive, ops_send)
                        await self._write(ops_receive)
                        self.metrics.mark_finished()
                        tg.cancel_scope.cancel()
                await self.checkpoints.write()  # the end of a run (or of a SIGTERM's last commit)
            finally:
                for task in self._tasks:
                    task.cancel()
                self.pool.close(now=True)
                if set(self.s.validate_tiers) - {"codegen"}:
                    from synth.validate.tiers import sweep_stale_workdirs

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
                self._deadline = time.monotonic() + self.s.grace_period
                self.stop.set()

    async def _submit(self, send: anyio.abc.ObjectSendStream) -> None:
        seed, batch = self.next_seed, self.s.batch_size
        limit = self.work.limit
        pacer = Pacer(self.s.max_rate, burst=batch) if self.s.max_rate else None
        if pacer is not None:
            log.info("pacing submissions", max_rate=self.s.max_rate, burst=batch)
        async with send:
            while not self.stop.is_set() and (limit is None or seed < limit):
                if not await self._room_for(seed):
                    return
                end = grid_end(seed, batch)
                seeds = list(range(seed, end if limit is None else min(end, limit)))
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
                seed = seeds[-1] + 1

    async def _room_for(self, seed: int) -> bool:
        """Near the end of a --count run, submit no more seeds than the records still
        missing (plus a margin for duplicates and failures): the rest would be thrown away.
        Waits for the sequencer to make progress; False if a stop came first."""
        while self.s.count is not None:
            missing = self.s.count - self.planned - len(self._open_ids)
            if seed - self.next_seed < missing + missing // 8 + self.s.batch_size or self.stop.is_set():
                break
            with anyio.move_on_after(1.0):  # progress is signalled; the timeout only guards a stall
                await self._progress.wait()
            self._progress = anyio.Event()
        return not self.stop.is_set()

    async def _paced(self, pacer: Pacer, n: int) -> bool:
        """Wait until ``--max-rate`` allows ``n`` more seeds; False if a stop came first."""
        delay = pacer.reserve(n)
        if delay > 0:
            with anyio.move_on_after(delay):
                await self.stop.wait()
        return not self.stop.is_set()

    async def _timed(self, seeds: list[int]) -> list[FramedBatch]:
        started = time.monotonic()
        outcomes = await self.pool.process(seeds)
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        return outcomes

    async def _await_batch(self, task: asyncio.Task) -> list[FramedBatch] | None:
        """The batch's framed results, or None if a stop was requested first."""
        if not task.done():
            # One long-lived waiter on the stop event for the whole run, not one per batch.
            if self._stop_wait is None:
                self._stop_wait = asyncio.ensure_future(self.stop.wait())
                self._tasks.add(self._stop_wait)
            await asyncio.wait({task, self._stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        return task.result() if task.done() else None

    # -- the sequencer: seed order, dedup, where shards end ------------------------------------------
    def _target(self) -> int:
        if self.s.count is None:
            return self.s.shard_records
        return min(self.s.shard_records, self.s.count - self.planned)

    def _new_plan(self) -> ShardPlan:
        plan = ShardPlan(self.next_seq, self.next_seed, self.next_seed)
        self.next_seq += 1
        return plan

    def _should_roll(self, plan: ShardPlan) -> bool:
        if len(plan.ids) >= self._target():
            return True
        if plan.stored_estimate >= self.s.shard_bytes:
            return True
        return bool(plan.ids) and time.monotonic() - plan.opened >= self.s.shard_age

    async def _consume(self, receive: anyio.abc.ObjectReceiveStream, ops: anyio.abc.ObjectSendStream) -> None:
        plan: ShardPlan | None = None
        async with receive, ops:
            async for seeds, task in receive:
                parts = await self._await_batch(task)
                if parts is None:
                    break
                for part in parts:
                    plan, done = await self._sequence(plan, part, ops)
                    if done:
                        return
                self._open_ids = plan.ids if plan is not None else []
                self._progress.set()
                if self.stop.is_set():
                    break
            if plan is not None:
                # At the item limit (ingest) a shard of only failures or duplicates is committed
                # too, so they are recorded and a rerun does not redo them.
                finished = (self.work.limit is not None and not self.stop.is_set()
                            and plan.seed_end >= self.work.limit)
                await ops.send(Close(plan, bool(plan.ids or (finished and (plan.failures or plan.duplicates)))))

    async def _sequence(self, plan: ShardPlan | None, part: FramedBatch,
                        ops: anyio.abc.ObjectSendStream) -> tuple[ShardPlan | None, bool]:
        """Account for one framed batch and hand its kept records to the writer, closing
        shards where they fill; (the open plan, whether --count is reached)."""
        splitter = BatchSplitter(part)
        position = 0
        last = len(part.outcomes) - 1
        for i, outcome in enumerate(part.outcomes):
            if plan is None:
                plan = self._new_plan()
            plan.seed_end = self.next_seed = outcome.seed + 1
            if self._take(plan, outcome):
                splitter.keep(position, outcome.size)
            position += isinstance(outcome, Kept)
            if self._should_roll(plan):
                last_of_run = self.s.count is not None and self.planned + len(plan.ids) >= self.s.count
                await self._append(plan, splitter.segment(at_end=i == last), ops, here=last_of_run)
                await ops.send(Close(plan, True))
                self.planned += len(plan.ids)
                plan = None
                if self.s.count is not None and self.planned >= self.s.count:
                    self.metrics.processed.inc(i + 1)
                    return None, True
        self.metrics.processed.inc(len(part.outcomes))
        if plan is not None:
            await self._append(plan, splitter.segment(at_end=True), ops)
        return plan, False

    async def _append(self, plan: ShardPlan, segment: Segment | None, ops: anyio.abc.ObjectSendStream,
                      here: bool = False) -> None:
        if segment is None:
            return
        if segment.frame is not None:
            plan.stored_estimate += len(segment.frame)
            await ops.send(Append(plan, segment.frame, segment.count, segment.raw_bytes, segment.batch.partial))
            return
        # Records were dropped or a shard ends inside the batch: a pool worker rebuilds the
        # frame from the kept lines while this loop goes on (the writer awaits it in order).
        plan.stored_estimate += segment.estimate
        args = (segment.batch.frame, segment.positions, self.s.zstd_level)
        if here:
            # The run's last frame. The pool's workers are busy with the batches submitted as
            # a margin for duplicates (thrown away now) and the last commit would wait a
            # batch's time behind them (4% of a 10 s run, issue 18), so this process rebuilds
            # it, once per run (~0.07 s; nothing else is left for the loop to do but store
            # it; in this thread, not a new one, whose malloc arena would keep the level-11
            # compressor's memory after the run).
            frame, partial = rebuild_frame(*args)
            await ops.send(Append(plan, frame, segment.count, segment.raw_bytes, partial))
            return
        rebuilt = asyncio.ensure_future(self.pool.call(rebuild_frame, *args))
        self._tasks.add(rebuilt)
        rebuilt.add_done_callback(self._tasks.discard)
        await ops.send(Append(plan, rebuilt, segment.count, segment.raw_bytes))

    def _take(self, plan: ShardPlan, outcome) -> bool:  # noqa: ANN001
        """Account for one outcome; True if it is a new record to write."""
        if isinstance(outcome, Failed):
            plan.failures.append(Failure(outcome.seed, outcome.reason))
            self.metrics.failures.inc()
            log.warning("kernel failed", seed=outcome.seed, reason=outcome.reason)
            return False
        if self.index.seen(outcome.id):
            plan.duplicates += 1
            self.metrics.duplicates.inc()
            return False
        self.index.add_pending(outcome.id)
        plan.ids.append(outcome.id)
        return True

    # -- the writer: frames into shards, shards into commits, in order -------------------------------
    async def _write(self, ops: anyio.abc.ObjectReceiveStream) -> None:
        writer: ShardWriter | None = None
        async with ops:
            async for op in ops:
                # After SIGTERM what is queued gets the grace period to be stored and committed.
                with anyio.fail_after(self._deadline - time.monotonic() if self.stop.is_set() else None):
                    if isinstance(op, Append):
                        writer = writer or await self._open_shard(op.plan)
                        frame, partial = (op.frame, op.partial) if isinstance(op.frame, bytes) else await op.frame
                        op.plan.partials.append(partial)
                        await writer.add(frame, op.count, op.raw_bytes)
                    elif op.commit:
                        await self._commit(op.plan, writer or await self._open_shard(op.plan))
                        writer = None
                    else:
                        if writer is not None:
                            await writer.abort()
                        writer = None

    async def _open_shard(self, plan: ShardPlan) -> ShardWriter:
        key = commit_key(self.s.producer, plan.seq)
        if await self.sink.size(key) is not None:
            raise FencingError(self._fencing_message(plan.seq))
        key = shard_key(self.s.producer, plan.seq, plan.seed_start, self.config_hash)
        return ShardWriter(await self.sink.open_shard(key), key, self.sink.min_part_size)

    def _fencing_message(self, seq: int) -> str:
        return (f"commit {seq} of producer {self.s.producer!r} already exists with other content: "
                f"another producer is writing with the same id. Stop it, or give each producer its own "
                f"--producer (or JOB_COMPLETION_INDEX)")

    async def _commit(self, plan: ShardPlan, writer: ShardWriter) -> None:
        started = time.monotonic()
        stored = await writer.finish()
        commit = Commit(
            producer=self.s.producer, seq=plan.seq, shard=stored.key, seed_start=plan.seed_start,
            seed_end=plan.seed_end, count=stored.count, bytes=stored.bytes, raw_bytes=stored.raw_bytes,
            sha256=stored.sha256, ids=plan.ids, config_hash=self.config_hash, warp_version=self.warp_version,
            created_at=now_iso(), duplicates=plan.duplicates, failures=plan.failures, etag=stored.etag,
            stats=summary_of(plan.partials) if None not in plan.partials else None)
        key = commit_key(self.s.producer, plan.seq)
        if not await self.sink.put_if_absent(key, encode_commit(commit)):
            existing = await self.sink.get(key)
            if existing is None or not decode_commit(existing).same_content(commit):
                raise FencingError(self._fencing_message(plan.seq))
            commit = decode_commit(existing)  # what is stored is what checkpoints must summarise
            log.info("commit already present with identical content (resumed run)", seq=plan.seq)
        self.committed += commit.count
        await self.checkpoints.add(key, msgspec.to_builtins(commit))
        self.index.apply_commit(commit.seq, commit.sha256, commit.ids, self.committed)
        self.shards_written += 1
        self.metrics.on_commit(commit.count, commit.bytes, commit.raw_bytes, time.monotonic() - started,
                               self.committed)
        log.info("committed", producer=self.s.producer, seq=commit.seq, records=commit.count,
                 bytes=commit.bytes, seeds=f"[{commit.seed_start},{commit.seed_end})", duplicates=commit.duplicates,
                 failures=len(commit.failures), total=self.committed)
