"""Issue 3 end to end on the embedded default: the README's job, read back by pandas and
DuckDB, and checked record by record."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tests.conftest import jitsynth, read_local_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "dataset"
    state = out.parent / "state"
    jitsynth("run", "--out", str(out), "--count", "300", "--workers", "2", "--shard-records", "100",
             "--state-dir", str(state), check=True)
    return out


def test_exactly_300_unique_records_in_3_commits(dataset: Path) -> None:
    commits, records = read_local_dataset(dataset)
    assert [c["seq"] for c in commits] == [0, 1, 2]
    assert [c["count"] for c in commits] == [100, 100, 100]
    assert len(records) == 300
    assert len({r["id"] for r in records}) == 300
    assert sum(len(c["ids"]) for c in commits) == 300
    # Seeds are contiguous across commits and each commit covers its records' seeds.
    assert commits[0]["seed_start"] == 0
    for before, after in zip(commits, commits[1:]):
        assert before["seed_end"] == after["seed_start"]
    shards = sorted(p.relative_to(dataset).as_posix() for p in (dataset / "shards" / "0").iterdir())
    assert shards == sorted(c["shard"] for c in commits)
    assert [s.split("/")[-1][:9] for s in shards] == ["00000000-", "00000001-", "00000002-"]


def test_every_record_is_complete(dataset: Path) -> None:
    _, records = read_local_dataset(dataset)
    for record in records:
        assert record["schema_version"] == 1
        ast.parse(record["python_source"])
        assert f"def {record['kernel_name']}(" in record["python_source"]
        for backend in ("cpu", "cuda"):
            for part in ("forward", "backward", "full"):
                assert record[backend][part].strip(), (record["seed"], backend, part)
            assert f"{record['kernel_name']}_{backend}_kernel_forward" in record[backend]["forward"]
            assert f"{record['kernel_name']}_{backend}_kernel_backward" in record[backend]["backward"]
        assert record["validation"]["codegen"] is True
        meta = record["metadata"]
        assert meta["loc"] > 0 and meta["n_params"] == len(meta["param_types"])
        assert meta["generator"]["config_hash"] and meta["warp_version"] == "1.19.0"


def test_shards_read_with_pandas_and_duckdb(dataset: Path) -> None:
    pandas = pytest.importorskip("pandas")
    duckdb = pytest.importorskip("duckdb")
    shards = sorted((dataset / "shards").rglob("*.jsonl.zst"))
    assert len(shards) == 3
    total = 0
    for shard in shards:
        frame = pandas.read_json(shard, lines=True, compression="zstd")
        assert len(frame) == 100 and {"id", "python_source", "cpu", "cuda"} <= set(frame.columns)
        total += len(frame)
        n = duckdb.sql(f"SELECT count(*) FROM read_json('{shard}', format='newline_delimited')").fetchall()[0][0]
        assert n == 100
    assert total == 300


def test_rerun_is_a_no_op_and_verify_passes(dataset: Path) -> None:
    before = {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()}
    proc = jitsynth("run", "--out", str(dataset), "--count", "300", "--workers", "2", "--shard-records", "100",
                    "--state-dir", str(dataset.parent / "state"), check=True)
    assert "dataset already complete" in proc.stderr
    assert {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()} == before
    verify = jitsynth("verify", str(dataset))
    assert verify.returncode == 0, verify.stdout
    assert "3 commits, 300 records" in verify.stdout


def test_read_streams_committed_records(dataset: Path) -> None:
    proc = jitsynth("read", str(dataset), check=True)
    lines = proc.stdout.splitlines()
    assert len(lines) == 300
    assert len({json.loads(line)["id"] for line in lines}) == 300
    limited = jitsynth("read", str(dataset), "--limit", "7", check=True)
    assert len(limited.stdout.splitlines()) == 7


def test_verify_fails_on_a_shard_with_one_byte_appended(dataset: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    shard = next((copy / "shards" / "0").glob("00000001-*.jsonl.zst"))
    shard.write_bytes(shard.read_bytes() + b"\0")
    proc = jitsynth("verify", str(copy))
    assert proc.returncode == 1
    assert f"{shard.name} (committed by commits/0/00000001.json) is corrupt" in proc.stdout and "FAULT" in proc.stdout
    # The reader API raises one clear error before the damaged shard's last record is handed out.
    from sinks.read.reader import CorruptShard, iter_records

    seen = []
    with pytest.raises(CorruptShard, match=f"{shard.name} .* is corrupt"):
        for record in iter_records(str(copy)):
            seen.append(record["id"])
    committed = json.loads((copy / "commits" / "0" / "00000000.json").read_text())["count"]
    damaged = json.loads((copy / "commits" / "0" / "00000001.json").read_text())["count"]
    assert committed <= len(seen) < committed + damaged
