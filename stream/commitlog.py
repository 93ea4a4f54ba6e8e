"""The commit log: shard and commit keys, the commit record, reading a producer's log.

A shard exists only once its commit exists; commits are the dataset's table of
contents, read in sequence order, and readers never list shards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import msgspec

SHARDS, COMMITS, INDEX = "shards", "commits", "index"


class Failure(msgspec.Struct, frozen=True):
    seed: int
    reason: str


class Commit(msgspec.Struct, frozen=True):
    producer: str
    seq: int
    shard: str
    seed_start: int
    seed_end: int  # half-open: seeds [seed_start, seed_end) were consumed
    count: int
    bytes: int
    raw_bytes: int
    sha256: str
    ids: list[str]
    config_hash: str
    warp_version: str
    created_at: str
    duplicates: int = 0
    failures: list[Failure] = []
    # Derived from the shard's bytes and records (absent in commits written before them):
    # the ETag S3 lists for the shard as this producer uploaded it (``sinks.shard.s3_etag``),
    # which lets ``verify`` check a shard from a LIST instead of a GET, and the summary of
    # its records ``stats`` merges instead of reading them (``stream.recordstats``).
    etag: str | None = None
    stats: dict[str, Any] | None = None

    def same_content(self, other: Commit) -> bool:
        """Equal but for the creation time: a resumed run re-committing identical work (the
        derived fields are left out: the sha256 covers the bytes they derive from, and a
        commit written before them is the same work)."""
        def bare(c: Commit) -> Commit:
            return msgspec.structs.replace(c, created_at="", etag=None, stats=None)

        return bare(self) == bare(other)


def shard_key(producer: str, seq: int, seed_start: int, config_hash: str) -> str:
    """``shards/{producer}/{seq:08d}-{tag}.jsonl.zst``; ``tag`` hashes what determines the
    shard's bytes. A resumed run rewrites an orphan under the same name with the same
    bytes, while a second producer misconfigured with the same id but other seeds writes
    under another name, so it can never overwrite a committed shard before fencing
    stops it (a plain ``{seq}.jsonl.zst`` name could be clobbered in that race)."""
    tag = hashlib.blake2b(f"{producer}/{seq}/{seed_start}/{config_hash}".encode(), digest_size=4).hexdigest()
    return f"{SHARDS}/{producer}/{seq:08d}-{tag}.jsonl.zst"


def commit_key(producer: str, seq: int) -> str:
    return f"{COMMITS}/{producer}/{seq:08d}.json"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def encode_commit(commit: Commit) -> bytes:
    return msgspec.json.format(msgspec.json.encode(commit), indent=1) + b"\n"


def decode_commit(data: bytes) -> Commit:
    return msgspec.json.decode(data, type=Commit)


def seq_of(key: str) -> int:
    return int(key.rsplit("/", 1)[-1].split(".", 1)[0])


async def commit_keys(sink, producer: str | None = None) -> list[str]:  # noqa: ANN001 - any Sink
    """Commit keys of one producer (or all), in (producer, seq) order."""
    prefix = f"{COMMITS}/{producer}/" if producer else f"{COMMITS}/"
    return [k for k in await sink.list(prefix) if k.endswith(".json")]


async def load_commit(sink, key: str) -> Commit:  # noqa: ANN001
    data = await sink.get(key)
    if data is None:
        raise FileNotFoundError(key)
    return decode_commit(data)
