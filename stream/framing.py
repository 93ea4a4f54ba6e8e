"""Worker-side compression: a batch comes back from the pool as one zstd frame plus ids.

The pool's task (``synth.worker.process_batch``, ``synth.ingest.worker.process_items``) returns
one JSONL line per produced record; ``FramedTask`` runs in the worker around it and
compresses the batch's lines into one frame (``sinks.shard.compress_frame``), so the
producer's main process receives ~2 KB per record instead of ~55 KB and only appends
frames to the shard, does dedup lookups and keeps the commit books. The worker also reads
each record's ``stats`` facts (``stream.recordstats``), which the commit summarises.

A frame must hold exactly the records a shard keeps. When the main process keeps every
record of a batch in one shard (the common case), it appends the worker's frame as is.
When it drops some (duplicates of earlier records) or a shard ends inside the batch, a
pool worker rebuilds a frame of the kept lines (``rebuild_frame``) while the main loop
goes on; the pipeline's writer task stores frames in order. Both paths give the same bytes for
the same lines, and the producer aligns batches to a fixed grid of seeds, so a shard is a
function of (seeds, config, batch size) whatever the worker count, and a run resumed
after kill -9 writes the bytes the uninterrupted run would have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from sinks.shard import compress_frame, frame_lines
from stream.recordstats import Partial, RecordFacts, partial_of, record_facts
from synth.worker import Failed, Produced


class Kept(NamedTuple):
    """A produced record whose line travels inside its batch's frame (a tuple: the main
    process unpickles one per record)."""

    seed: int
    id: str
    size: int  # bytes of its JSONL line


@dataclass(frozen=True, slots=True)
class FramedBatch:
    outcomes: tuple[Kept | Failed, ...]  # in seed order
    frame: bytes  # one zstd frame of the Kept lines, in order (b"" when none)
    partial: Partial | None = None  # what `stats` takes from the Kept lines, folded in the worker

    def kept(self) -> list[Kept]:
        return [o for o in self.outcomes if isinstance(o, Kept)]


@dataclass(frozen=True, slots=True)
class FramedTask:
    """Picklable pool task: the inner task's outcomes, with the lines compressed here."""

    task: Callable[[list[int]], list]
    level: int

    def __call__(self, seeds: list[int]) -> FramedBatch:
        outcomes = self.task(seeds)
        lines = [o.line for o in outcomes if isinstance(o, Produced)]
        slim = tuple(Kept(o.seed, o.id, len(o.line)) if isinstance(o, Produced) else o for o in outcomes)
        return FramedBatch(slim, *_framed(lines, self.level))


def _framed(lines: list[bytes], level: int) -> tuple[bytes, Partial]:
    """The frame of ``lines`` and their facts folded: one place for a batch's frame and a
    rebuilt one, so the same lines give the same bytes and the same summary either way."""
    return compress_frame(lines, level), partial_of([_facts(line) for line in lines])


def _facts(line: bytes) -> RecordFacts | None:
    """None for a line ``stats`` could not read either: its commit then has no summary, and
    ``stats`` reads that shard (and reports the line) as it always did."""
    try:
        return record_facts(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def grid_end(seed: int, batch: int) -> int:
    """Where the batch holding ``seed`` ends on the producer's fixed grid of seeds (multiples of
    ``batch``): a resumed run's first batch is short, and every batch after it is where the
    uninterrupted run had it."""
    return (seed // batch + 1) * batch


def failed_batch(seed: int, reason: str) -> FramedBatch:
    """What the pool reports for a seed whose worker died or hung."""
    return FramedBatch((Failed(seed, reason),), b"")


def rebuild_frame(frame: bytes, positions: list[int], level: int) -> tuple[bytes, Partial]:
    """A frame of the lines at ``positions`` of ``frame``, and their facts folded (run in a pool worker)."""
    lines = frame_lines(frame)
    return _framed([lines[p] for p in positions], level)


@dataclass(frozen=True, slots=True)
class Segment:
    """The records of one batch that go into one shard."""

    batch: FramedBatch
    positions: list[int]  # among the batch's Kept records
    raw_bytes: int
    frame: bytes | None  # the worker's frame when it holds exactly these records, else rebuild

    @property
    def count(self) -> int:
        return len(self.positions)

    @property
    def estimate(self) -> int:
        """Stored bytes expected for a rebuilt frame (the worker's frame, pro rata)."""
        return len(self.batch.frame) * self.count // max(len(self.batch.kept()), 1)


class BatchSplitter:
    """Cuts one batch into segments, one per shard it feeds (almost always one)."""

    def __init__(self, batch: FramedBatch) -> None:
        self.batch = batch
        self._kept = len(batch.kept())
        self._segments = 0
        self._positions: list[int] = []
        self._raw = 0

    def keep(self, position: int, size: int) -> None:
        """The shard being filled keeps the batch's ``position``-th Kept record."""
        self._positions.append(position)
        self._raw += size

    def segment(self, at_end: bool) -> Segment | None:
        """The records kept since the last segment (None if none). ``at_end``: the batch has
        no outcome left. The worker's frame serves as is when this segment is the whole
        batch and keeps every record; otherwise the frame must be rebuilt (rebuild_frame)."""
        whole = self._segments == 0 and at_end
        self._segments += 1
        positions, raw = self._positions, self._raw
        self._positions, self._raw = [], 0
        if not positions:
            return None
        reuse = whole and len(positions) == self._kept
        return Segment(self.batch, positions, raw, self.batch.frame if reuse else None)
