"""Read a dataset the way the commit protocol intends: commits drive reading (a shard
without a commit is invisible), records come back in (producer, seq, line) order.
Shards are streamed and checked against their commits (``sinks.read.shardio``), the commit
log comes from checkpoints (``sinks.checkpoints``), and fetches run many at a time.

``iter_records(url)`` is the synchronous API for training code; ``committed_shards(url)``
lists the shard files for readers that open them in place (HF datasets, pandas, DuckDB,
fsspec); the async functions serve the CLI, the verifier and ``stats``. ``CorruptShard``
(what a damaged shard raises) and ``SkippedShards`` (the tally of shards gone past) are
importable from here. For sharded, shuffled, resumable training reads: ``sinks.read.training``.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from typing import Any

import anyio
import zstandard

from sinks.checkpoints import list_commits
from sinks.read.nearfile import load_all_exclusions
from sinks.read.shardio import DEFAULT_CONCURRENCY, CorruptShard, SkippedShards, ordered_map, prefetched, shard_records
from sinks.read.splits import load_splitter, record_id
from sinks.url import opened_sink
from sinks.read.where import compile_where

COMMITS_PREFIX = "commits/"

# Called with (error, commit, records of that shard already handed out) when a reader goes
# past a corrupt shard instead of raising (``SkippedShards`` is one).
OnCorrupt = Callable[[CorruptShard, dict[str, Any], int], None]


async def commit_dicts(sink, with_ids: bool = False,  # noqa: ANN001 - any Sink
                       limit: int = DEFAULT_CONCURRENCY) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(commit key, commit as a dict) for every commit, in (producer, seq) order, read from
    the producers' checkpoints plus the commits after them (``sinks.checkpoints``), with
    ``limit`` requests in flight. Commits from a checkpoint have no ``ids`` unless ``with_ids``."""
    for key, commit in await list_commits(sink, limit, with_ids):
        yield key, commit


def decompress_lines(data: bytes) -> Iterator[bytes]:
    """Lines of zstd-compressed JSONL bytes held in memory, one at a time."""
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
        yield from io.BufferedReader(reader)


async def _with_prefetch(sink, entry: tuple[str, dict[str, Any]]):  # noqa: ANN001, ANN202
    return entry, await prefetched(sink, entry[1])


async def committed_lines(sink, commits: list[tuple[str, dict[str, Any]]],  # noqa: ANN001 - any Sink
                          limit: int = DEFAULT_CONCURRENCY,
                          on_corrupt: OnCorrupt | None = None) -> AsyncIterator[tuple[str, dict[str, Any], bytes]]:
    """(commit key, commit, JSONL line) of every record of ``commits``, in order, each shard
    checked against its commit (``CorruptShard`` otherwise, or ``on_corrupt`` is told and
    the next shard follows); small shards are fetched ``limit`` at a time ahead of their
    turn, large ones streamed: memory stays bounded."""
    async for (key, commit), data in ordered_map(commits, lambda e: _with_prefetch(sink, e), limit):
        handed_out = 0
        try:
            async for line in shard_records(sink, commit, key, data):
                handed_out += 1
                yield key, commit, line
        except CorruptShard as exc:
            if on_corrupt is None:
                raise
            on_corrupt(exc, commit, handed_out)


async def aiter_records(url: str, endpoint_url: str | None = None,
                        excluded: Mapping[str, Collection[str]] | None = None,
                        dedup: bool = True, limit: int = DEFAULT_CONCURRENCY, split: str | None = None,
                        fractions: Mapping[str, float] | None = None,
                        skipped: SkippedShards | None = None) -> AsyncIterator[bytes]:
    """Raw JSONL lines of every committed record.

    ``excluded`` maps a commit's shard key to record ids to skip in that shard. By
    default (``dedup``) it is the dataset's cross-producer dedup file written by
    ``jitsynth dedup`` (``sinks.read.dedupfile``), so each listed duplicate is read once, at
    its first copy, and the near-duplicate members listed by ``jitsynth dedup --near``
    (``sinks.read.nearfile``) are skipped; ``dedup=False`` reads every committed record.
    ``split`` keeps only that split's records (``sinks.read.splits``: by ``fractions``, default
    98/1/1, near-duplicate clusters whole). ``limit``: requests in flight (commit and
    shard fetches). ``skipped``: go past corrupt shards, tallying them there, instead of
    raising ``CorruptShard``.
    """
    async with opened_sink(url, endpoint_url=endpoint_url, create=False) as sink:
        if excluded is None and dedup:
            excluded = await load_all_exclusions(sink)
        splitter = await load_splitter(sink, fractions) if split is not None else None
        if splitter is not None:
            splitter.check(split)
        commits = await list_commits(sink, limit)
        async for _key, commit, line in committed_lines(sink, commits, limit, skipped):
            skip = excluded.get(commit["shard"]) if excluded else None
            if skip or splitter:
                rid = record_id(line)
                if (skip and rid in skip) or (splitter and splitter.split(rid) != split):
                    continue
            yield line


def iter_records(url: str, endpoint_url: str | None = None,
                 where: str | Callable[[dict[str, Any]], bool] | None = None, split: str | None = None,
                 fractions: Mapping[str, float] | None = None, dedup: bool = True,
                 skipped: SkippedShards | None = None) -> Iterator[dict[str, Any]]:
    """Committed records as dicts, for training code: ``for r in iter_records("s3://b/p"): ...``

    ``where`` filters records: an expression string (see ``sinks.read.where``) or a predicate.
    ``split`` (``train``, ``validation``, ``test``) and ``fractions``: see ``aiter_records``.
    ``skipped``: go past corrupt shards (tallied there) instead of raising ``CorruptShard``.
    For sharded, shuffled, resumable reading across ranks and workers see ``sinks.read.training``.
    """
    keep = compile_where(where) if isinstance(where, str) else where
    with anyio.from_thread.start_blocking_portal() as portal:
        agen = aiter_records(url, endpoint_url, dedup=dedup, split=split, fractions=fractions, skipped=skipped)
        try:
            while True:
                try:
                    line = portal.call(agen.__anext__)
                except StopAsyncIteration:
                    return
                record = json.loads(line)
                if keep is None or keep(record):
                    yield record
        finally:
            portal.call(agen.aclose)  # closes the sink when the caller stops early


async def acommitted_shards(url: str, endpoint_url: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(shard location, commit) for every commit: a local file path, or ``s3://bucket/key``."""
    async with opened_sink(url, endpoint_url=endpoint_url, create=False) as sink:
        out = []
        async for _key, commit in commit_dicts(sink):
            if hasattr(sink, "local_path"):
                where = str(sink.local_path(commit["shard"]))
            else:
                key = f"{sink.prefix}/{commit['shard']}" if sink.prefix else commit["shard"]
                where = f"s3://{sink.bucket}/{key}"
            out.append((where, commit))
        return out


def committed_shards(url: str, endpoint_url: str | None = None) -> list[str]:
    """The committed shards of a dataset, in commit order, as paths or ``s3://`` URLs.

    Hand these to readers that open files in place (HF ``datasets``, pandas, DuckDB,
    fsspec) instead of globbing ``shards/``: a glob also picks up orphan shards that a
    crashed producer left without a commit, which are not part of the dataset.
    """
    return [where for where, _ in anyio.run(acommitted_shards, url, endpoint_url)]
