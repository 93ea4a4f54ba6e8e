"""Reading committed shards in bounded memory, checked, with many requests in flight.

- ``shard_records``: a shard's JSONL lines as a stream: the stored bytes arrive in chunks
  (``Sink.stream``), go through one streaming zstd decompressor (across frames) and are
  split into lines; nothing holds the whole shard, compressed or not. The sha256 and size
  the commit promised are checked on the fly; one line is held back so a mismatch is
  raised *before* the shard's last record is handed out (a reader never sees all of a
  corrupt shard and believes it whole). Small shards are fetched whole ahead of time by
  ``ordered_map`` and checked before their first record; a streamed shard's stored size is
  checked (one HEAD) before its first record, so a missing, truncated or appended-to shard
  hands out nothing.
- ``CorruptShard``: what a damaged, truncated or missing shard raises: one line naming the
  shard, its commit and how to repair, never a zstd traceback.
- ``SkippedShards``: what a reader told to go past corrupt shards (``on_corrupt="skip"``,
  ``--skip-corrupt``) skipped: the shards and how many of their records it did not hand out.
- ``ordered_map``: up to ``limit`` awaitables in flight, results in input order (commit
  and shard fetches over S3 are latency bound: 10,000 commits one GET at a time is minutes).

``ordered_map`` uses asyncio tasks rather than an anyio task group on purpose: readers are
async generators driven from a blocking portal (``iter_records``), where every ``__anext__``
may run in another task, and a task group's cancel scope cannot span those yields. The
sinks are asyncio-only anyway (aioboto3).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
import zstandard

log = structlog.get_logger("jitsynth.read")

T = TypeVar("T")
R = TypeVar("R")

def _concurrency() -> int:
    value = os.environ.get("JITSYNTH_READ_CONCURRENCY", "32")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"JITSYNTH_READ_CONCURRENCY={value!r}: want a whole number >= 1")
    return int(value)


# Requests in flight for every reader (read, stats, verify, card, dedup, export, iter_records):
# S3 answers in 15-30 ms, loopback in ~2 ms. $JITSYNTH_READ_CONCURRENCY overrides it.
DEFAULT_CONCURRENCY = _concurrency()
PREFETCH_MAX_BYTES = 1 << 20  # a shard up to this size is fetched whole ahead of its turn (32 x 1 MiB at most)
CHUNK = 1 << 18  # compressed bytes per read
# Compressed bytes per decompress call: the decompressor has no output cap, so the input is
# fed in slices; a slice expands to ~0.5 MB of JSONL at the records' ~30x ratio and stays
# bounded even for pathological (highly repetitive) shards.
SLICE = 1 << 14


class CorruptShard(ValueError):
    """A committed shard that does not match its commit (or cannot be read back)."""

    def __init__(self, shard: str, commit: str, why: str) -> None:
        super().__init__(f"shard {shard} (committed by {commit}) is corrupt: {why}. It is not part of a valid "
                         f"dataset: restore it from a copy, or delete {commit} and every later commit of that "
                         "producer and rerun it with the same seeds and config (shards are reproducible byte "
                         "for byte); `jitsynth verify URL` lists every damaged shard")
        self.shard, self.commit = shard, commit


@dataclass
class SkippedShards:
    """Corrupt shards a reader went past, and the records of theirs it did not hand out.
    Call it with (error, commit, records of that shard handed out) for each such shard."""

    shards: list[str] = field(default_factory=list)
    records: int = 0

    def __call__(self, exc: CorruptShard, commit: dict[str, Any], handed_out: int) -> None:
        self.add(exc, int(commit["count"]) - handed_out)

    def add(self, exc: CorruptShard, records: int) -> None:
        self.shards.append(exc.shard)
        self.records += records
        log.warning("corrupt shard skipped", shard=exc.shard, commit=exc.commit, records_skipped=records,
                    error=str(exc).split(". ", 1)[0])

    def message(self) -> str:
        """One line for a user: how much was skipped, where, and what to run."""
        names = ", ".join(self.shards[:3]) + (f" and {len(self.shards) - 3} more" if len(self.shards) > 3 else "")
        return (f"skipped {self.records:,} records of {len(self.shards)} corrupt shard(s) ({names}); "
                "`jitsynth verify URL` lists every damaged shard")


async def ordered_map(items: Iterable[T], fn: Callable[[T], Awaitable[R]], limit: int) -> AsyncIterator[R]:
    """``fn(item)`` for each item, at most ``limit`` running at once, yielded in input order.
    The first failure (in input order) is raised; unfinished calls are cancelled on exit."""
    source = iter(items)
    window: deque[asyncio.Future[R]] = deque()

    def fill() -> None:
        while len(window) < max(1, limit):
            try:
                item = next(source)
            except StopIteration:
                return
            window.append(asyncio.ensure_future(fn(item)))

    try:
        fill()
        while window:
            result = await window.popleft()
            fill()
            yield result
    finally:
        for future in window:
            future.cancel()
        if window:
            await asyncio.gather(*window, return_exceptions=True)


def _lines(buffer: bytearray, data: bytes) -> list[bytes]:
    """Append ``data``; return the complete lines (newline kept), leave the rest in ``buffer``."""
    buffer += data
    end = buffer.rfind(b"\n")
    if end < 0:
        return []
    lines = [line + b"\n" for line in bytes(buffer[:end]).split(b"\n")]  # not splitlines: only \n ends a line
    del buffer[: end + 1]
    return lines


async def _chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start:start + CHUNK]


async def shard_records(sink: Any, commit: dict[str, Any], commit_key: str = "",
                        data: bytes | None = None) -> AsyncIterator[bytes]:
    """The JSONL lines of one committed shard, checked against the commit (size, sha256,
    zstd integrity). ``data``: the stored bytes when already fetched (checked before the
    first line), else they are streamed."""
    shard = commit["shard"]
    commit_key = commit_key or f"the commit of {shard}"

    def mismatch(size: int, digest: str | None) -> CorruptShard | None:
        if size == int(commit["bytes"]) and digest in (None, commit["sha256"]):
            return None
        if digest is None:
            return CorruptShard(shard, commit_key, f"{size} bytes, the commit says {commit['bytes']} bytes")
        return CorruptShard(shard, commit_key, f"{size} bytes with sha256 {digest}, the commit says "
                                               f"{commit['bytes']} bytes, {commit['sha256']}")

    sha = None  # fetched whole: checked once, here; streamed: hashed on the way
    if data is not None:
        if (bad := mismatch(len(data), hashlib.sha256(data).hexdigest())) is not None:
            raise bad
        chunks: AsyncIterator[bytes] = _chunks_of(data)
    else:
        # The size first, so the usual damage (missing, truncated, appended) yields no record at all.
        stored = await sink.size(shard)
        if stored is None:
            raise CorruptShard(shard, commit_key, "the shard is missing")
        if (bad := mismatch(stored, None)) is not None:
            raise bad
        sha, chunks = hashlib.sha256(), sink.stream(shard, CHUNK)
    size = 0
    decompressor = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    buffer = bytearray()
    held: bytes | None = None  # the last complete line, handed out once the next one exists
    try:
        async for chunk in chunks:
            if sha is not None:
                sha.update(chunk)
            size += len(chunk)
            for start in range(0, len(chunk), SLICE):
                for line in _lines(buffer, decompressor.decompress(chunk[start:start + SLICE])):
                    if held is not None:
                        yield held
                    held = line
    except FileNotFoundError:
        raise CorruptShard(shard, commit_key, "the shard is missing") from None
    except zstandard.ZstdError as exc:
        raise CorruptShard(shard, commit_key, f"zstd cannot decode it ({exc})") from None
    if sha is not None and (bad := mismatch(size, sha.hexdigest())) is not None:
        raise bad
    if buffer:
        raise CorruptShard(shard, commit_key, "it ends inside a record (no final newline)")
    if held is not None:
        yield held


async def prefetched(sink: Any, commit: dict[str, Any]) -> bytes | None:
    """A small shard's stored bytes (None for a large one, streamed in its turn instead),
    so ``ordered_map`` can fetch many shards at once in bounded memory."""
    if int(commit.get("bytes") or 0) > PREFETCH_MAX_BYTES:
        return None
    return await sink.get(commit["shard"])  # None when missing: the stream path reports it


def listed_mismatch(commit: dict[str, Any], commit_key: str, info: Any) -> CorruptShard | str | None:
    """A committed shard as one LIST shows it (``info``: ``sinks.base.ObjectInfo`` or None
    when absent): None if it has the committed size and, where the store gives ETags, the
    committed ETag; ``CorruptShard`` if it is missing or another size; ``"read"`` when only the
    ETag differs (a store whose ETags are not MD5s, e.g. SSE-KMS, or same-size damage):
    only reading the bytes (sha256) can tell which."""
    if info is None:
        return CorruptShard(commit["shard"], commit_key, "the shard is missing")
    if info.size != int(commit["bytes"]):
        return CorruptShard(commit["shard"], commit_key, f"{info.size} bytes, the commit says {commit['bytes']} bytes")
    if info.etag is not None and info.etag != commit.get("etag"):
        return "read"
    return None
