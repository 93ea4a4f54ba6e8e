"""The cross-producer dedup file, ``{prefix}/dedup/duplicates.json``, as readers see it.

``jitsynth dedup`` (``stream.dataset.crossdedup``) writes it; committed shards are never
rewritten. It lists, for each record that repeats an id an *earlier* producer already
committed, where the repeat is (``shard``, ``id``) and where the first copy is. Earlier
means commit-key order, the order every reader follows: ``commits/{producer}/{seq:08d}.json``
sorted as strings (so producer ``10`` comes before ``2``). Readers skip the listed
(shard, id) pairs and keep the first copy. A dataset without the file reads as before.

This module only parses the file (the ``sinks`` layer knows the dataset layout, not
how the pass is computed), so ``sinks.read.reader`` can honour it by default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sinks.base import SinkError

DEDUP_KEY = "dedup/duplicates.json"
FORMAT_VERSION = 1

# shard key (as in a commit's ``shard``) -> ids in that shard to skip
Exclusions = Mapping[str, frozenset[str]]


class DedupFileError(SinkError):
    """The dedup file exists but cannot be used (corrupt, unknown version)."""


def parse_versioned(data: bytes, key: str, version: int, entries: str, rerun: str) -> dict[str, Any]:
    """A dedup-family JSON document at ``key``: ``version`` and a list under ``entries``, or
    ``DedupFileError`` saying to ``rerun`` the pass that writes it."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise DedupFileError(f"{key} is not valid JSON ({exc}); rerun `{rerun}`") from None
    if not isinstance(doc, dict) or doc.get("version") != version or not isinstance(doc.get(entries), list):
        raise DedupFileError(f"{key} has an unknown format (want version {version}); "
                             f"rerun `{rerun}` with this jitsynth")
    return doc


def parse(data: bytes) -> dict[str, Any]:
    return parse_versioned(data, DEDUP_KEY, FORMAT_VERSION, "duplicates", "jitsynth dedup URL")


async def load(sink) -> dict[str, Any] | None:  # noqa: ANN001 - any Sink
    """The parsed dedup file, or None when the dataset has none."""
    data = await sink.get(DEDUP_KEY)
    return None if data is None else parse(data)


def exclusions(doc: dict[str, Any] | None) -> dict[str, frozenset[str]]:
    """{shard: ids to skip} from a parsed dedup file (empty for None)."""
    if not doc:
        return {}
    out: dict[str, set[str]] = {}
    for dup in doc["duplicates"]:
        out.setdefault(dup["shard"], set()).add(dup["id"])
    return {shard: frozenset(ids) for shard, ids in out.items()}


async def load_exclusions(sink) -> dict[str, frozenset[str]]:  # noqa: ANN001 - any Sink
    """{shard: ids to skip} for ``sink``'s dataset; empty when ``jitsynth dedup`` never ran."""
    return exclusions(await load(sink))
