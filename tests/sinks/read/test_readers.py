"""Issue 8, reading: ``jitsynth read`` (with ``--where``), ``iter_records``, and the README's
recipes for HF datasets, pandas, DuckDB and fsspec reading the shards in place, on a
local directory and on S3 (real SeaweedFS). Commits drive reading: an orphan shard
planted next to the committed ones must never be counted."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sinks.read.reader import committed_shards, iter_records
from tests.conftest import S3Env, jitsynth, read_local_dataset


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("readers") / "ds"
    jitsynth("run", "--out", str(out), "--count", "45", "--workers", "2", "--shard-records", "20",
             "--state-dir", str(out.parent / "state"), check=True)
    # An orphan shard (as a producer killed before its commit leaves): invisible to readers.
    first = sorted((out / "shards" / "0").iterdir())[0]
    shutil.copy(first, first.with_name("00000099-0badc0de.jsonl.zst"))
    return out


@pytest.fixture(scope="module")
def local_records(local: Path) -> tuple[list[dict], list[dict]]:
    return read_local_dataset(local)


@pytest.fixture(scope="module")
def on_s3(s3: S3Env, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = s3.url("readers")
    jitsynth("run", "--out", url, "--count", "30", "--workers", "2", "--shard-records", "12",
             "--state-dir", str(tmp_path_factory.mktemp("s3state")), env=s3.env(), check=True)
    return url


@pytest.fixture
def s3_env(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    yield s3.env()


def _storage_options(env: dict[str, str]) -> dict:
    return {"key": env["AWS_ACCESS_KEY_ID"], "secret": env["AWS_SECRET_ACCESS_KEY"],
            "client_kwargs": {"endpoint_url": env["AWS_ENDPOINT_URL"]}}


# -- jitsynth read / iter_records --------------------------------------------------------------------
def test_read_line_count_equals_the_commits_total(local: Path, local_records: tuple) -> None:
    commits, records = local_records
    assert [c["count"] for c in commits] == [20, 20, 5]
    proc = jitsynth("read", str(local), check=True)
    lines = proc.stdout.splitlines()
    assert len(lines) == sum(c["count"] for c in commits) == 45
    assert [json.loads(line)["id"] for line in lines] == [i for c in commits for i in c["ids"]]
    # A glob over shards/ would see the orphan too: that is why readers follow commits.
    assert len(list((local / "shards").rglob("*.jsonl.zst"))) == 4
    assert len(jitsynth("read", str(local), "--limit", "7", check=True).stdout.splitlines()) == 7


def test_read_where_filters_like_python(local: Path, local_records: tuple) -> None:
    _, records = local_records
    locs = sorted(r["metadata"]["loc"] for r in records)
    median = locs[len(locs) // 2]
    expected = [r["id"] for r in records if r["metadata"]["loc"] > median and "loops" in r["metadata"]["features"]]
    assert 0 < len(expected) < len(records)
    proc = jitsynth("read", str(local), "--where", f"metadata.loc > {median} and 'loops' in metadata.features",
                    check=True)
    assert [json.loads(line)["id"] for line in proc.stdout.splitlines()] == expected
    proc = jitsynth("read", str(local), "--where", "len(cuda.forward) > len(cpu.forward) and seed % 2 == 0",
                    "--limit", "3", check=True)
    want = [r["id"] for r in records if len(r["cuda"]["forward"]) > len(r["cpu"]["forward"]) and r["seed"] % 2 == 0]
    assert [json.loads(line)["id"] for line in proc.stdout.splitlines()] == want[:3]
    bad = jitsynth("read", str(local), "--where", "__import__('os').system('true')")
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "--where" in bad.stderr


def test_iter_records_and_committed_shards(local: Path, local_records: tuple) -> None:
    commits, records = local_records
    assert [r["id"] for r in iter_records(str(local))] == [r["id"] for r in records]
    with_atomics = list(iter_records(str(local), where="'atomics' in metadata.features"))
    assert [r["id"] for r in with_atomics] == [r["id"] for r in records if "atomics" in r["metadata"]["features"]]
    first = next(iter(iter_records(str(local))))  # stopping early closes the reader cleanly
    assert first["id"] == records[0]["id"]
    assert committed_shards(str(local)) == [str(local / c["shard"]) for c in commits]


# -- the README recipes, local -----------------------------------------------------------------------
def test_hf_datasets_reads_the_committed_shards(local: Path, local_records: tuple, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    commits, records = local_records
    ds = datasets.load_dataset("json", data_files=committed_shards(str(local)), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == sum(c["count"] for c in commits)
    assert ds["id"] == [r["id"] for r in records]
    assert ds[0]["cpu"]["forward"] == records[0]["cpu"]["forward"]


def test_pandas_and_duckdb_read_the_committed_shards(local: Path, local_records: tuple) -> None:
    import duckdb
    import pandas

    commits, _ = local_records
    shards = committed_shards(str(local))
    frame = pandas.concat(pandas.read_json(f, lines=True, compression="zstd") for f in shards)
    assert len(frame) == 45 and list(frame["id"]) == [i for c in commits for i in c["ids"]]
    assert frame["metadata"].map(lambda m: m["loc"]).gt(0).all()
    n, loc = duckdb.sql(f"SELECT count(*), sum(metadata.loc) FROM read_json({shards!r})").fetchall()[0]
    assert n == 45 and loc == sum(frame["metadata"].map(lambda m: m["loc"]))


def test_fsspec_reads_shards_in_place(local: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    total = 0
    for commit_path in sorted((local / "commits").rglob("*.json")):
        commit = json.loads(commit_path.read_text())
        with fsspec.open(str(local / commit["shard"]), "rt", compression="zstd") as fh:
            ids = [json.loads(line)["id"] for line in fh]
        assert ids == commit["ids"]
        total += len(ids)
    assert total == 45


# -- the same recipes against S3 -----------------------------------------------------------------------
def test_read_from_s3_matches_the_commits(s3: S3Env, on_s3: str, s3_env: dict) -> None:
    urls = committed_shards(on_s3)
    assert len(urls) == 3 and all(u.startswith(f"s3://{s3.bucket}/readers/shards/0/") for u in urls)
    proc = jitsynth("read", on_s3, env=s3.env(), check=True)
    assert len(proc.stdout.splitlines()) == 30
    proc = jitsynth("read", on_s3, "--where", "validation.codegen == true", "--limit", "4", env=s3.env(), check=True)
    assert len(proc.stdout.splitlines()) == 4


def test_hf_pandas_duckdb_fsspec_read_from_s3(on_s3: str, s3_env: dict, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    s3fs = pytest.importorskip("s3fs")
    import duckdb
    import pandas

    opts = _storage_options(s3_env)
    shards = committed_shards(on_s3)
    # (datasets adds its own keys to the dict it is given: hand it a fresh one)
    ds = datasets.load_dataset("json", data_files=shards, split="train", storage_options=_storage_options(s3_env),
                               cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 30
    frame = pandas.concat(pandas.read_json(u, lines=True, compression="zstd", storage_options=opts) for u in shards)
    assert len(frame) == 30 and frame["id"].is_unique
    con = duckdb.connect()
    con.register_filesystem(s3fs.S3FileSystem(**opts))
    assert con.sql(f"SELECT count(*) FROM read_json({shards!r})").fetchall()[0][0] == 30
    # fsspec alone, no jitsynth installed: follow the commits, open each shard in place.
    fs = s3fs.S3FileSystem(**opts)
    bucket_prefix = on_s3.removeprefix("s3://")
    total = 0
    for key in sorted(fs.glob(f"{bucket_prefix}/commits/*/*.json")):
        commit = json.loads(fs.cat(key))
        with fs.open(f"{bucket_prefix}/{commit['shard']}", "rt", compression="zstd") as fh:
            total += sum(1 for _ in fh)
    assert total == 30


def test_verify_fails_on_an_s3_shard_with_one_byte_appended(s3: S3Env, on_s3: str) -> None:
    client = s3.client()
    src = on_s3.removeprefix(f"s3://{s3.bucket}/")
    dst = "readers-tampered"
    for obj in client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{src}/")["Contents"]:
        client.copy_object(Bucket=s3.bucket, Key=obj["Key"].replace(src, dst, 1),
                           CopySource={"Bucket": s3.bucket, "Key": obj["Key"]})
    url = f"s3://{s3.bucket}/{dst}"
    assert jitsynth("verify", url, env=s3.env()).returncode == 0
    commit = json.loads(client.get_object(Bucket=s3.bucket, Key=f"{dst}/commits/0/00000001.json")["Body"].read())
    key = f"{dst}/{commit['shard']}"
    body = client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    client.put_object(Bucket=s3.bucket, Key=key, Body=body + b"\0")
    proc = jitsynth("verify", url, env=s3.env())
    assert proc.returncode == 1
    assert f"{commit['shard']} (committed by commits/0/00000001.json) is corrupt: {len(body) + 1} bytes" in proc.stdout
    assert f"the commit says {len(body)} bytes, {commit['sha256']}" in proc.stdout
    # Readers stop with one line naming the shard and the repair, never a zstd traceback.
    for command in (("read", url), ("stats", url)):
        proc = jitsynth(*command, env=s3.env())
        assert proc.returncode == 1, command
        assert proc.stderr.startswith("jitsynth: error: shard ") and "Traceback" not in proc.stderr, proc.stderr
        assert commit["shard"] in proc.stderr and "restore it from a copy" in proc.stderr


def test_card_on_s3_is_stored_next_to_the_data(s3: S3Env, on_s3: str) -> None:
    proc = jitsynth("card", on_s3, "--no-plots", env=s3.env(), check=True)
    assert "card for 30 records in 3 shards" in proc.stdout
    prefix = on_s3.removeprefix(f"s3://{s3.bucket}/")
    text = s3.client().get_object(Bucket=s3.bucket, Key=f"{prefix}/README.md")["Body"].read().decode()
    assert text.startswith("---\n") and "size_categories:\n- n<1K" in text
    summary = json.loads(s3.client().get_object(Bucket=s3.bucket, Key=f"{prefix}/dataset.json")["Body"].read())
    assert summary["records"] == 30 and summary["commits"] == 3
