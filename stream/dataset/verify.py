"""``jitsynth verify``: check every commit against its shard.

For each commit: the shard exists with the committed size and sha256, decompresses,
holds ``count`` records whose ids equal the commit's ``ids`` in order. Across commits,
ids are unique, except cross-producer duplicates that ``dedup/duplicates.json`` (written
by ``jitsynth dedup``) lists exactly: a repeat within one producer, a repeat the file
does not list (e.g. committed after the pass ran) and a listed entry that is not a
repeat in the commits are all faults, as is a record named by the near-duplicate file
(``jitsynth dedup --near``) that no commit holds. Shards no commit points to (orphans from a
crash) are listed. Every commit-log checkpoint must agree with the commits it summarises
(a damaged one is a fault to repair, though readers already skip it).

Commits and small shards are fetched ``limit`` at a time; large shards are streamed, so
memory does not grow with shard size.

On S3 a LIST gives every object's ETag, the MD5 of its bytes (of its parts' MD5s for a
multipart upload), and each commit records its shard's ETag: a shard whose listed size
and ETag are the committed ones holds the committed bytes, so it is not fetched; and a
commit that its checkpoint and ids object rebuild byte for byte (``encode_commit``) with
the listed ETag is not fetched either. 10,000 commits take a few hundred requests, not
20,000. Anything without a match (old commits, another ETag scheme, damage) is fetched
and checked in full, as every commit and shard is with ``deep`` (``verify --deep``) and on
a local directory, which has no ETags.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sinks import checkpoints as ckpt
from sinks.read.dedupfile import DEDUP_KEY, DedupFileError
from sinks.read.dedupfile import load as load_dedup_file
from sinks.read.nearfile import NEAR_KEY
from sinks.read.nearfile import load as load_near_file
from sinks.read.shardio import DEFAULT_CONCURRENCY, CorruptShard, listed_mismatch, ordered_map, prefetched, shard_records
from stream.commitlog import Commit, encode_commit


@dataclass
class VerifyReport:
    commits: int = 0
    records: int = 0
    bytes: int = 0
    cross_duplicates: int = 0  # repeats of an earlier producer's ids, listed in the dedup file
    faults: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults


async def _fetched(sink: Any, key: str, commit: dict[str, Any] | None, content: Callable[[dict[str, Any]], bool],
                   ) -> tuple[str, dict[str, Any] | None, bytes | None]:
    """(key, commit, small shard's bytes): the commit GET unless ``commit`` is given (proved
    by its ETag), the shard fetched ahead only when its ``content`` is to be checked."""
    if commit is None:
        data = await sink.get(key)
        if data is None:
            return key, None, None
        commit = json.loads(data)
    return key, commit, await prefetched(sink, commit) if content(commit) else None


async def _shard_ids(sink: Any, key: str, commit: dict[str, Any], data: bytes | None,
                     report: VerifyReport) -> list[str] | None:
    """The ids in the shard, or None (with the fault recorded) when it does not match its commit."""
    ids: list[str] = []
    try:
        async for line in shard_records(sink, commit, key, data):
            ids.append(json.loads(line)["id"])
    except CorruptShard as exc:
        report.faults.append(f"{key}: {exc}")
        return None
    except (ValueError, KeyError) as exc:
        report.faults.append(f"{key}: shard {commit['shard']} holds a line that is not a record: {exc}")
        return None
    return ids


def _check_checkpoints(docs: dict[str, bytes | None], commits: dict[str, dict[str, Any]], report: VerifyReport) -> None:
    for key, data in docs.items():
        producer = key.split("/")[1]
        if key.endswith(".ids.json"):
            found, stats = ckpt.decode_ids(data), ckpt.decode_stats(data)
            bad = [k for k, ids in (found or {}).items() if k not in commits or commits[k]["ids"] != ids]
            bad += [k for k, summary in (stats or {}).items() if k not in commits or commits[k].get("stats") != summary]
            if found is None or stats is None or bad:
                report.faults.append(f"checkpoint ids {key} is damaged or disagrees with commits {bad[:3]}: "
                                     "readers skip it; rerun the producer to rewrite it, or delete it")
            continue
        doc = ckpt.decode(data, producer, key)
        if doc is None:
            report.faults.append(f"checkpoint {key} is damaged: readers skip it (slower, not wrong); rerun the "
                                 "producer to rewrite it, or delete it")
            continue
        for entry in doc["commits"]:
            commit = commits.get(entry["key"])
            if commit is None or ckpt.summary(commit) != {k: v for k, v in entry.items() if k != "key"}:
                report.faults.append(f"checkpoint {key} disagrees with {entry['key']}: readers would trust it; "
                                     "delete the checkpoint and rerun the producer")
                break


async def verify(sink, limit: int = DEFAULT_CONCURRENCY, deep: bool = False) -> VerifyReport:  # noqa: ANN001
    """Every commit against its shard. On a store with ETags (S3) and without ``deep``, a
    commit rebuilt from its checkpoint whose bytes' MD5 is the commit's listed ETag is not
    fetched, and a shard whose listed size and ETag are the committed ones is not read
    (the ETag is the MD5 of the stored bytes, so a match proves them the committed bytes);
    whatever does not match, or has no ETag to match, is fetched and checked in full.
    ``deep``: fetch every commit and read every shard (decompress, ids in order, sha256)."""
    report = VerifyReport()
    seen: dict[str, tuple[str, str]] = {}  # id -> (commit key, producer) of its first copy
    try:
        dedup_doc = await load_dedup_file(sink)
    except DedupFileError as exc:
        report.faults.append(str(exc))
        dedup_doc = None
    # (shard, id) of each listed duplicate -> shard of the first copy
    listed = {(d["shard"], d["id"]): d["first_shard"] for d in (dedup_doc or {}).get("duplicates", [])}
    shard_of: dict[str, str] = {}  # commit key -> shard
    referenced: set[str] = set()
    commits: dict[str, dict[str, Any]] = {}
    commit_info = {k: v for k, v in (await sink.list_info(f"{ckpt.COMMITS}/")).items() if k.endswith(".json")}
    shard_info = await sink.list_info("shards/")
    fast = not deep and any(info.etag for info in (*commit_info.values(), *shard_info.values()))
    proved = await _proved_commits(sink, commit_info, limit) if fast else {}

    def content(commit: dict[str, Any]) -> bool:
        """Whether the shard must be read: no listing proves it (deep, no ETags, no match)."""
        return not fast or listed_mismatch(commit, "", shard_info.get(commit["shard"])) is not None

    fetch = lambda k: _fetched(sink, k, proved.get(k), content)  # noqa: E731
    async for key, commit, data in ordered_map(list(commit_info), fetch, limit):
        if commit is None:
            report.faults.append(f"{key}: listed but could not be read")
            continue
        commits[key] = commit
        report.commits += 1
        shard = commit["shard"]
        referenced.add(shard)
        shard_of[key] = shard
        if content(commit):
            ids = await _shard_ids(sink, key, commit, data, report)
            if ids is None:
                continue
            if len(ids) != commit["count"]:
                report.faults.append(f"{key}: shard {shard} holds {len(ids)} records, commit says {commit['count']}")
            if ids != commit["ids"]:
                report.faults.append(f"{key}: record ids in {shard} differ from the commit's ids")
        else:
            ids = commit["ids"]  # the shard's ETag proves its bytes are the ones this commit describes
        _check_ids(key, commit, shard_of, seen, listed, report)
        report.records += len(ids)
        report.bytes += int(commit["bytes"])
    for shard, record_id in listed:
        report.faults.append(f"{DEDUP_KEY} lists id {record_id} in {shard}, which is not a repeat of an earlier "
                             "committed id: rerun `jitsynth dedup URL`")
    await _check_near_file(sink, commits, report)
    report.orphans = [k for k in shard_info if k.endswith(".jsonl.zst") and k not in referenced]
    checkpoint_keys = await sink.list(f"{ckpt.CHECKPOINTS}/")
    docs = {}
    async for key, data in ordered_map(checkpoint_keys, lambda k: _keyed_get(sink, k), limit):
        docs[key] = data
    _check_checkpoints(docs, commits, report)
    return report


async def _proved_commits(sink: Any, commit_info: dict[str, Any], limit: int) -> dict[str, dict[str, Any]]:
    """The commits (with ids and summaries) that checkpoints rebuild byte for byte as stored:
    ``encode_commit`` of the rebuilt commit has the MD5 the listing gives as its ETag."""
    proved = {}
    for key, commit in await ckpt.list_commits(sink, limit, with_ids=True):
        info = commit_info.get(key)
        if info is None or info.etag is None:
            continue
        commit = {"stats": None, **commit}  # a commit without a summary stores stats: null
        try:
            rebuilt = encode_commit(msgspec.convert(commit, Commit))
        except (msgspec.ValidationError, TypeError):
            continue
        if hashlib.md5(rebuilt, usedforsecurity=False).hexdigest() == info.etag:
            proved[key] = commit  # equal to the stored commit, read back
    return proved


def _check_ids(key: str, commit: dict[str, Any], shard_of: dict[str, str], seen: dict[str, tuple[str, str]],
               listed: dict[tuple[str, str], str], report: VerifyReport) -> None:
    """Ids unique across commits, but for cross-producer repeats the dedup file lists exactly."""
    shard = commit["shard"]
    for record_id in commit["ids"]:
        if record_id not in seen:
            seen[record_id] = (key, str(commit["producer"]))
            continue
        first_key, first_producer = seen[record_id]
        first_shard = listed.pop((shard, record_id), None)
        if first_producer == str(commit["producer"]):
            report.faults.append(f"{key}: id {record_id} already committed by the same producer in {first_key}")
        elif first_shard is None:
            report.faults.append(f"{key}: id {record_id} already committed in {first_key} (another producer) "
                                 f"and not listed in {DEDUP_KEY}: run `jitsynth dedup URL`")
        elif first_shard != shard_of[first_key]:
            report.faults.append(f"{key}: {DEDUP_KEY} says id {record_id} first appeared in {first_shard}, "
                                 f"but it is in {shard_of[first_key]}: rerun `jitsynth dedup URL`")
        else:
            report.cross_duplicates += 1


async def _check_near_file(sink: Any, commits: dict[str, dict[str, Any]], report: VerifyReport) -> None:
    """Every record the near-duplicate file names must be committed where it says: readers
    skip its members, so a stale or tampered entry would hide a record."""
    try:
        doc = await load_near_file(sink)
    except DedupFileError as exc:
        report.faults.append(str(exc))
        return
    if not doc:
        return
    committed = {(c["shard"], i) for c in commits.values() for i in c["ids"]}
    for cluster in doc["clusters"]:
        for entry in (cluster["representative"], *cluster["members"]):
            if (entry["shard"], entry["id"]) not in committed:
                report.faults.append(f"{NEAR_KEY} names id {entry['id']} in {entry['shard']}, which no commit holds: "
                                     "rerun `jitsynth dedup URL --near`")


async def _keyed_get(sink: Any, key: str) -> tuple[str, bytes | None]:
    return key, await sink.get(key)
