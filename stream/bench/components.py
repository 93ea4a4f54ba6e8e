"""Bench parts that need no pipeline: dedup index at scale, compression choices."""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import zstandard


def dedup_at_scale(n_ids: int, batch: int = 10_000, lookups: int = 200_000) -> dict[str, Any]:
    from stream.dedup import DedupIndex

    rng = random.Random(3)
    proc = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="jitsynth-dedup-") as tmp:
        rss0 = proc.memory_info().rss
        index = DedupIndex(Path(tmp) / "i.sqlite", expected_items=max(n_ids, 1000))
        t0 = time.perf_counter()
        for seq, start in enumerate(range(0, n_ids, batch)):
            ids = [rng.getrandbits(128).to_bytes(16, "big").hex() for _ in range(min(batch, n_ids - start))]
            index.apply_commit(seq, "x", ids, start + len(ids))
        build_s = time.perf_counter() - t0
        rss_built = proc.memory_info().rss
        # Re-open as a resumed producer does: bloom filled from SQLite.
        index.close()
        index = DedupIndex(Path(tmp) / "i.sqlite", expected_items=max(n_ids, 1000))
        t0 = time.perf_counter()
        index.load_bloom()
        load_s = time.perf_counter() - t0
        rss_loaded = proc.memory_info().rss
        misses = [rng.getrandbits(128).to_bytes(16, "big").hex() for _ in range(lookups)]
        hits = [row[0].hex() for row in index.db.execute(
            "SELECT id FROM ids ORDER BY random() LIMIT ?", (min(lookups, n_ids),))]
        t0 = time.perf_counter()
        new = sum(not index.seen(i) for i in misses)
        miss_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        dup = sum(index.seen(i) for i in hits)
        hit_s = time.perf_counter() - t0
        disk = sum(f.stat().st_size for f in Path(tmp).iterdir())
        index.close()
    return {
        "ids": n_ids, "build_s": round(build_s, 1), "bloom_load_s": round(load_s, 1),
        "rss_growth_mb_after_build": round((rss_built - rss0) / 2**20, 1),
        "rss_growth_mb_after_reload": round((rss_loaded - rss0) / 2**20, 1),
        "bloom_mb": round(index.bloom.size_in_bits / 8 / 2**20, 1), "sqlite_disk_mb": round(disk / 2**20, 1),
        "new_id_lookups_per_s": round(lookups / miss_s), "duplicate_lookups_per_s": round(len(hits) / hit_s),
        "false_positives": index.false_positives, "correct": new == lookups and dup == len(hits),
    }


def compression_choices(lines: list[bytes], frame_records: tuple[int, ...] = (8, 32, 64)) -> list[dict[str, Any]]:
    """Ratio and single-core speed of zstd settings on real records: one frame per shard,
    and frames of N records (what workers make, N = --batch-size) at levels 9 and 11."""
    data = b"".join(lines)
    results = []
    sample = lines[: max(len(lines) // 2, 1)]
    dictionary = zstandard.train_dictionary(112_640, sample) if len(sample) > 20 else None
    options: list[tuple[str, zstandard.ZstdCompressor]] = [
        (f"level {lvl}", zstandard.ZstdCompressor(level=lvl, write_checksum=True)) for lvl in (1, 3, 6, 9, 12, 19)]
    for lvl in (3, 9):
        params = zstandard.ZstdCompressionParameters.from_level(lvl, enable_ldm=True, window_log=27,
                                                                write_checksum=True)
        options.append((f"level {lvl} long=27", zstandard.ZstdCompressor(compression_params=params)))
    if dictionary is not None:
        options.append(("level 3 + dictionary (per record frames)", zstandard.ZstdCompressor(
            level=3, dict_data=dictionary, write_checksum=True)))
    options += [(f"level {lvl}, frames of {n}", zstandard.ZstdCompressor(level=lvl, write_checksum=True))
                for n in frame_records for lvl in (9, 11)]
    for name, compressor in options:
        t0 = time.perf_counter()
        if "per record" in name:
            size = sum(len(compressor.compress(line)) for line in lines)
        elif "frames of" in name:
            n = int(name.rsplit(" ", 1)[1])
            size = sum(len(compressor.compress(b"".join(lines[i:i + n]))) for i in range(0, len(lines), n))
        else:
            size = len(compressor.compress(data))
        seconds = time.perf_counter() - t0
        results.append({"setting": name, "ratio": round(len(data) / size, 2),
                        "bytes_per_record": round(size / len(lines)), "mb_per_s": round(len(data) / 2**20 / seconds, 1)})
    return results


def cpu_count() -> int:
    return os.cpu_count() or 1


async def shard_memory(sink, megabytes: int) -> dict[str, Any]:  # noqa: ANN001 - any Sink
    """Stream ``megabytes`` of JSONL into one shard and watch the main process's RSS:
    with multipart streaming it stays flat however big the shard is."""
    from sinks.shard import ShardWriter, compress_frame

    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    peak = rss0
    key = "shards/bench/00000000-memtest.jsonl.zst"
    writer = ShardWriter(await sink.open_shard(key), key, sink.min_part_size)
    rng = random.Random(5)
    written = 0
    while written < megabytes << 20:
        # Hex of random bytes compresses ~2x: enough stored bytes to need many parts.
        line = b'{"blob": "' + rng.getrandbits(8 * 4096).to_bytes(4096, "big").hex().encode() + b'"}\n'
        await writer.add(compress_frame([line]), 1, len(line))
        written += len(line)
        peak = max(peak, proc.memory_info().rss) if writer.count % 256 == 0 else peak
    stored = await writer.finish()
    return {"raw_mb": round(written / 2**20), "stored_mb": round(stored.bytes / 2**20, 1),
            "part_mb": sink.min_part_size >> 20, "rss_growth_mb": round((peak - rss0) / 2**20, 1)}


def _noop_init() -> None:
    pass


def _echo(seeds: list[int]) -> list[int]:
    return seeds


def _failed(seed: int, reason: str) -> tuple[int, str]:
    return seed, reason


def measure_idle_main(workers: int, seconds: float = 3.0) -> float:
    """CPU ms per second the producer's main process spends with its pool up and nothing to
    do (pebble's manager threads and the event loop ticking): the part of its cost that
    grows with time, not with records. The scale model charges it once per producer."""
    import anyio

    from stream.pool import WorkerPool

    pool = WorkerPool(workers, _echo, _failed, _noop_init, (), timeout=60, max_tasks=1000)

    async def idle() -> float:
        await pool.warm_up(workers)
        await anyio.sleep(0.5)  # let the warm-up's results and acks drain
        cpu0, t0 = time.process_time(), time.monotonic()
        await anyio.sleep(seconds)
        return 1000 * (time.process_time() - cpu0) / (time.monotonic() - t0)

    try:
        return round(anyio.run(idle, backend="asyncio"), 3)
    finally:
        pool.close(now=True)
