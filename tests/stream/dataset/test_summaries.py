"""Issue 20: ``stats`` merges the summaries commits carry and ``verify`` proves shards and
commits by the ETags one LIST gives, on a real SeaweedFS. Both give exactly what reading
every record gives; a deleted or damaged checkpoint, an old commit without summary or
ETag, and records excluded by the dedup file only make them read more."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import anyio
import pytest

from sinks.url import opened_sink
from stream.bench.logscale import CountingSink
from stream.dataset.stats import collect
from stream.dataset.verify import verify
from tests.conftest import S3Env, jitsynth


def _produce(url: str, state: Path, env: dict[str, str] | None, *flags: str) -> None:
    jitsynth("run", "--out", url, "--workers", "1", "--shard-records", "4", "--checkpoint-every", "2",
             "--state-dir", str(state), "--progress", "off", *flags, env=env, check=True)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two producers whose seeds overlap (producer 1 repeats 8 of producer 0's records),
    then the cross-producer dedup pass: some shards have records the readers skip."""
    root = tmp_path_factory.mktemp("summaries")
    out = root / "ds"
    _produce(str(out), root / "st0", None, "--producer", "0", "--count", "16")
    _produce(str(out), root / "st1", None, "--producer", "1", "--count", "16", "--seed-start", "8")
    jitsynth("dedup", str(out), check=True)
    return out


@pytest.fixture(scope="module")
def on_s3(s3: S3Env, local: Path) -> str:
    """The same dataset, object for object, on SeaweedFS (single-part PUTs, as a producer's
    small shards are)."""
    client = s3.client()
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        client.put_object(Bucket=s3.bucket, Key=f"summaries/{path.relative_to(local).as_posix()}",
                          Body=path.read_bytes())
    return s3.url("summaries")


