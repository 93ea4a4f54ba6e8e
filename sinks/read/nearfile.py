"""The near-duplicate file, ``{prefix}/dedup/near-duplicates.json``, as readers see it.

``jitsynth dedup --near`` (``stream.dataset.neardup``) writes it beside the exact dedup file
(``sinks.read.dedupfile``), in the same family: a versioned JSON document, written with a
plain replace, committed shards never rewritten. It lists clusters of records whose
Python sources are near-duplicates (MinHash LSH over normalised token shingles). Each
cluster has one *representative*, the member met first in commit-key order (the order
every reader follows), and its other *members*. Readers skip the members, as they skip
exact duplicates, and a member's split (``sinks.read.splits``) is its representative's.

This module only parses the file, so ``sinks.read.reader`` and ``sinks.read.splits`` can honour
it without knowing how the pass is computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sinks.read.dedupfile import load_exclusions, parse_versioned

NEAR_KEY = "dedup/near-duplicates.json"
NEAR_FORMAT_VERSION = 1


def parse(data: bytes) -> dict[str, Any]:
    return parse_versioned(data, NEAR_KEY, NEAR_FORMAT_VERSION, "clusters", "jitsynth dedup URL --near")


async def load(sink) -> dict[str, Any] | None:  # noqa: ANN001 - any Sink
    """The parsed near-duplicate file, or None when the pass never ran."""
    data = await sink.get(NEAR_KEY)
    return None if data is None else parse(data)


@dataclass(frozen=True)
class NearClusters:
    """What readers need from the file: the members to skip and each member's representative."""

    skip: Mapping[str, frozenset[str]] = field(default_factory=dict)  # shard -> member ids to skip
    representative: Mapping[str, str] = field(default_factory=dict)  # member id -> representative id

    @property
    def n_members(self) -> int:
        return sum(len(ids) for ids in self.skip.values())


def clusters(doc: dict[str, Any] | None) -> NearClusters:
    if not doc:
        return NearClusters()
    skip: dict[str, set[str]] = {}
    rep: dict[str, str] = {}
    for cluster in doc["clusters"]:
        head = cluster["representative"]["id"]
        for member in cluster["members"]:
            skip.setdefault(member["shard"], set()).add(member["id"])
            rep[member["id"]] = head
    return NearClusters({shard: frozenset(ids) for shard, ids in skip.items()}, rep)


async def load_clusters(sink) -> NearClusters:  # noqa: ANN001 - any Sink
    """The dataset's near-duplicate clusters (empty when `jitsynth dedup --near` never ran)."""
    return clusters(await load(sink))


def merged(*maps: Mapping[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for skip in maps:
        for shard, ids in skip.items():
            out[shard] = out.get(shard, frozenset()) | ids
    return out


async def load_all_exclusions(sink) -> dict[str, frozenset[str]]:  # noqa: ANN001 - any Sink
    """{shard: ids readers skip}: exact cross-producer duplicates and near-duplicate members."""
    return merged(await load_exclusions(sink), (await load_clusters(sink)).skip)


def uncovered(doc: dict[str, Any] | None, commits: list[tuple[str, dict[str, Any]]]) -> int:
    """Records in commits newer than the near pass (not clustered, so their splits may leak
    until `jitsynth dedup --near` runs again); 0 when the pass never ran."""
    if not doc:
        return 0
    seen = doc.get("covered") or {}
    return sum(int(c["count"]) for _key, c in commits
               if str(c["producer"]) not in seen or int(c["seq"]) > int(seen[str(c["producer"])]["seq"]))
