"""``jitsynth verify``: check every commit against its shard.

For each commit: the shard exists with the committed size and sha256, decompresses,
holds ``count`` records whose ids equal the commit's ``ids`` in order. Across commits,
ids are unique, except cross-producer duplicates that ``dedup/duplicates.json`` (written
by ``jitsynth dedup``) lists exactly: a repeat within one producer, a repeat the file
does not list (e.g. committed after the pass ran) and a listed entry that is not a
repeat in the commits are all faults. Shards no commit points to (orphans from a
crash) are listed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from sinks.dedupfile import DEDUP_KEY, DedupFileError
from sinks.dedupfile import load as load_dedup_file
from sinks.reader import commit_dicts, decompress_lines


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


async def verify(sink) -> VerifyReport:  # noqa: ANN001 - any Sink
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
    async for key, commit in commit_dicts(sink):
        report.commits += 1
        shard = commit["shard"]
        referenced.add(shard)
        shard_of[key] = shard
        data = await sink.get(shard)
        if data is None:
            report.faults.append(f"{key}: shard {shard} is missing")
            continue
        if len(data) != commit["bytes"]:
            report.faults.append(f"{key}: shard {shard} has {len(data)} bytes, commit says {commit['bytes']}")
        if hashlib.sha256(data).hexdigest() != commit["sha256"]:
            report.faults.append(f"{key}: shard {shard} sha256 differs from the commit")
        try:
            ids = [json.loads(line)["id"] for line in decompress_lines(data)]
        except Exception as exc:  # noqa: BLE001 - any decode failure is a fault to report
            report.faults.append(f"{key}: shard {shard} does not decode: {exc}")
            continue
        if len(ids) != commit["count"]:
            report.faults.append(f"{key}: shard {shard} holds {len(ids)} records, commit says {commit['count']}")
        if ids != commit["ids"]:
            report.faults.append(f"{key}: record ids in {shard} differ from the commit's ids")
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
        report.records += len(ids)
        report.bytes += len(data)
    for shard, record_id in listed:
        report.faults.append(f"{DEDUP_KEY} lists id {record_id} in {shard}, which is not a repeat of an earlier "
                             "committed id: rerun `jitsynth dedup URL`")
    report.orphans = [k for k in await sink.list("shards/") if k.endswith(".jsonl.zst") and k not in referenced]
    return report
