"""Which records each consumer of a training job reads: pure logic, no I/O.

A consumer is one data-loader worker of one rank: ``index = rank * num_workers + worker``
among ``count = world_size * num_workers``. Every consumer computes its own part from the
same commit list, so they agree without talking to each other.

A fixed dataset (``plan``): the commits are put in epoch order (commit order, or, with a
seed, shuffled by ``rng_for(seed, epoch)``: the same on every machine). The first
``S - S % count`` shards go whole, round robin: shard ``i`` to consumer ``i % count``.
The ``S % count`` leftover shards would leave some consumers a whole shard short, so
their records are split instead: numbered 0..R-1 across the leftover shards in order,
consumer ``c`` takes the contiguous run ``[c*R//count, (c+1)*R//count)``. Contiguous runs
(not every count-th record) keep each leftover shard read by few consumers: a zstd
stream cannot seek, so a consumer reads a leftover shard from its start. Every record
lands with exactly one consumer; each consumer gets ``S // count`` whole shards plus an
equal share (to one record) of the leftover records.

A growing dataset (``follows``, for ``follow=True``) has no last shard to split around,
so whole shards are assigned by identity, not position: producer ``p``'s commit ``seq``
belongs to consumer ``(h(p) + seq) % count`` (``h`` a stable hash). The owner of a shard
never changes however late a consumer first sees it, and each producer's shards go round
robin over the consumers.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
Commit = tuple[str, dict[str, Any]]  # (commit key, commit)


@dataclass(frozen=True)
class Consumer:
    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} of world_size {self.world_size}: want 0 <= rank < world_size")
        if self.num_workers < 1 or not 0 <= self.worker < self.num_workers:
            raise ValueError(f"worker {self.worker} of num_workers {self.num_workers}: "
                             "want 0 <= worker < num_workers")

    @property
    def index(self) -> int:
        return self.rank * self.num_workers + self.worker

    @property
    def count(self) -> int:
        return self.world_size * self.num_workers


@dataclass(frozen=True, eq=False)
class Piece:
    """Records ``start..stop-1`` (line numbers) of one committed shard."""

    key: str
    commit: dict[str, Any]
    start: int
    stop: int


def rng_for(*parts: object) -> random.Random:
    """A generator seeded from ``parts``: a str seed is hashed with SHA-512 by ``random``,
    so the stream is the same on every machine and under any PYTHONHASHSEED."""
    return random.Random("jitsynth:" + ":".join(map(str, parts)))


def epoch_order(commits: list[Commit], seed: int | None, epoch: int) -> list[Commit]:
    order = list(commits)
    if seed is not None:
        rng_for(seed, epoch).shuffle(order)
    return order


def plan(commits: list[Commit], consumer: Consumer, seed: int | None = None, epoch: int = 0) -> list[Piece]:
    """The pieces ``consumer`` reads in ``epoch``, in reading order (see the module doc)."""
    order = epoch_order(commits, seed, epoch)
    n, c = consumer.count, consumer.index
    whole = len(order) - len(order) % n
    pieces = [Piece(k, commit, 0, int(commit["count"])) for i, (k, commit) in enumerate(order[:whole]) if i % n == c]
    rest = order[whole:]
    total = sum(int(commit["count"]) for _, commit in rest)
    lo, hi = c * total // n, (c + 1) * total // n
    offset = 0
    for key, commit in rest:
        size = int(commit["count"])
        a, b = max(lo, offset), min(hi, offset + size)
        if a < b:
            pieces.append(Piece(key, commit, a - offset, b - offset))
        offset += size
    return pieces


def _producer_offset(producer: str) -> int:
    return int.from_bytes(hashlib.sha256(producer.encode()).digest()[:8], "big")


def follows(commit: dict[str, Any], consumer: Consumer) -> bool:
    """Whether ``consumer`` owns this shard of a growing dataset (see the module doc)."""
    return (_producer_offset(str(commit["producer"])) + int(commit["seq"])) % consumer.count == consumer.index


def shuffled(items: Iterable[T], rng: random.Random, size: int) -> Iterator[T]:
    """``items`` in a random order drawn from a buffer of ``size``: memory is ``size`` items,
    and an item moves at most about ``size`` places on average; deterministic for ``rng``."""
    buffer: list[T] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = rng.randrange(size)
        out, buffer[j] = buffer[j], item
        yield out
    rng.shuffle(buffer)
    yield from buffer
