"""Streaming shard reads: bounded memory, checked against the commit before the last
record is handed out, many fetches in flight with results in order."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import anyio
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.local import LocalSink
from sinks.read.shardio import CorruptShard, ordered_map, shard_records


def test_ordered_map_keeps_order_and_bounds_concurrency() -> None:
    running, peak = 0, 0

    async def slow(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001 * ((7 * n) % 5))  # finish out of order
        running -= 1
        return n * n

    async def main() -> list[int]:
        return [x async for x in ordered_map(range(50), slow, 8)]

    assert anyio.run(main, backend="asyncio") == [n * n for n in range(50)]
    assert peak == 8


def test_ordered_map_raises_the_first_failure_and_cancels_the_rest() -> None:
    cancelled = []

    async def fn(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        try:
            await asyncio.sleep(10 if n > 3 else 0)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n

    async def main() -> list[int]:
        got = []
        with pytest.raises(ValueError, match="three"):
            async for x in ordered_map(range(100), fn, 5):
                got.append(x)
        return got

    assert anyio.run(main, backend="asyncio") == [0, 1, 2]
    assert cancelled and all(n > 3 for n in cancelled)


def _write_shard(root: Path, lines: list[bytes], frames: int = 1) -> dict:
    path = root / "shards" / "p" / "00000000.jsonl.zst"
    path.parent.mkdir(parents=True, exist_ok=True)
    step = max(1, -(-len(lines) // frames))
    data = b"".join(zstandard.ZstdCompressor().compress(b"".join(lines[i:i + step]))
                    for i in range(0, len(lines), step))
    path.write_bytes(data)
    return {"shard": "shards/p/00000000.jsonl.zst", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


async def _read(sink: LocalSink, commit: dict, prefetch: bool) -> list[bytes]:
    data = await sink.get(commit["shard"]) if prefetch else None
    return [line async for line in shard_records(sink, commit, "commits/p/00000000.json", data)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=60),
       st.integers(1, 4), st.booleans())
def test_lines_come_back_exactly_whatever_the_framing(tmp_path_factory, lines, frames, prefetch) -> None:  # noqa: ANN001
    root = tmp_path_factory.mktemp("shard")
    commit = _write_shard(root, lines, frames)
    assert anyio.run(_read, LocalSink(root), commit, prefetch, backend="asyncio") == lines


@pytest.mark.parametrize("prefetch", [False, True])
@pytest.mark.parametrize("damage", ["appended", "truncated", "flipped"])
def test_a_damaged_shard_raises_before_its_last_record(tmp_path: Path, damage: str, prefetch: bool) -> None:
    lines = [json.dumps({"id": str(i), "pad": "x" * 3000}).encode() + b"\n" for i in range(400)]
    commit = _write_shard(tmp_path, lines)
    path = tmp_path / commit["shard"]
    data = path.read_bytes()
    path.write_bytes({"appended": data + b"\0", "truncated": data[:-7],
                      "flipped": data[:100] + bytes([data[100] ^ 1]) + data[101:]}[damage])
    got: list[bytes] = []

    async def main() -> None:
        sink = LocalSink(tmp_path)
        data = await sink.get(commit["shard"]) if prefetch else None
        async for line in shard_records(sink, commit, "commits/p/00000000.json", data):
            got.append(line)

    with pytest.raises(CorruptShard, match=r"shards/p/00000000.jsonl.zst \(committed by commits/p/00000000.json\)"):
        anyio.run(main, backend="asyncio")
    assert len(got) < len(lines)  # never the whole (damaged) shard as if it were fine
    assert got == lines[:len(got)]


@pytest.mark.parametrize("damage", ["appended", "truncated", "missing"])
def test_a_streamed_shard_of_the_wrong_size_hands_out_no_record(tmp_path: Path, damage: str) -> None:
    """The stored size is checked before the first line of a streamed shard, so the usual
    damage costs a reader nothing it would have to take back."""
    lines = [json.dumps({"id": str(i), "pad": "x" * 3000}).encode() + b"\n" for i in range(400)]
    commit = _write_shard(tmp_path, lines)
    path = tmp_path / commit["shard"]
    data = path.read_bytes()
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(data + b"\0" if damage == "appended" else data[:-7])
    got: list[bytes] = []

    async def main() -> None:
        async for line in shard_records(LocalSink(tmp_path), commit, "commits/p/00000000.json"):
            got.append(line)

    want = "the shard is missing" if damage == "missing" else \
        f"{len(data) + (1 if damage == 'appended' else -7)} bytes, the commit says {len(data)} bytes"
    with pytest.raises(CorruptShard, match=want):
        anyio.run(main, backend="asyncio")
    assert got == []


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_reading_a_shard_of_600_mb_keeps_memory_flat(tmp_path: Path) -> None:
    """A committed shard of 6,000 records x 100 KB (600 MB of JSONL, written as a stream,
    compressing ~30x like real records: lines drawn from a pool of generated-C++-like
    statements), read through the public reader: resident memory may not grow by > 80 MB."""
    import random

    from stream.commitlog import Commit, commit_key, encode_commit

    rng = random.Random(7)
    pool = [f"    var_{rng.randrange(10**4)} = wp::{rng.choice(['add', 'mul', 'sub', 'div'])}(var_{rng.randrange(10**4)}, "
            f"var_{rng.randrange(10**4)});\n" for _ in range(4096)]

    key = "shards/0/00000000-big.jsonl.zst"
    path = tmp_path / key
    path.parent.mkdir(parents=True)
    sha, ids = hashlib.sha256(), []
    raw = 0
    with open(path, "wb") as f:
        writer = zstandard.ZstdCompressor(level=1).stream_writer(f, closefd=False)
        for i in range(6000):
            ids.append(f"{i:08d}")
            line = json.dumps({"id": ids[-1], "cpu": "".join(rng.choices(pool, k=2000))}).encode() + b"\n"
            raw += len(line)
            writer.write(line)
        writer.flush(zstandard.FLUSH_FRAME)
    data_len = path.stat().st_size
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    assert raw > 500 * 2**20
    commit = Commit(producer="0", seq=0, shard=key, seed_start=0, seed_end=6000, count=6000, bytes=data_len,
                    raw_bytes=raw, sha256=sha.hexdigest(), ids=ids, config_hash="x", warp_version="x", created_at="")
    (tmp_path / commit_key("0", 0)).parent.mkdir(parents=True)
    (tmp_path / commit_key("0", 0)).write_bytes(encode_commit(commit))

    from sinks.read.reader import iter_records

    baseline, peak, n = _rss_mb(), 0.0, 0
    for record in iter_records(str(tmp_path)):
        assert record["id"] == ids[n]
        n += 1
        if n % 200 == 0:
            peak = max(peak, _rss_mb())
    assert n == 6000
    assert peak - baseline < 80, (baseline, peak)
