"""Commit-log checkpoints are derived data: deleting or damaging them changes how fast a
dataset opens, never what is read; ``verify`` reports the damage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import pytest

from sinks.checkpoints import list_commits
from sinks.local import LocalSink
from sinks.read.reader import iter_records
from tests.conftest import jitsynth

SHARD = 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two producers, 7 and 5 commits, a checkpoint every 2 commits and at the end."""
    root = tmp_path_factory.mktemp("ckpt")
    out = root / "ds"
    for producer, count in (("0", 28), ("1", 20)):
        jitsynth("run", "--out", str(out), "--state-dir", str(root / f"st{producer}"), "--producer", producer,
                 "--count", str(count), "--shard-records", str(SHARD), "--checkpoint-every", "2", "--workers", "1",
                 "--progress", "off", check=True)
    return out


def _ids(url: Path) -> list[str]:
    return [r["id"] for r in iter_records(str(url))]


def _commit_ids(root: Path) -> list[str]:
    return [i for p in sorted((root / "commits").rglob("*.json")) for i in json.loads(p.read_text())["ids"]]


def _requests(root: Path) -> tuple[int, list]:
    """(GETs a reader makes to list the commits, the commits) on a local sink."""
    sink = LocalSink(root)
    calls = {"get": 0}
    original = sink.get

    async def counting_get(key: str) -> bytes | None:
        calls["get"] += 1
        return await original(key)

    sink.get = counting_get  # type: ignore[method-assign]
    commits = anyio.run(list_commits, sink)
    return calls["get"], commits


def test_producers_write_checkpoints_that_readers_use(dataset: Path) -> None:
    names = sorted(p.name for p in (dataset / "checkpoints" / "0").iterdir())
    # every 2 commits (seqs 1, 3, 5) and the end of the run (6), each with its ids object
    assert names == [f"{s:08d}{ext}" for s in (1, 3, 5, 6) for ext in (".ids.json", ".json")]
    assert sorted(p.name for p in (dataset / "checkpoints" / "1").iterdir())[-1] == "00000004.json"
    gets, commits = _requests(dataset)
    assert gets == 2  # one checkpoint per producer, no commit fetched
    assert [k for k, _ in commits] == sorted(str(p.relative_to(dataset)) for p in (dataset / "commits").rglob("*.json"))
    assert _ids(dataset) == _commit_ids(dataset)
    assert jitsynth("verify", str(dataset)).returncode == 0


@pytest.mark.parametrize("damage", ["delete-all", "delete-newest", "truncate", "tamper", "foreign"])
def test_damaged_checkpoints_read_the_same_records(dataset: Path, tmp_path: Path, damage: str) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    newest = copy / "checkpoints" / "0" / "00000006.json"
    if damage == "delete-all":
        shutil.rmtree(copy / "checkpoints")
    elif damage == "delete-newest":
        newest.unlink()
    elif damage == "truncate":
        newest.write_bytes(newest.read_bytes()[:100])
    elif damage == "tamper":  # valid JSON, a commit's sha256 changed: the digest no longer matches
        doc = json.loads(newest.read_text())
        doc["commits"][2]["sha256"] = "0" * 64
        newest.write_text(json.dumps(doc))
    else:  # producer 1's checkpoint copied over producer 0's
        shutil.copy(copy / "checkpoints" / "1" / "00000004.json", newest)
    gets, commits = _requests(copy)
    assert _ids(copy) == _commit_ids(dataset)  # exactly the same records, in the same order
    assert len(commits) == 12
    if damage != "delete-all":
        proc = jitsynth("verify", str(copy))
        if damage == "delete-newest":
            assert proc.returncode == 0  # an absent checkpoint is not damage
            assert gets == 2 + 1  # the previous checkpoint, then the one commit after it
        else:
            assert proc.returncode == 1 and "checkpoint checkpoints/0/00000006.json is damaged" in proc.stdout
            assert gets == 1 + 1 + 1 + 1  # producer 1's; the damaged one, the previous, and commit 6


def test_checkpoint_that_disagrees_with_its_commit_is_a_verify_fault(dataset: Path, tmp_path: Path) -> None:
    """A checkpoint whose digest is recomputed over altered commits looks whole to readers;
    verify is what catches it."""
    from sinks.checkpoints import digest

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    path = copy / "checkpoints" / "1" / "00000004.json"
    doc = json.loads(path.read_text())
    doc["commits"][0]["count"] += 1
    doc["digest"] = digest(doc["commits"])
    path.write_text(json.dumps(doc))
    proc = jitsynth("verify", str(copy))
    assert proc.returncode == 1
    assert "checkpoint checkpoints/1/00000004.json disagrees with commits/1/00000000.json" in proc.stdout


def test_dedup_reads_ids_objects_and_falls_back_when_one_is_damaged(dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    whole = anyio.run(list_commits, LocalSink(copy), 32, True)
    assert [c["ids"] for _, c in whole] == [json.loads((copy / k).read_text())["ids"] for k, _ in whole]
    ids_object = copy / "checkpoints" / "0" / "00000003.ids.json"
    doc = json.loads(ids_object.read_text())
    first = sorted(doc["ids"])[0]
    doc["ids"][first] = doc["ids"][first][:-1]
    ids_object.write_text(json.dumps(doc))  # digest now wrong: that producer falls back to its commits
    again = anyio.run(list_commits, LocalSink(copy), 32, True)
    assert again == whole
    assert jitsynth("dedup", str(copy)).returncode == 0


def test_log_scale_simulation_counts_requests_and_checks_itself(tmp_path: Path) -> None:
    """The --log-scale tool on a local directory: its dataset verifies clean, and opening it
    takes one checkpoint GET per producer where the baseline fetches every commit."""
    from sinks.url import opened_sink
    from stream.bench.logscale import measure, write_dataset

    template = {"id": "", "python_source": "import warp as wp\n", "kernel_name": "k"}

    async def main() -> dict:
        async with opened_sink(str(tmp_path / "ds")) as sink:
            await write_dataset(sink, 250, 5, template, checkpoint_every=20)
        return await measure(lambda: opened_sink(str(tmp_path / "ds")), 8)

    found = anyio.run(main, backend="asyncio")
    assert found["open_now"]["commits"] == found["open_baseline"]["commits"] == 250
    assert found["open_now"]["gets"] == 5  # one checkpoint per producer (written at seqs 19, 39 and the end, 49)
    assert found["open_baseline"]["gets"] == 250
    assert found["verify_now"]["faults"] == found["verify_baseline"]["faults"] == 0
    # now: summaries from the ids objects (no shard read); a local directory has no ETags, so
    # verify reads every commit and shard as the baseline does; the baseline stats reads every shard
    assert found["stats_now"]["gets"] < 50 and found["stats_baseline"]["gets"] >= 250
    assert found["verify_now"]["gets"] >= 500 and found["verify_baseline"]["gets"] >= 500
