"""What the producer's sequencer hands its writer task (``stream/pipeline.py``): the plan of
a shard being filled, the frames to append to it, and the order to close it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from stream.commitlog import Failure


@dataclass
class ShardPlan:
    """A shard as the sequencer fills it: what its commit will say. The writer task
    stores its frames and commits it, in order, behind the sequencer."""

    seq: int
    seed_start: int
    seed_end: int
    opened: float = field(default_factory=time.monotonic)
    ids: list[str] = field(default_factory=list)
    partials: list = field(default_factory=list)  # recordstats.Partial of each stored frame, in order
    failures: list[Failure] = field(default_factory=list)
    duplicates: int = 0
    stored_estimate: int = 0  # exact for workers' frames, proportional for rebuilt ones


@dataclass(frozen=True)
class Append:
    plan: ShardPlan
    frame: bytes | asyncio.Future  # a rebuilt frame (with its Partial) is still being made in the pool
    count: int
    raw_bytes: int
    partial: object = None  # recordstats.Partial of a worker's frame (a rebuilt one brings its own)


@dataclass(frozen=True)
class Close:
    plan: ShardPlan
    commit: bool  # False: abort its upload (nothing worth committing)
