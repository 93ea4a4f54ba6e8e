"""``jitsynth verify``: check every commit against its shard.

For each commit: the shard exists with the committed size and sha256, decompresses,
holds ``count`` records whose ids equal the commit's ``ids`` in order. Across commits,
ids are unique. Shards no commit points to (orphans from a crash) are listed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from sinks.reader import commit_dicts, decompress_lines


@dataclass
class VerifyReport:
    commits: int = 0
    records: int = 0
    bytes: int = 0
    faults: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults


async def verify(sink) -> VerifyReport:  # noqa: ANN001 - any Sink
    report = VerifyReport()
    seen: dict[str, str] = {}
    referenced: set[str] = set()
    async for key, commit in commit_dicts(sink):
        report.commits += 1
        shard = commit["shard"]
        referenced.add(shard)
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
            if record_id in seen:
                report.faults.append(f"{key}: id {record_id} already committed in {seen[record_id]}")
            seen[record_id] = key
        report.records += len(ids)
        report.bytes += len(data)
    report.orphans = [k for k in await sink.list("shards/") if k.endswith(".jsonl.zst") and k not in referenced]
    return report
