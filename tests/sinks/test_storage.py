"""Unit tests for the dedup index, the shard writer and the local sink."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio
import pytest
import zstandard

from sinks.local import LocalSink
from sinks.shard import ShardWriter, compress_frame, frame_lines
from stream.dedup import DedupIndex


def _id(n: int) -> str:
    return hashlib.blake2b(str(n).encode(), digest_size=16).hexdigest()


def test_bloom_false_positive_never_drops_a_new_id(tmp_path: Path) -> None:
    # A tiny, saturated bloom filter: almost every lookup is a bloom hit.
    index = DedupIndex(tmp_path / "i.sqlite", expected_items=10, false_positive_rate=0.5)
    committed = [_id(i) for i in range(200)]
    index.apply_commit(0, "sha", committed, 200)
    fresh = [_id(i) for i in range(200, 400)]
    assert not any(index.seen(i) for i in fresh)
    assert index.false_positives > 0
    assert all(index.seen(i) for i in committed)


def test_pending_and_persisted_ids(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    index = DedupIndex(path)
    index.add_pending(_id(1))
    assert index.seen(_id(1)) and not index.seen(_id(2))
    index.apply_commit(3, "abc", [_id(1), _id(2)], 2)
    index.close()
    reopened = DedupIndex(path)
    assert reopened.watermark() == (3, "abc") and reopened.committed_total() == 2
    assert not reopened.seen(_id(1))  # bloom not loaded yet: certain "new" is the bloom's call
    assert reopened.load_bloom() == 2
    assert reopened.seen(_id(1)) and reopened.seen(_id(2)) and not reopened.seen(_id(3))
    reopened.drop_pending()
    reopened.reset()
    assert reopened.watermark() is None and not reopened.seen(_id(1))


def test_shard_writer_streams_checksummed_frames_that_read_as_one_stream(tmp_path: Path) -> None:
    lines = [f'{{"id": "{_id(i)}", "pad": "{"x" * (i % 500)}"}}\n'.encode() for i in range(3000)]
    batches = [lines[i:i + 32] for i in range(0, len(lines), 32)]

    async def main() -> None:
        sink = LocalSink(tmp_path / "ds")
        await sink.open()
        upload = await sink.open_shard("shards/p/00000000.jsonl.zst")
        writer = ShardWriter(upload, "shards/p/00000000.jsonl.zst", part_size=4096)
        for batch in batches:
            frame = compress_frame(batch)
            assert frame_lines(frame) == batch
            await writer.add(frame, len(batch), sum(map(len, batch)))
        assert not (tmp_path / "ds/shards/p/00000000.jsonl.zst").exists()  # invisible until commit
        stored = await writer.finish()
        data = (tmp_path / "ds/shards/p/00000000.jsonl.zst").read_bytes()
        assert stored.bytes == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
        assert stored.count == 3000 and stored.raw_bytes == sum(map(len, lines))
        assert zstandard.get_frame_parameters(data).has_checksum
        whole = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(data)
        assert whole == b"".join(lines)
        assert zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read() == whole
        assert await sink.list("shards/") == ["shards/p/00000000.jsonl.zst"]

    anyio.run(main)


def test_local_put_if_absent_is_exclusive_and_atomic(tmp_path: Path) -> None:
    async def main() -> None:
        sink = LocalSink(tmp_path)
        await sink.open()
        assert await sink.put_if_absent("commits/p/1.json", b"first")
        assert not await sink.put_if_absent("commits/p/1.json", b"second")
        assert await sink.get("commits/p/1.json") == b"first"
        assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]

    anyio.run(main)


def test_local_sink_aborts_stale_temp_files(tmp_path: Path) -> None:
    async def main() -> None:
        sink = LocalSink(tmp_path)
        await sink.open()
        upload = await sink.open_shard("shards/p/00000000.jsonl.zst")
        await upload.write(b"partial")
        upload.fh.close()  # a crash: the temp file stays behind
        assert await sink.list("shards/") == []
        assert await sink.abort_stale_uploads("shards/p/") == 1
        assert not list(tmp_path.rglob("*.tmp-*"))

    anyio.run(main)


def test_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    from sinks.base import SinkPermanentError

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SinkPermanentError, match="file"):
        anyio.run(LocalSink(blocker / "ds").open)
