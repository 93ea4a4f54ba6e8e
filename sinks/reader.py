"""Read a dataset the way the commit protocol intends: commits drive reading (a shard
without a commit is invisible), records come back in (producer, seq, line) order.

``iter_records(url)`` is the synchronous API for training code; ``committed_shards(url)``
lists the shard files for readers that open them in place (HF datasets, pandas, DuckDB,
fsspec); the async functions serve the CLI, the verifier and ``stats``.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from typing import Any

import anyio
import zstandard

from sinks.dedupfile import load_exclusions
from sinks.url import opened_sink
from sinks.where import compile_where

COMMITS_PREFIX = "commits/"


async def commit_dicts(sink) -> AsyncIterator[tuple[str, dict[str, Any]]]:  # noqa: ANN001 - any Sink
    """(commit key, commit as a dict) for every commit, in key order."""
    for key in await sink.list(COMMITS_PREFIX):
        if not key.endswith(".json"):
            continue
        data = await sink.get(key)
        if data is not None:
            yield key, json.loads(data)


def decompress_lines(data: bytes) -> Iterator[bytes]:
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
        yield from io.BufferedReader(reader)


async def shard_lines(sink, commit: dict[str, Any]) -> list[bytes]:  # noqa: ANN001
    data = await sink.get(commit["shard"])
    if data is None:
        raise FileNotFoundError(f"shard {commit['shard']} of a commit is missing")
    return list(decompress_lines(data))


async def aiter_records(url: str, endpoint_url: str | None = None,
                        excluded: Mapping[str, Collection[str]] | None = None,
                        dedup: bool = True) -> AsyncIterator[bytes]:
    """Raw JSONL lines of every committed record.

    ``excluded`` maps a commit's shard key to record ids to skip in that shard. By
    default (``dedup``) it is the dataset's cross-producer dedup file written by
    ``jitsynth dedup`` (``sinks.dedupfile``), so each listed duplicate is read once, at
    its first copy; ``dedup=False`` reads every committed record.
    """
    async with opened_sink(url, endpoint_url=endpoint_url) as sink:
        if excluded is None and dedup:
            excluded = await load_exclusions(sink)
        async for _key, commit in commit_dicts(sink):
            skip = excluded.get(commit["shard"]) if excluded else None
            for line in await shard_lines(sink, commit):
                if skip and json.loads(line)["id"] in skip:
                    continue
                yield line


def iter_records(url: str, endpoint_url: str | None = None,
                 where: str | Callable[[dict[str, Any]], bool] | None = None) -> Iterator[dict[str, Any]]:
    """Committed records as dicts, for training code: ``for r in iter_records("s3://b/p"): ...``

    ``where`` filters records: an expression string (see ``sinks.where``) or a predicate.
    """
    keep = compile_where(where) if isinstance(where, str) else where
    with anyio.from_thread.start_blocking_portal() as portal:
        agen = aiter_records(url, endpoint_url)
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
    async with opened_sink(url, endpoint_url=endpoint_url) as sink:
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
