"""Commit-log checkpoints: open a 100,000-commit dataset with a few requests, not 100,000.

What Delta Lake does with ``_delta_log`` checkpoints, kept single-writer: every K commits
and at the end of a run, a producer writes ``checkpoints/{producer}/{seq:08d}.json``, the
summary of each of its commits ``0..seq`` (shard, count, bytes, sha256, seeds, config
hash, shard ETag: everything but the record ids and the records' summary), and beside it
``{seq:08d}.ids.json`` with the ids and the ``stats`` summaries (``Commit.stats``) of the
commits since its previous checkpoint (dedup reads the ids, ``stats`` the summaries,
``verify`` both: a checkpoint plus its ids objects rebuild each commit byte for byte, and
the commit's ETag in a LIST proves it without a GET). A reader
lists the producers (one delimited LIST), takes each producer's latest checkpoint, and
lists only the commits after it (one LIST with a start key); those few it fetches.

A checkpoint is derived data. Each carries a sha256 of its own commit list (and of its
ids object), and one that is missing, unreadable, inconsistent or from an older format
is skipped for the previous one, then for the commits themselves: reading gets slower,
never different. ``jitsynth verify`` checks every checkpoint against the commits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import structlog

from sinks.read.shardio import DEFAULT_CONCURRENCY, ordered_map

log = structlog.get_logger("jitsynth.checkpoints")

CHECKPOINTS, COMMITS = "checkpoints", "commits"
FORMAT = 1
DEFAULT_EVERY = 100
_TRIES = 3  # checkpoints tried per producer, newest first, before falling back to the commits


def checkpoint_key(producer: str, seq: int) -> str:
    return f"{CHECKPOINTS}/{producer}/{seq:08d}.json"


def ids_key(producer: str, seq: int) -> str:
    return f"{CHECKPOINTS}/{producer}/{seq:08d}.ids.json"


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


_LARGE = ("ids", "stats")  # per-commit fields kept in the ids objects, not in the checkpoint


def summary(commit: dict[str, Any]) -> dict[str, Any]:
    """A commit as a checkpoint keeps it: everything but the ids and the records' summary."""
    return {k: v for k, v in commit.items() if k not in _LARGE}


def encode(producer: str, entries: list[tuple[str, dict[str, Any]]], new_ids: dict[str, list[str]],
           previous: str | None, new_stats: dict[str, Any] | None = None) -> tuple[bytes, bytes]:
    """(checkpoint, ids object) for a producer's commits ``entries`` (key, commit summary),
    ``new_ids`` the ids (``new_stats`` the summaries, where a commit has one) of the commits
    since the ``previous`` checkpoint key."""
    commits = [{"key": key, **summary(c)} for key, c in entries]
    new_stats = new_stats or {}
    ids_doc = {"format": FORMAT, "producer": producer, "ids": new_ids, "digest": digest(new_ids),
               "stats": new_stats, "stats_digest": digest(new_stats)}
    doc = {"format": FORMAT, "producer": producer, "through": entries[-1][0], "previous": previous,
           "commits": commits, "digest": digest(commits), "ids_digest": digest(ids_doc)}
    return json.dumps(doc, separators=(",", ":")).encode(), json.dumps(ids_doc, separators=(",", ":")).encode()


def decode(data: bytes | None, producer: str, key: str) -> dict[str, Any] | None:
    """The checkpoint if it is whole and consistent, else None (with the reason logged)."""
    why = "missing"
    try:
        if data is not None:
            doc = json.loads(data)
            commits = doc["commits"]
            keys = [c["key"] for c in commits]
            prefix = f"{COMMITS}/{producer}/"
            if doc.get("format") != FORMAT or doc["producer"] != producer:
                why = "another format or producer"
            elif digest(commits) != doc["digest"]:
                why = "its digest does not match its commits"
            elif not keys or keys[-1] != doc["through"] or keys != sorted(set(keys)) \
                    or not all(k.startswith(prefix) for k in keys) or key != checkpoint_key(producer, commits[-1]["seq"]):
                why = "its commit keys are inconsistent"
            else:
                return doc
    except (ValueError, KeyError, TypeError) as exc:
        why = f"unreadable ({type(exc).__name__})"
    log.warning("checkpoint skipped", key=key, reason=why)
    return None


