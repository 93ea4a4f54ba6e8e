"""Issue 9: several producers writing one dataset, as pods of a Kubernetes Indexed Job do.

Each producer is a separate ``jitsynth run`` process started with the same command
line and its own ``JOB_COMPLETION_INDEX`` (0, 1, 2), so producer ids and seed
partitions come from the index alone. Distinct seeds almost never give the same
canonical kernel, so to exercise the cross-producer path a fourth, misconfigured
producer (index 3 with ``JITSYNTH_SEED_START`` pointing into another partition) runs
alongside them: its overlapping records are real cross-producer duplicates, which
``jitsynth verify`` must reject until ``jitsynth dedup`` has listed them, and which
``read``/``stats``/``export`` must then skip, keeping the first copy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from stream.config import SEED_STRIDE
from stream.dataset.crossdedup import find_duplicates
from tests.conftest import ROOT, S3Env, cli_env, jitsynth, read_local_dataset

N = 20  # records per producer
RUN = ["run", "--count", str(N), "--workers", "1", "--shard-records", "10", "--log-format", "json"]


def run_producers(out: str, envs: list[dict[str, str]], logs: Path) -> None:
    """Start one ``jitsynth run`` per env at once (same command line), wait for all."""
    procs = []
    for n, env in enumerate(envs):
        log = open(logs / f"producer-{n}.log", "wb")  # noqa: SIM115 - closed below
        procs.append((subprocess.Popen([sys.executable, "-m", "stream.cli.app", *RUN, "--out", out], cwd=ROOT,
                                       env=cli_env(env), stdout=log, stderr=log), log))
    for proc, log in procs:
        rc = proc.wait(timeout=600)
        log.close()
        assert rc == 0, Path(log.name).read_text()[-3000:]


def indexed(i: int, extra: dict[str, str], **more: str) -> dict[str, str]:
    return {**extra, "JOB_COMPLETION_INDEX": str(i), **more}


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def check_read(url: str, env: dict[str, str], expected_ids: set[str]) -> list[dict]:
    read = jitsynth("read", url, env=env, check=True)
    got = records(read.stdout)
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)), "read yields a duplicate id"
    assert len({r["python_source"] for r in got}) == len(got), "read yields a duplicate source"
    assert set(ids) == expected_ids
    return got


def test_three_indexed_producers_and_an_overlapping_one_on_a_local_dataset(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    base = {"XDG_CACHE_HOME": str(tmp_path / "cache")}  # default state dirs, one per producer id
    # Producer 3 re-covers seeds 10.. of partition 0: a deployment mistake dedup must absorb.
    run_producers(str(out), [indexed(i, base) for i in range(3)] + [indexed(3, base, JITSYNTH_SEED_START="10")],
                  tmp_path)

    commits, _ = read_local_dataset(out)
    by_producer: dict[str, list[dict]] = {}
    for c in commits:
        by_producer.setdefault(c["producer"], []).append(c)
    assert sorted(by_producer) == ["0", "1", "2", "3"]
    for i in range(3):  # partitions come from JOB_COMPLETION_INDEX alone
        own = by_producer[str(i)]
        assert own[0]["seed_start"] == i * SEED_STRIDE and sum(c["count"] for c in own) == N
        assert own[-1]["seed_end"] < (i + 1) * SEED_STRIDE
    ids_of = {p: [i for c in cs for i in c["ids"]] for p, cs in by_producer.items()}
    earlier = set(ids_of["0"]) | set(ids_of["1"]) | set(ids_of["2"])
    overlap = set(ids_of["3"]) & earlier
    assert len(earlier) == 3 * N
    # Seeds 10.. of partition 0: usually a partial overlap (producer 3 also has records of
    # its own); all of them if seeds 0-9 happened to yield no records.
    assert 0 < len(overlap) <= N

    before = jitsynth("verify", str(out))
    assert before.returncode == 1 and "not listed in dedup/duplicates.json" in before.stdout

    shards_before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and "dedup" not in p.parts}
    dedup = jitsynth("dedup", str(out), "--json", check=True)
    summary = json.loads(dedup.stdout)
    assert summary["n_duplicates"] == len(overlap) and summary["duplicates_by_producer"] == {"3": len(overlap)}
    assert summary["records"] == 4 * N and summary["unique"] == 4 * N - len(overlap)
    doc = json.loads((out / "dedup" / "duplicates.json").read_bytes())
    assert {d["id"] for d in doc["duplicates"]} == overlap
    assert {(d["producer"], d["first_producer"]) for d in doc["duplicates"]} == {("3", "0")}
    assert {p: p.read_bytes() for p in shards_before} == shards_before  # nothing committed was rewritten

    verify = jitsynth("verify", str(out))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"{len(overlap)} cross-producer duplicates" in verify.stdout

    got = check_read(str(out), {}, earlier | set(ids_of["3"]))
    assert len(got) == 4 * N - len(overlap)
    assert sum(r["producer"] != "3" for r in got) == 3 * N  # the three indexed producers: 3x one producer
    assert {r["id"] for r in got if r["producer"] == "3"} == set(ids_of["3"]) - overlap  # first copies kept

    stats = json.loads(jitsynth("stats", str(out), "--json", check=True).stdout)
    assert stats["records"] == len(got) and stats["cross_producer_duplicates"] == len(overlap)
    jitsynth("export", str(out), "--to", str(tmp_path / "export"), "--backend", "cpu", check=True)
    assert {p.stem for p in (tmp_path / "export" / "cpu").glob("*.json")} == {r["id"] for r in got}

    # A stale or tampered list is a fault, not a silent filter.
    bogus = dict(doc["duplicates"][0], id=ids_of["1"][0], shard=by_producer["1"][0]["shard"])
    (out / "dedup" / "duplicates.json").write_text(json.dumps({**doc, "duplicates": doc["duplicates"] + [bogus]}))
    tampered = jitsynth("verify", str(out))
    assert tampered.returncode == 1 and "which is not a repeat" in tampered.stdout
    rerun = jitsynth("dedup", str(out), "--json", check=True)  # the pass rebuilds the list from the commits
    assert json.loads(rerun.stdout)["n_duplicates"] == len(overlap)
    assert jitsynth("verify", str(out)).returncode == 0


def test_three_indexed_producers_and_a_replica_on_one_s3_bucket(s3: S3Env, tmp_path: Path) -> None:
    prefix = "scale-out"
    url = s3.url(prefix)
    base = {**s3.env(), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    # Producer 3 is a replica of partition 1 (same seeds): every record of it is a duplicate.
    run_producers(url, [indexed(i, base) for i in range(3)] + [indexed(3, base, JITSYNTH_SEED_START=str(SEED_STRIDE))],
                  tmp_path)

    client = s3.client()

    def objects() -> dict[str, str]:
        listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{prefix}/")["Contents"]
        return {o["Key"]: o["ETag"] for o in listed if "/dedup/" not in o["Key"]}

    stored = objects()
    commits = [json.loads(client.get_object(Bucket=s3.bucket, Key=k)["Body"].read())
               for k in sorted(stored) if k.startswith(f"{prefix}/commits/")]
    assert sorted({c["producer"] for c in commits}) == ["0", "1", "2", "3"]
    ids_of: dict[str, set[str]] = {}
    for c in commits:
        ids_of.setdefault(c["producer"], set()).update(c["ids"])
    assert ids_of["3"] == ids_of["1"] and len(ids_of["0"] | ids_of["1"] | ids_of["2"]) == 3 * N

    assert jitsynth("verify", url, env=base).returncode == 1
    summary = json.loads(jitsynth("dedup", url, "--json", env=base, check=True).stdout)
    assert summary["n_duplicates"] == N and summary["duplicates_by_producer"] == {"3": N}
    doc = json.loads(client.get_object(Bucket=s3.bucket, Key=f"{prefix}/dedup/duplicates.json")["Body"].read())
    assert {(d["producer"], d["first_producer"]) for d in doc["duplicates"]} == {("3", "1")}
    assert objects() == stored  # shards and commits untouched (same keys, same ETags)

    verify = jitsynth("verify", url, env=base)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    got = check_read(url, base, ids_of["0"] | ids_of["1"] | ids_of["2"])
    assert len(got) == 3 * N  # three producers' worth: the replica adds nothing
    assert {r["producer"] for r in got} == {"0", "1", "2"}


def test_find_duplicates_order_and_same_producer_repeats() -> None:
    def commit(producer: str, seq: int, ids: list[str]) -> dict:
        return {"producer": producer, "seq": seq, "shard": f"shards/{producer}/{seq:08d}-x.jsonl.zst",
                "sha256": "0" * 64, "ids": ids}

    a, b, c, d = ("%032x" % n for n in (1, 2, 3, 4))
    # commit-key order: producer "10" sorts before "2"
    result = find_duplicates([commit("0", 0, [a, b]), commit("0", 1, [c, a]), commit("10", 0, [b, d]),
                              commit("2", 0, [d, c])])
    assert [(x["id"], x["producer"], x["first_producer"]) for x in result.duplicates] == [
        (b, "10", "0"), (d, "2", "10"), (c, "2", "0")]
    assert [(x["id"], x["seq"], x["first_seq"]) for x in result.same_producer] == [(a, 1, 0)]
    assert result.records == 8 and result.unique == 4 and result.covered["0"]["seq"] == 1