def _stats(url: str, env: dict[str, str] | None, *flags: str) -> str:
    proc = jitsynth("stats", url, "--json", *flags, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _copy(s3: S3Env, src: str, dst: str) -> str:
    client = s3.client()
    for obj in client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{src}/")["Contents"]:
        client.copy_object(Bucket=s3.bucket, Key=obj["Key"].replace(src, dst, 1),
                           CopySource={"Bucket": s3.bucket, "Key": obj["Key"]})
    return f"s3://{s3.bucket}/{dst}"


class _KeyLog(CountingSink):
    """Counts requests and remembers which keys were fetched."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        super().__init__(inner)
        self.fetched: list[str] = []

    async def get(self, key: str) -> bytes | None:
        self.fetched.append(key)
        return await super().get(key)

    async def stream(self, key: str, chunk_size: int = 1 << 18):  # noqa: ANN201
        self.fetched.append(key)
        async for chunk in super().stream(key, chunk_size):
            yield chunk


def _fetching(url: str, env: dict[str, str], fn):  # noqa: ANN001, ANN202
    """(``fn(sink)``'s result, the keys it fetched) through a fresh sink."""
    async def main():  # noqa: ANN202
        async with opened_sink(url, env["AWS_ENDPOINT_URL"]) as inner:
            sink = _KeyLog(inner)
            return await fn(sink), sink.fetched

    old = dict(os.environ)
    os.environ.update(env)
    try:
        return anyio.run(main, backend="asyncio")
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_commits_carry_a_summary_and_their_shards_etag(local: Path) -> None:
    import hashlib

    from sinks.read.shardio import shard_records
    from stream.recordstats import commit_summary, record_facts

    commit = json.loads((local / "commits" / "0" / "00000000.json").read_text())
    data = (local / commit["shard"]).read_bytes()
    assert commit["etag"] == hashlib.md5(data).hexdigest()  # one PUT: its ETag is the MD5 of the bytes

    async def lines() -> list[bytes]:
        async with opened_sink(str(local)) as sink:
            return [line async for line in shard_records(sink, commit)]

    assert commit["stats"] == commit_summary([record_facts(line) for line in anyio.run(lines)])
    assert commit["stats"]["records"] == commit["count"] == 4


def test_stats_from_summaries_is_byte_identical_to_reading_every_record(local: Path, s3: S3Env, on_s3: str) -> None:
    read = _stats(str(local), None, "--read-records")
    assert json.loads(read)["cross_producer_duplicates"] > 0  # the dedup file excludes records
    assert _stats(str(local), None) == read
    assert _stats(on_s3, s3.env()) == read.replace(str(local), on_s3)
    # The only shards fetched are those with records the dedup file excludes; no commit is fetched.
    found, fetched = _fetching(on_s3, s3.env(), collect)
    excluded = {d["shard"] for d in json.loads((local / "dedup" / "duplicates.json").read_text())["duplicates"]}
    assert found.records == json.loads(read)["records"]
    assert {k for k in fetched if k.startswith("shards/")} == excluded
    assert not [k for k in fetched if k.startswith("commits/")]


@pytest.mark.parametrize("damage", ["delete-checkpoints", "corrupt-summaries", "old-commits"])
def test_stats_and_verify_are_the_same_without_usable_summaries(local: Path, tmp_path: Path, damage: str) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(local, copy)
    read = _stats(str(copy), None, "--read-records")
    if damage == "delete-checkpoints":
        shutil.rmtree(copy / "checkpoints")
    elif damage == "corrupt-summaries":  # a summary changed in every ids object: its digest no longer matches
        for path in (copy / "checkpoints").rglob("*.ids.json"):
            doc = json.loads(path.read_text())
            for summary in doc["stats"].values():
                summary["records"] += 1
            path.write_text(json.dumps(doc))
    else:  # commits as written before summaries and ETags (and no checkpoints of them)
        shutil.rmtree(copy / "checkpoints")
        for path in (copy / "commits").rglob("*.json"):
            doc = json.loads(path.read_text())
            del doc["stats"], doc["etag"]
            path.write_text(json.dumps(doc, indent=1) + "\n")
    assert _stats(str(copy), None) == read
    proc = jitsynth("verify", str(copy))
    assert proc.returncode == (1 if damage == "corrupt-summaries" else 0), proc.stdout[-2000:]
    if damage == "corrupt-summaries":
        assert "is damaged or disagrees with commits" in proc.stdout


def test_fast_verify_fetches_no_shard_and_catches_same_size_damage(s3: S3Env, on_s3: str, local: Path) -> None:
    commits = sorted((local / "commits").rglob("*.json"))
    report, fetched = _fetching(on_s3, s3.env(), verify)
    assert report.ok and report.commits == len(commits), report.faults
    assert report.cross_duplicates > 0
    assert not [k for k in fetched if k.startswith(("shards/", "commits/"))]  # only checkpoints and dedup files
    deep, fetched = _fetching(on_s3, s3.env(), lambda sink: verify(sink, deep=True))
    assert deep.ok and len([k for k in fetched if k.startswith(("shards/", "commits/"))]) == 2 * len(commits)

    url = _copy(s3, "summaries", "summaries-damaged")
    client = s3.client()
    commit = json.loads(commits[1].read_text())
    key = f"summaries-damaged/{commit['shard']}"
    body = client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    client.put_object(Bucket=s3.bucket, Key=key, Body=body[:-1] + bytes([body[-1] ^ 1]))  # same size
    proc = jitsynth("verify", url, env=s3.env())
    assert proc.returncode == 1
    assert f"{commit['shard']} (committed by commits/0/00000001.json) is corrupt: {len(body)} bytes with sha256 " \
           in proc.stdout
    # stats sees the listed ETag differ, reads that shard, and stops on it as the record path does
    proc = jitsynth("stats", url, env=s3.env())
    assert proc.returncode == 1 and commit["shard"] in proc.stderr and "is corrupt" in proc.stderr


def test_fast_verify_catches_a_deleted_commit_and_a_checkpoint_that_lies(s3: S3Env, on_s3: str) -> None:
    client = s3.client()
    url = _copy(s3, "summaries", "summaries-nocommit")
    client.delete_object(Bucket=s3.bucket, Key="summaries-nocommit/commits/0/00000000.json")
    proc = jitsynth("verify", url, env=s3.env())
    assert proc.returncode == 1
    assert "disagrees with commits/0/00000000.json" in proc.stdout
    assert "orphan shard" in proc.stdout  # its shard is no longer committed

    # A checkpoint whose digest is recomputed over an altered commit looks whole to readers:
    # the commit it rebuilds no longer has the listed ETag, so verify fetches and compares.
    from sinks.checkpoints import digest

    url = _copy(s3, "summaries", "summaries-lie")
    key = "summaries-lie/checkpoints/1/00000003.json"  # the newest: the one readers use
    doc = json.loads(client.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    doc["commits"][0]["count"] += 1
    doc["digest"] = digest(doc["commits"])
    client.put_object(Bucket=s3.bucket, Key=key, Body=json.dumps(doc).encode())
    proc = jitsynth("verify", url, env=s3.env())
    assert proc.returncode == 1
    assert "checkpoint checkpoints/1/00000003.json disagrees with commits/1/00000000.json" in proc.stdout


def test_multipart_shard_etag_is_what_s3_lists(s3: S3Env) -> None:
    """A shard uploaded in parts: the ETag the writer computes is the one the LIST gives."""
    from sinks.shard import ShardWriter

    part = 5 << 20  # the S3 minimum part size

    async def main() -> tuple[str, str | None]:
        async with opened_sink(s3.url("multipart"), s3.endpoint) as sink:
            writer = ShardWriter(await sink.open_shard("shards/x.jsonl.zst"), "shards/x.jsonl.zst", part)
            for i in range(3):
                await writer.add(os.urandom(part if i < 2 else 1000), 1, 1)
            stored = await writer.finish()
            return stored.etag, (await sink.list_info("shards/"))["shards/x.jsonl.zst"].etag

    old = dict(os.environ)
    os.environ.update(s3.env())
    try:
        computed, listed = anyio.run(main, backend="asyncio")
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert computed.endswith("-3") and computed == listed


def test_partials_folded_per_batch_merge_into_the_per_record_summary(tmp_path: Path) -> None:
    """Workers fold each batch's facts (recordstats.partial_of) and the producer merges the
    folds (summary_of): for any cut of a shard's records into runs, the same summary as folding
    every record (commit_summary), counters' first-seen order included."""
    import random

    from stream.recordstats import commit_summary, partial_of, record_facts, summary_of
    from synth.gen.config import GeneratorConfig
    from synth.record import encode_line
    from synth.worker import WorkerSettings, build_records, init_worker

    settings = WorkerSettings(GeneratorConfig(), "partials")
    init_worker(settings)
    facts = [record_facts(encode_line(r)) for r in build_records(list(range(40)), settings)
             if not isinstance(r, BaseException)]
    assert len(facts) >= 30
    rng = random.Random(7)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(facts)), rng.randint(0, 6)))
        runs = [facts[a:b] for a, b in zip([0, *cuts], [*cuts, len(facts)], strict=True)]
        merged = summary_of([partial_of(run) for run in runs])
        assert json.dumps(merged) == json.dumps(commit_summary(facts))  # key order too: commit bytes
    assert summary_of([]) == commit_summary([])
    assert summary_of([partial_of(facts[:3]), partial_of([None])]) is None  # an unreadable line: no summary
