"""Resume: rebuild where this producer stands from the bucket, using the local state
directory only as a cache.

The bucket's commits are the truth. The SQLite index is trusted up to its watermark
(seq + sha256 of the last commit it applied) only if the bucket holds that very
commit; newer commits' ids are replayed; anything else rebuilds the index from all
of this producer's commits.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from sinks.read.shardio import DEFAULT_CONCURRENCY, ordered_map
from stream.commitlog import Commit, commit_keys, load_commit, seq_of
from stream.config import ConfigError
from stream.dedup import DedupIndex

log = structlog.get_logger("jitsynth.resume")


@dataclass(frozen=True, slots=True)
class Position:
    next_seq: int
    next_seed: int
    committed: int
    last: Commit | None


async def resume(sink, producer: str, seed_start: int, index: DedupIndex,  # noqa: ANN001 - any Sink
                 config_hash: str, warp_version: str) -> Position:
    aborted = await sink.abort_stale_uploads(f"shards/{producer}/")
    if aborted:
        log.info("aborted stale shard uploads", n=aborted)
    keys = await commit_keys(sink, producer)
    if not keys:
        if index.watermark() is not None:
            log.warning("state directory belongs to another dataset; starting it afresh", path=str(index.path))
            index.reset()
        return Position(0, seed_start, 0, None)

    last = await load_commit(sink, keys[-1])
    if last.config_hash != config_hash or last.warp_version != warp_version:
        raise ConfigError(
            f"producer {producer!r} wrote this dataset with generator config {last.config_hash} and Warp "
            f"{last.warp_version}; this run has {config_hash} and Warp {warp_version}. Resume with the same "
            "settings, or write to a new --producer or --out")
    seqs = [seq_of(k) for k in keys]
    if seqs != list(range(len(seqs))):
        log.warning("commit sequence has gaps", producer=producer, first=seqs[0], last=seqs[-1], n=len(seqs))

    watermark = index.watermark()
    replay_from = 0
    if watermark is not None and watermark[0] in seqs:
        at = seqs.index(watermark[0])
        anchor = last if at == len(keys) - 1 else await load_commit(sink, keys[at])
        if anchor.sha256 == watermark[1]:
            replay_from = at + 1
    if replay_from == 0 and watermark is not None:
        log.warning("local index does not match the bucket; rebuilding it from the commits")
        index.reset()
    elif replay_from == 0:
        log.info("no local index; rebuilding it from the commits", commits=len(keys))
    total = index.committed_total()
    # Rebuilding a lost index reads every commit of the producer: many at a time, in order.
    async for commit in ordered_map(keys[replay_from:], lambda k: _load(sink, k, keys[-1], last), DEFAULT_CONCURRENCY):
        total += commit.count
        index.apply_commit(commit.seq, commit.sha256, commit.ids, total)
    loaded = index.load_bloom()
    log.info("resumed", producer=producer, next_seq=last.seq + 1, next_seed=last.seed_end, committed=total,
             replayed=len(keys) - replay_from, index_ids=loaded)
    return Position(last.seq + 1, last.seed_end, total, last)


async def _load(sink, key: str, last_key: str, last: Commit) -> Commit:  # noqa: ANN001 - any Sink
    return last if key == last_key else await load_commit(sink, key)
