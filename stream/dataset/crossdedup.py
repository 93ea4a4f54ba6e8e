"""``jitsynth dedup``: the cross-producer duplicate pass.

Each producer deduplicates its own records online (``stream.dedup``); producers of one
dataset (pods of an Indexed Job) own disjoint seed partitions, but two seeds can still
yield the same canonical kernel, so the same id can be committed by two producers.
This pass reads every commit's ``ids`` (never the shards), finds each id committed
again after its first occurrence, and writes ``dedup/duplicates.json`` (format in
``sinks.read.dedupfile``) with a plain replace. Committed shards and commits are never
touched, so the pass is safe to run while producers are still writing, and to rerun:
each run recomputes the whole file from the commits it sees.

Order ("earlier"): commit-key order, the keys ``commits/{producer}/{seq:08d}.json``
sorted as byte strings (as every sink lists them), then position in the shard: roughly
producer id as a string, then seq (``10`` sorts before ``2``, ``1-b`` before ``1``). That
is the order ``jitsynth read`` yields records in, so the copy a reader keeps is always
the first one it meets, and the result does not depend on when producers ran.

A repeat *within* one producer is not a cross-producer duplicate: the per-producer
index should have made it impossible, so it is reported (and ``jitsynth verify``
faults on it), never listed away.

Memory: one entry per distinct id (16-byte key + dict slot, ~120 bytes), about
1 GB per 10 million records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog

from sinks.read.dedupfile import DEDUP_KEY, FORMAT_VERSION, exclusions, load, load_exclusions
from sinks.read.reader import commit_dicts
from stream.commitlog import now_iso

log = structlog.get_logger("jitsynth.dedup")

ORDER = "commit keys (commits/{producer}/{seq:08d}.json) sorted as byte strings, then position in the shard"

__all__ = ["DEDUP_KEY", "DedupResult", "exclusions", "find_duplicates", "load", "load_excluded_ids",
           "load_exclusions", "run_dedup"]


@dataclass
class DedupResult:
    commits: int = 0
    records: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    # ids a single producer committed twice: a fault for ``verify``, never listed away
    same_producer: list[dict[str, Any]] = field(default_factory=list)
    covered: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def unique(self) -> int:
        return self.records - len(self.duplicates) - len(self.same_producer)

    def document(self) -> dict[str, Any]:
        """The JSON document stored at ``dedup/duplicates.json``."""
        by_producer: dict[str, int] = {}
        for dup in self.duplicates:
            by_producer[dup["producer"]] = by_producer.get(dup["producer"], 0) + 1
        return {"version": FORMAT_VERSION, "order": ORDER, "created_at": now_iso(), "commits": self.commits,
                "records": self.records, "unique": self.unique, "n_duplicates": len(self.duplicates),
                "duplicates_by_producer": dict(sorted(by_producer.items())), "covered": self.covered,
                "duplicates": self.duplicates}


def _id_key(record_id: str) -> bytes | str:
    try:
        return bytes.fromhex(record_id)  # ids are hex digests: 16 bytes instead of a 32-char str
    except ValueError:
        return record_id


def find_duplicates(commits: list[dict[str, Any]]) -> DedupResult:
    """Duplicates among ``commits`` (dicts as stored), which must be in commit-key order."""
    result = DedupResult()
    first: dict[bytes | str, int] = {}  # id -> index of the commit that holds its first copy
    for pos, commit in enumerate(commits):
        producer, seq, shard = str(commit["producer"]), int(commit["seq"]), commit["shard"]
        result.commits += 1
        result.records += len(commit["ids"])
        result.covered[producer] = {"seq": seq, "sha256": commit["sha256"]}
        for record_id in commit["ids"]:
            key = _id_key(record_id)
            at = first.get(key)
            if at is None:
                first[key] = pos
                continue
            origin = commits[at]
            entry = {"id": record_id, "producer": producer, "seq": seq, "shard": shard,
                     "first_producer": str(origin["producer"]), "first_seq": int(origin["seq"]),
                     "first_shard": origin["shard"]}
            if entry["first_producer"] == producer:
                result.same_producer.append(entry)
            else:
                result.duplicates.append(entry)
    return result


async def scan(sink) -> DedupResult:  # noqa: ANN001 - any Sink
    """Read every commit (ids only) in commit-key order and find the duplicates."""
    keyed = []
    async for key, commit in commit_dicts(sink, with_ids=True):  # ids from checkpoints' ids objects
        keyed.append((key.encode(), {k: commit[k] for k in ("producer", "seq", "shard", "sha256", "ids")}))
    keyed.sort(key=lambda kc: kc[0])  # sinks list sorted already; make the order independent of that
    return find_duplicates([commit for _key, commit in keyed])


async def run_dedup(sink, write: bool = True) -> DedupResult:  # noqa: ANN001 - any Sink
    """The pass: scan the commits and (unless ``write`` is false) store the dedup file."""
    result = await scan(sink)
    if result.same_producer:
        log.warning("ids committed twice by the same producer (not listed; `jitsynth verify` reports them)",
                    n=len(result.same_producer), example=result.same_producer[0])
    if write:
        await sink.put(DEDUP_KEY, msgspec.json.format(msgspec.json.encode(result.document()), indent=1) + b"\n")
    log.info("cross-producer dedup", commits=result.commits, records=result.records,
             duplicates=len(result.duplicates), unique=result.unique, written=write)
    return result


async def load_excluded_ids(sink) -> dict[str, frozenset[str]]:  # noqa: ANN001 - any Sink
    """{shard: ids that readers skip} (empty when the pass never ran). For ``stats``,
    ``export`` and any reader that walks commits itself instead of ``sinks.read.reader``."""
    return await load_exclusions(sink)