async def _fetch_commit(sink: Any, key: str) -> dict[str, Any] | None:
    data = await sink.get(key)
    return json.loads(data) if data is not None else None


async def producer_commits(sink: Any, producer: str, checkpoint_keys: list[str], limit: int = DEFAULT_CONCURRENCY,
                           with_ids: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """One producer's commits in seq order: the newest valid checkpoint's summaries (and,
    ``with_ids``, their ids objects) plus the commits listed after it."""
    doc = None
    for key in sorted((k for k in checkpoint_keys if not k.endswith(".ids.json")), reverse=True)[:_TRIES]:
        doc = decode(await sink.get(key), producer, key)
        if doc is not None:
            break
    entries: list[tuple[str, dict[str, Any]]] = []
    if doc is not None and with_ids:
        found = await _checkpoint_ids(sink, producer, doc, checkpoint_keys, limit)
        if found is None:
            doc = None  # an ids object is damaged: fall back to the commits, which carry their ids
        else:
            ids, stats = found
            entries = [(c["key"], {**{k: v for k, v in c.items() if k != "key"}, "ids": ids[c["key"]],
                                   **({"stats": stats[c["key"]]} if c["key"] in stats else {})})
                       for c in doc["commits"]]
    elif doc is not None:
        entries = [(c["key"], {k: v for k, v in c.items() if k != "key"}) for c in doc["commits"]]
    return entries + await commits_after(sink, producer, doc["through"] if doc else None, limit)


async def commits_after(sink: Any, producer: str, after: str | None,
                        limit: int = DEFAULT_CONCURRENCY) -> list[tuple[str, dict[str, Any]]]:
    """One producer's commits listed after the commit key ``after`` (all with None), in seq
    order: one LIST from there and a GET per new commit (what a follower polls)."""
    tail = [k for k in await sink.list(f"{COMMITS}/{producer}/", start_after=after) if k.endswith(".json")]
    return [(key, commit) async for key, commit in ordered_map(tail, lambda k: _keyed(sink, k), limit)
            if commit is not None]


async def _keyed(sink: Any, key: str) -> tuple[str, dict[str, Any] | None]:
    return key, await _fetch_commit(sink, key)


def decode_stats(data: bytes | None) -> dict[str, Any] | None:
    """Commit key -> records' summary of one ids object ({} for one written before
    summaries), or None if they fail their digest."""
    try:
        doc = json.loads(data or b"")
        stats = doc.get("stats", {})
        return stats if "stats" not in doc or digest(stats) == doc["stats_digest"] else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def decode_ids(data: bytes | None) -> dict[str, list[str]] | None:
    """Commit key -> ids of one ids object, or None if it is missing or fails its digest."""
    try:
        doc = json.loads(data or b"")
        return doc["ids"] if digest(doc["ids"]) == doc["digest"] else None
    except (ValueError, KeyError, TypeError):
        return None


async def _checkpoint_ids(sink: Any, producer: str, doc: dict[str, Any], checkpoint_keys: list[str],
                          limit: int) -> tuple[dict[str, list[str]], dict[str, Any]] | None:
    """(commit key -> ids, commit key -> records' summary), from the ids objects along the
    checkpoint chain (None if an ids list is damaged; damaged summaries are left out, so
    ``stats`` reads those commits' shards instead)."""
    last = max(int(c["seq"]) for c in doc["commits"])
    # Each ids object holds the commits after the previous checkpoint; walk the chain by keys.
    chain = [k for k in sorted(checkpoint_keys)
             if k.endswith(".ids.json") and int(k.rsplit("/", 1)[-1].split(".")[0]) <= last]
    found: dict[str, list[str]] = {}
    summaries: dict[str, Any] = {}
    async for data in ordered_map(chain, sink.get, limit):
        ids, stats = decode_ids(data), decode_stats(data)
        if ids is None:
            log.warning("checkpoint ids skipped", producer=producer, reason="damaged")
            return None
        if stats is None:
            log.warning("checkpoint summaries skipped", producer=producer, reason="damaged")
        found.update(ids)
        summaries.update(stats or {})
    if any(c["key"] not in found for c in doc["commits"]):
        return None
    return found, summaries


async def list_commits(sink: Any, limit: int = DEFAULT_CONCURRENCY,
                       with_ids: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """Every commit of the dataset, in (producer, seq) order, as (key, commit dict); from
    checkpoints where they are valid (summaries without ``ids`` unless ``with_ids``)."""
    producers = await sink.list_dirs(f"{COMMITS}/")
    checkpoints: dict[str, list[str]] = {}
    for key in await sink.list(f"{CHECKPOINTS}/"):
        checkpoints.setdefault(key.split("/")[1], []).append(key)
    out: list[tuple[str, dict[str, Any]]] = []
    fetch: Callable[[str], Any] = lambda p: producer_commits(sink, p, checkpoints.get(p, []), limit, with_ids)  # noqa: E731
    async for entries in ordered_map(producers, fetch, max(1, limit // 4)):
        out += entries
    return out


class CheckpointWriter:
    """The producer's side: keeps its commits' summaries, writes a checkpoint every ``every``
    commits and at the end of a run. A checkpoint that cannot be written is logged and
    skipped (it is derived data; the commit it would summarise is already durable)."""

    def __init__(self, sink: Any, producer: str, every: int = DEFAULT_EVERY) -> None:
        self.sink, self.producer, self.every = sink, producer, every
        self.entries: list[tuple[str, dict[str, Any]]] = []
        self.pending: dict[str, list[str]] = {}  # ids of commits not in a checkpoint yet
        self.pending_stats: dict[str, Any] = {}  # and their records' summaries
        self.previous: str | None = None

    async def load(self) -> None:
        """Pick up after a previous run (or a kill between a commit and its checkpoint)."""
        keys = await self.sink.list(f"{CHECKPOINTS}/{self.producer}/")
        entries = await producer_commits(self.sink, self.producer, keys)
        self.entries = [(k, summary(c)) for k, c in entries]
        self.pending = {k: c["ids"] for k, c in entries if "ids" in c}  # listed after the checkpoint
        self.pending_stats = {k: c["stats"] for k, c in entries if "ids" in c and c.get("stats") is not None}
        covered = [k for k, c in entries if "ids" not in c]
        self.previous = checkpoint_key(self.producer, int(entries[len(covered) - 1][1]["seq"])) if covered else None

    async def add(self, key: str, commit: dict[str, Any]) -> None:
        self.entries.append((key, summary(commit)))
        self.pending[key] = list(commit["ids"])
        if commit.get("stats") is not None:
            self.pending_stats[key] = commit["stats"]
        if len(self.pending) >= self.every:
            await self.write()

    async def write(self) -> None:
        if not self.pending or not self.entries:
            return
        seq = int(self.entries[-1][1]["seq"])
        doc, ids = encode(self.producer, self.entries, self.pending, self.previous, self.pending_stats)
        try:
            await self.sink.put(ids_key(self.producer, seq), ids)  # before the checkpoint that names it
            await self.sink.put(checkpoint_key(self.producer, seq), doc)
        except Exception as exc:  # noqa: BLE001 - derived data: a failed write must not stop production
            log.warning("checkpoint not written", producer=self.producer, seq=seq, error=str(exc)[:300])
            return
        self.previous, self.pending, self.pending_stats = checkpoint_key(self.producer, seq), {}, {}
        log.info("checkpoint written", producer=self.producer, through_seq=seq, commits=len(self.entries))
