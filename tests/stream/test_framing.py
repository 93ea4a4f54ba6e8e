"""Worker-side compression (stream/framing.py): a batch travels as one zstd frame, the
main process appends frames and rebuilds one only where a shard drops records or ends
inside a batch, and shards stay a function of (seeds, config, batch size)."""

from __future__ import annotations

from pathlib import Path

import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.shard import compress_frame, frame_lines
from stream.framing import BatchSplitter, FramedBatch, FramedTask, Kept, failed_batch, rebuild_frame
from synth.worker import Failed, Produced
from tests.conftest import jitsynth, read_local_dataset
from tests.faults import snapshot


def _batch(lines: list[bytes], failed: set[int]) -> FramedBatch:
    outcomes = [Failed(i, "rejected") if i in failed else Produced(i, f"{i:032x}", line) for i, line in enumerate(lines)]
    return FramedTask(lambda seeds: outcomes, level=3)(list(range(len(lines))))


_LINES = st.lists(st.binary(max_size=200).map(lambda b: b.hex().encode() + b"\n"), min_size=1, max_size=24)


@settings(max_examples=150, deadline=None)
@given(lines=_LINES, data=st.data())
def test_segments_hold_exactly_the_kept_lines_and_match_a_fresh_frame(lines: list[bytes], data: st.DataObject) -> None:
    n = len(lines)
    failed = set(data.draw(st.lists(st.integers(0, n - 1), max_size=n)))
    batch = _batch(lines, failed)
    produced = [line for i, line in enumerate(lines) if i not in failed]
    assert frame_lines(batch.frame) == produced
    assert [o.size for o in batch.kept()] == [len(line) for line in produced]
    # The main process keeps some records and cuts the batch at some outcomes (shard rolls).
    keep = data.draw(st.lists(st.booleans(), min_size=len(produced), max_size=len(produced)))
    cuts = set(data.draw(st.lists(st.integers(0, n - 1), max_size=3)))
    splitter = BatchSplitter(batch)
    segments, expected, current, position = [], [], [], 0
    for i, outcome in enumerate(batch.outcomes):
        if isinstance(outcome, Kept):
            if keep[position]:
                splitter.keep(position, outcome.size)
                current.append(produced[position])
            position += 1
        if i in cuts or i == n - 1:
            segments.append(splitter.segment(at_end=i == n - 1))
            expected.append(current)
            current = []
    frames = []
    for segment, want in zip(segments, expected, strict=True):
        if not want:
            assert segment is None
            continue
        frame = segment.frame if segment.frame is not None else rebuild_frame(batch.frame, segment.positions, 3)[0]
        # Whichever path made it (the worker's frame or a rebuilt one), the bytes are those
        # of a fresh frame of the kept lines: what makes a resumed shard byte-identical.
        assert frame == compress_frame(want, 3)
        assert (segment.count, segment.raw_bytes) == (len(want), sum(map(len, want)))
        frames.append(frame)
    stream = b"".join(frames)
    decoded = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(stream) if stream else b""
    assert decoded == b"".join(line for line, k in zip(produced, keep) if k)


def test_the_whole_batch_reuses_the_workers_frame_without_recompressing() -> None:
    lines = [b'{"k": %d}\n' % i for i in range(10)]
    batch = _batch(lines, failed=set())
    splitter = BatchSplitter(batch)
    for position, outcome in enumerate(batch.kept()):
        splitter.keep(position, outcome.size)
    segment = splitter.segment(at_end=True)
    assert segment.frame is batch.frame and segment.count == 10 and segment.raw_bytes == sum(map(len, lines))
    assert failed_batch(7, "worker died").outcomes == (Failed(7, "worker died"),)


def test_shards_are_the_same_bytes_for_any_worker_count_and_after_an_extended_run(tmp_path: Path) -> None:
    # Shards of 20 records over batches of 8 seeds: every shard ends inside a batch, so
    # both frame paths are exercised; the extended run resumes mid-batch (seed ~20).
    base = ["--shard-records", "20", "--batch-size", "8"]

    def run(name: str, workers: int, count: int) -> Path:
        out = tmp_path / name
        jitsynth("run", "--out", str(out / "ds"), "--state-dir", str(out / "st"), "--count", str(count),
                 "--workers", str(workers), *base, check=True)
        return out / "ds"

    one = run("one", 1, 60)
    two = run("two", 2, 60)
    run("ext", 2, 20)
    extended = run("ext", 2, 60)
    commits, shards = snapshot(one)
    assert sum(c["count"] for c in commits) == 60 and any(c["seed_end"] % 8 for c in commits)
    assert snapshot(two) == (commits, shards)
    assert snapshot(extended) == (commits, shards)
    _, records = read_local_dataset(one)
    assert [r["id"] for r in records] == [i for c in commits for i in c["ids"]]
    # A shard is several frames (one per batch segment), read back as one stream.
    for commit in commits:
        assert zstandard.get_frame_parameters(shards[commit["shard"]]).content_size < commit["raw_bytes"]
