"""``ShardedRecords``: the training reader. One iterable per (rank, data-loader worker) that
reads its deterministic part of a dataset, shuffled per epoch if asked, resumable at the
next record, optionally following a dataset that producers are still writing.

    ds = ShardedRecords("s3://bucket/prefix", rank=rank, world_size=world, seed=0)
    for epoch in range(epochs):
        ds.set_epoch(epoch)                 # like DistributedSampler.set_epoch
        for record in ds: ...               # in a torch DataLoader worker too
    state = ds.state_dict()                 # after a restart: ds.load_state_dict(state)

- Parts: ``sinks.read.assign`` (whole shards round robin, the leftover shards' records split
  by record index; by (producer, seq) when following). Commits are listed, never shards.
- Workers: ``worker_id``/``num_workers`` if given, else ``torch.utils.data.get_worker_info()``
  when torch is importable (looked up when iteration starts, i.e. inside the worker), else
  one worker. torch is never required.
- Shuffle (``seed``): shard order per (seed, epoch), then records through a buffer of
  ``shuffle_buffer`` lines; the same on every machine. A pass run to its end moves to the
  next epoch by itself; ``set_epoch`` sets it.
- Resume: ``state_dict`` holds the commit list it plans over (each producer's last seq)
  and the position: (piece, line) without shuffle, so a restart reads on from that line of
  that shard; with shuffle, the count of lines handed out, which a restart replays (reads
  and drops) through the same buffer. Nothing is seen twice or skipped within an epoch.
- Follow (``follow=True``): polls for new commits every ``poll_interval`` seconds, backing
  off to ``max_poll_interval`` while nothing arrives; ``stop()`` (any thread) ends the
  iteration at the next record or at once when idle. Shards are read in the order they
  are found; the state keeps, per producer, the last of its shards this consumer finished
  and the line reached in the current one. No shuffling (there is no fixed list to shuffle).
- Checks: every shard against its commit (size before the first record, sha256 before the
  last, ``sinks.read.shardio``); a mismatch raises ``CorruptShard`` naming the shard and
  ``jitsynth verify``, or with ``on_corrupt="skip"`` is logged and tallied in ``skipped``.
  Exact and near-duplicate exclusions (``jitsynth dedup [--near]``) are honoured; ``split``
  (with ``fractions``) keeps one split, near-duplicate clusters whole (``sinks.read.splits``);
  ``where`` filters records (an expression, see ``sinks.read.where``, or a predicate). Memory: shards are streamed (small
  ones prefetched), at most ``shuffle_buffer`` raw lines are held.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

import anyio
import structlog

from sinks.read.assign import Commit, Consumer, Piece, follows, plan, rng_for, shuffled
from sinks.checkpoints import COMMITS, commits_after, list_commits
from sinks.read.nearfile import load_all_exclusions
from sinks.read.reader import committed_lines
from sinks.read.shardio import DEFAULT_CONCURRENCY, CorruptShard, SkippedShards, ordered_map
from sinks.read.splits import Splitter, load_splitter
from sinks.url import opened_sink
from sinks.read.where import compile_where

log = structlog.get_logger("jitsynth.training")

STATE_FORMAT = 1
BATCH = 64  # lines per call into the event loop thread (one call per record costs ~10% on small records)
Line = tuple[int, int, bytes]  # (piece index, line number in its shard, JSONL line)


def torch_worker() -> tuple[int, int]:
    """(worker id, number of workers) of the current torch DataLoader worker; (0, 1)
    outside one or without torch (never imported unless installed)."""
    if importlib.util.find_spec("torch") is None:
        return 0, 1
    from torch.utils.data import get_worker_info  # optional and heavy: only when installed

    info = get_worker_info()
    return (0, 1) if info is None else (int(info.id), int(info.num_workers))


class ShardedRecords:
    """Committed records of ``url`` for one (rank, worker), as dicts (see the module doc)."""

    def __init__(self, url: str, *, rank: int = 0, world_size: int = 1, worker_id: int | None = None,
                 num_workers: int | None = None, seed: int | None = None, epoch: int = 0,
                 shuffle_buffer: int = 256, follow: bool = False, poll_interval: float = 1.0,
                 max_poll_interval: float = 30.0, where: str | Callable[[dict[str, Any]], bool] | None = None,
                 on_corrupt: str = "raise", dedup: bool = True, endpoint_url: str | None = None,
                 limit: int = DEFAULT_CONCURRENCY, split: str | None = None,
                 fractions: Mapping[str, float] | None = None) -> None:
        if on_corrupt not in ("raise", "skip"):
            raise ValueError(f"on_corrupt={on_corrupt!r}: want 'raise' or 'skip'")
        if follow and seed is not None:
            raise ValueError("follow=True reads shards as they are committed and cannot shuffle; drop seed, "
                             "or read the committed dataset per epoch with follow=False")
        if (worker_id is None) != (num_workers is None):
            raise ValueError("give worker_id and num_workers together (or neither: torch's worker info is used)")
        if shuffle_buffer < 1 or poll_interval <= 0 or max_poll_interval < poll_interval:
            raise ValueError("want shuffle_buffer >= 1 and 0 < poll_interval <= max_poll_interval")
        self.url, self.endpoint_url, self.limit = url, endpoint_url, limit
        self.rank, self.world_size, self.seed, self.epoch = rank, world_size, seed, epoch
        self.worker = None if worker_id is None else (worker_id, num_workers or 1)
        Consumer(rank, world_size, *(self.worker or (0, 1)))  # bad numbers fail here, not in a worker
        self.shuffle_buffer, self.follow, self.dedup = shuffle_buffer, follow, dedup
        self.poll_interval, self.max_poll_interval = poll_interval, max_poll_interval
        self.where = where
        self.keep = compile_where(where) if isinstance(where, str) else where
        self.split, self.fractions = split, dict(fractions) if fractions else None
        self._splitter: Splitter | None = None
        self.skipped: SkippedShards | None = SkippedShards() if on_corrupt == "skip" else None
        self._stop = threading.Event()
        self._snapshot: dict[str, int] | None = None  # fixed mode: each producer's last seq planned over
        self._commits = 0
        self._position: dict[str, int] = {}  # fixed: {"piece", "line"} or {"emitted"}; follow: {}
        self._done: dict[str, int] = {}  # follow: producer -> last seq of its shards this consumer finished
        self._current: list[Any] | None = None  # follow: [commit key, lines read in it]
        self._owner: list[int] | None = None  # the consumer the position belongs to, once known

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (a torch DataLoader ships the dataset to each worker process)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_stop", "keep")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._stop = threading.Event()
        self.keep = compile_where(self.where) if isinstance(self.where, str) else self.where

    # -- control -------------------------------------------------------------------------------------
    def consumer(self) -> Consumer:
        return Consumer(self.rank, self.world_size, *(self.worker or torch_worker()))

    def set_epoch(self, epoch: int) -> None:
        """Read ``epoch`` next (a new epoch starts at its first record; the same one is kept)."""
        if epoch != self.epoch:
            self.epoch, self._snapshot, self._position = epoch, None, {}

    def stop(self) -> None:
        """Ask the iteration to end at the next record (at once when a follower is idle)."""
        self._stop.set()

    def state_dict(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "consumer": self._owner or _numbers(self.consumer()),
                "seed": self.seed, "epoch": self.epoch, "follow": self.follow, "snapshot": self._snapshot,
                "commits": self._commits, "position": dict(self._position), "done": dict(self._done),
                "current": self._current}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue where ``state`` (from ``state_dict``) left off. The state belongs to one
        (rank, worker): checked here when the worker was given, else when iteration starts
        (a torch worker learns its id only then)."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"reader state format {state.get('format')!r}: this jitsynth reads {STATE_FORMAT}")
        if state["seed"] != self.seed or state["follow"] != self.follow:
            raise ValueError(f"reader state is for seed {state['seed']}, follow {state['follow']}; this reader has "
                             f"seed {self.seed}, follow {self.follow}")
        self._owner = list(state["consumer"])
        if self.worker is not None:
            self._check_owner(self.consumer())
        self.epoch, self._snapshot, self._commits = int(state["epoch"]), state["snapshot"], int(state["commits"])
        self._position, self._done = dict(state["position"]), dict(state["done"])
        self._current = list(state["current"]) if state["current"] else None

    def _check_owner(self, consumer: Consumer) -> None:
        if self._owner is not None and self._owner != _numbers(consumer):
            raise ValueError(f"reader state is for consumer {self._owner} (rank, world_size, worker, num_workers); "
                             f"this reader is {_numbers(consumer)}")

    # -- iteration -----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._stop.clear()
        consumer = self.consumer()
        self._check_owner(consumer)
        self._owner = _numbers(consumer)
        with anyio.from_thread.start_blocking_portal() as portal, \
                portal.wrap_async_context_manager(opened_sink(self.url, self.endpoint_url, create=self.follow)) as sink:
            if self.follow:
                yield from self._follow(portal, sink, consumer)
            else:
                yield from self._epoch(portal, sink, consumer)

    def _records(self, pieces: list[Piece], lines: Iterable[Line], excluded: dict[str, frozenset[str]],
                 moved: Callable[[int, int], None]) -> Iterator[dict[str, Any]]:
        """Records of ``lines`` that pass the exclusions and ``where``. ``moved(piece, line)``
        runs before a line is looked at, so the state always points just past it; a stop
        leaves the line in hand unconsumed."""
        for index, number, line in lines:
            if self._stop.is_set():
                return
            moved(index, number)
            record = json.loads(line)
            skip = excluded.get(pieces[index].commit["shard"])
            if skip and record["id"] in skip:
                continue
            if self._splitter is not None and self._splitter.split(record["id"]) != self.split:
                continue
            if self.keep is None or self.keep(record):
                yield record

    def _exclusions(self, portal: Any, sink: Any) -> dict[str, frozenset[str]]:
        """Records to skip (``jitsynth dedup``'s exact and near lists), and the split rule
        (near-duplicate clusters whole: ``sinks.read.splits``), as the dataset says now."""
        self._splitter: Splitter | None = None
        if self.split is not None:
            self._splitter = portal.call(load_splitter, sink, self.fractions)
            self._splitter.check(self.split)
        return portal.call(load_all_exclusions, sink) if self.dedup else {}

    def _epoch(self, portal: Any, sink: Any, consumer: Consumer) -> Iterator[dict[str, Any]]:
        commits = portal.call(list_commits, sink, self.limit)
        if self._snapshot is None:
            self._snapshot, self._commits = _watermark(commits), len(commits)
        else:
            commits = [(k, c) for k, c in commits if int(c["seq"]) <= self._snapshot.get(str(c["producer"]), -1)]
            if len(commits) != self._commits:
                raise ValueError(f"{self.url} holds {len(commits)} of the {self._commits} commits this reader's "
                                 "state was planned over (commits were deleted): the epoch cannot resume exactly")
        excluded = self._exclusions(portal, sink)
        pieces = plan(commits, consumer, self.seed, self.epoch)
        if self.seed is None:
            first, line = self._position.get("piece", 0), self._position.get("line", -1) + 1
            todo = pieces[first:]
            if todo:
                todo[0] = Piece(todo[0].key, todo[0].commit, max(todo[0].start, line), todo[0].stop)

            def moved(index: int, number: int) -> None:
                self._position = {"piece": first + index, "line": number}

            yield from self._records(todo, self._lines(portal, sink, todo), excluded, moved)
        else:
            replay = self._position.get("emitted", 0)
            rng = rng_for(self.seed, self.epoch, consumer.index, consumer.count)
            stream = shuffled(self._lines(portal, sink, pieces), rng, self.shuffle_buffer)
            for _ in range(replay):  # a restart reads its way back through the same buffer
                if next(stream, None) is None:
                    break
            emitted = replay

            def moved(index: int, number: int) -> None:
                nonlocal emitted
                emitted += 1
                self._position = {"emitted": emitted}

            yield from self._records(pieces, stream, excluded, moved)
        if not self._stop.is_set():  # a full pass: the next one is the next epoch
            self.epoch, self._snapshot, self._position = self.epoch + 1, None, {}

    def _lines(self, portal: Any, sink: Any, pieces: list[Piece]) -> Iterator[Line]:
        """(piece index, line number, line) of ``pieces``, fetched through the event loop
        thread in batches; the async side is closed when the caller stops early."""
        agen = self._abatches(sink, pieces)
        try:
            while True:
                try:
                    batch = portal.call(agen.__anext__)
                except StopAsyncIteration:
                    return
                yield from batch
        finally:
            portal.call(agen.aclose)

    async def _abatches(self, sink: Any, pieces: list[Piece]) -> AsyncIterator[list[Line]]:
        where = {p.commit["shard"]: i for i, p in enumerate(pieces)}  # a consumer has each shard once

        def on_corrupt(exc: CorruptShard, commit: dict[str, Any], handed_out: int) -> None:
            piece = pieces[where[commit["shard"]]]
            if self.skipped is not None:
                self.skipped.add(exc, max(0, piece.stop - max(piece.start, handed_out)))

        batch: list[Line] = []
        shard, number = None, 0
        try:
            async for _key, commit, line in committed_lines(sink, [(p.key, p.commit) for p in pieces], self.limit,
                                                            on_corrupt if self.skipped is not None else None):
                if commit["shard"] != shard:
                    shard, number = commit["shard"], 0
                index = where[shard]
                # Lines outside the piece are read all the same: the shard's sha256 is checked at its end.
                if pieces[index].start <= number < pieces[index].stop:
                    batch.append((index, number, line))
                    if len(batch) >= BATCH:
                        yield batch
                        batch = []
                number += 1
        except CorruptShard:
            if batch:  # the records handed out before the damage reach the caller first
                yield batch
            raise
        if batch:
            yield batch

    # -- follow --------------------------------------------------------------------------------------
    def _follow(self, portal: Any, sink: Any, consumer: Consumer) -> Iterator[dict[str, Any]]:
        seen: dict[str, str] = {}  # producer -> last commit key listed
        delay = self.poll_interval
        while not self._stop.is_set():
            mine = [(k, c) for k, c in portal.call(_poll, sink, seen, self.limit)
                    if follows(c, consumer) and int(c["seq"]) > self._done.get(str(c["producer"]), -1)]
            if not mine:
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.max_poll_interval)
                continue
            delay = self.poll_interval
            excluded = self._exclusions(portal, sink)
            current = self._current or [None, 0]
            pieces = [Piece(k, c, current[1] if k == current[0] else 0, int(c["count"])) for k, c in mine]

            def moved(index: int, number: int) -> None:
                piece = pieces[index]  # noqa: B023 - called only while this batch is read
                if number + 1 >= piece.stop:  # its last record: the shard is done
                    self._done[str(piece.commit["producer"])] = int(piece.commit["seq"])
                    self._current = None
                else:
                    self._current = [piece.key, number + 1]

            yield from self._records(pieces, self._lines(portal, sink, pieces), excluded, moved)


def _numbers(consumer: Consumer) -> list[int]:
    return [consumer.rank, consumer.world_size, consumer.worker, consumer.num_workers]


def _watermark(commits: list[Commit]) -> dict[str, int]:
    """Each producer's last commit seq: the commit list, given that commits are immutable."""
    out: dict[str, int] = {}
    for _, commit in commits:
        producer = str(commit["producer"])
        out[producer] = max(out.get(producer, -1), int(commit["seq"]))
    return out


async def _poll(sink: Any, seen: dict[str, str], limit: int) -> list[Commit]:
    """Commits not listed before, in (producer, seq) order; ``seen`` is updated. The first
    poll uses the checkpoints, later ones one LIST per producer from its last key."""
    if not seen:
        new = await list_commits(sink, limit)
    else:
        producers = await sink.list_dirs(f"{COMMITS}/")
        new = []
        async for entries in ordered_map(producers, lambda p: commits_after(sink, p, seen.get(p), limit),
                                         max(1, limit // 4)):
            new += entries
    for key, commit in new:
        seen[str(commit["producer"])] = key
    return new
