"""Issue 16 (A): ``ShardedRecords``, the training reader. Over datasets a real producer wrote:
3 ranks x 2 workers read every committed record exactly once (12 shards, and 7 shards
from two producers, which do not divide evenly); a seed gives one order everywhere and
another per epoch; a reader stopped after N records and rebuilt from its ``state_dict``
yields exactly the rest; dedup exclusions, ``where`` and corrupt shards are honoured; a
follower started before a real ``jitsynth run`` ends with exactly its commits."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.read.assign import Consumer, follows, plan
from sinks.read.reader import CorruptShard, iter_records
from sinks.read.training import ShardedRecords
from tests.conftest import ROOT, cli_env, jitsynth, read_local_dataset

LAYOUT = [(rank, worker) for rank in range(3) for worker in range(2)]  # 3 ranks x 2 workers


def produce(url: str, state: Path, count: int, shard_records: int, *flags: str,
            env: dict[str, str] | None = None) -> str:
    """Write ``count`` records in shards of ``shard_records`` with a real ``jitsynth run``."""
    jitsynth("run", "--out", url, "--count", str(count), "--workers", "1", "--shard-records", str(shard_records),
             "--state-dir", str(state), *flags, env=env, check=True)
    return url


@pytest.fixture(scope="module")
def twelve(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train12") / "ds"
    produce(str(out), out.parent / "state", 60, 5)
    return out


@pytest.fixture(scope="module")
def seven(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 shards from two producers (4 + 3, the last one short): 6 consumers cannot split it evenly."""
    out = tmp_path_factory.mktemp("train7") / "ds"
    for producer, count in (("0", 20), ("1", 13)):
        produce(str(out), out.parent / f"state{producer}", count, 5, "--producer", producer)
    return out


def committed_ids(root: Path) -> list[str]:
    commits, _ = read_local_dataset(root)
    return [i for c in sorted(commits, key=lambda c: (c["producer"], c["seq"])) for i in c["ids"]]


def parts(url: str, **kwargs: object) -> dict[tuple[int, int], list[str]]:
    """Each (rank, worker)'s record ids, read by its own reader as a training job would."""
    return {(rank, worker): [r["id"] for r in ShardedRecords(url, rank=rank, world_size=3, worker_id=worker,
                                                               num_workers=2, **kwargs)]
            for rank, worker in LAYOUT}


@pytest.mark.parametrize("name,shards", [("twelve", 12), ("seven", 7)])
@pytest.mark.parametrize("seed", [None, 11])
def test_ranks_and_workers_read_every_record_exactly_once(name: str, shards: int, seed: int | None,
                                                          request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(name)
    commits, _ = read_local_dataset(root)
    assert len(commits) == shards
    got = parts(str(root), seed=seed)
    union = [i for ids in got.values() for i in ids]
    assert Counter(union) == Counter(committed_ids(root))  # each committed record once, nothing else
    assert len(union) == len(set(union))
    sizes = sorted(len(ids) for ids in got.values())
    # Fair: the same number of whole shards each, the leftover records split to one record.
    assert sizes[-1] - sizes[0] <= max(c["count"] for c in commits) + 1, sizes


def test_leftover_shards_are_split_by_record_index() -> None:
    commits = [(f"commits/0/{s:08d}.json", {"producer": "0", "seq": s, "shard": f"s{s}", "count": 10})
               for s in range(7)]
    pieces = {c: plan(commits, Consumer(c // 2, 3, c % 2, 2)) for c in range(6)}
    # 6 whole shards, one each; the 7th shard's 10 records in runs of 1 or 2.
    assert [[(p.key[-13:-5], p.start, p.stop) for p in pieces[c]] for c in range(6)] == [
        [("00000000", 0, 10), ("00000006", 0, 1)], [("00000001", 0, 10), ("00000006", 1, 3)],
        [("00000002", 0, 10), ("00000006", 3, 5)], [("00000003", 0, 10), ("00000006", 5, 6)],
        [("00000004", 0, 10), ("00000006", 6, 8)], [("00000005", 0, 10), ("00000006", 8, 10)]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 12), max_size=20), st.integers(1, 4), st.integers(1, 3),
       st.one_of(st.none(), st.integers(0, 2**32)), st.integers(0, 3))
def test_plans_cover_every_record_once_and_fairly(counts: list[int], world: int, workers: int, seed: int | None,
                                                  epoch: int) -> None:
    commits = [(f"commits/p/{i:08d}.json", {"producer": "p", "seq": i, "shard": f"s{i}", "count": n})
               for i, n in enumerate(counts)]
    consumers = [Consumer(r, world, w, workers) for r in range(world) for w in range(workers)]
    plans = [plan(commits, c, seed, epoch) for c in consumers]
    covered = Counter((p.key, line) for pieces in plans for p in pieces for line in range(p.start, p.stop))
    assert covered == Counter((k, line) for k, c in commits for line in range(c["count"]))
    assert all(covered[k] == 1 for k in covered)
    whole = len(counts) // len(consumers)  # each consumer: that many whole shards, then its run of the rest
    assert all(sum(1 for p in pieces[:whole] if p.start == 0 and p.stop == p.commit["count"]) == whole
               for pieces in plans)
    rest = [sum(p.stop - p.start for p in pieces[whole:]) for pieces in plans]
    assert max(rest) - min(rest) <= 1
    def spans(pieces: list) -> list[tuple[str, int, int]]:
        return [(p.key, p.start, p.stop) for p in pieces]

    assert all(spans(plan(commits, c, seed, epoch)) == spans(p) for c, p in zip(consumers, plans, strict=True))


def _ids_in_subprocess(url: str, seed: int, hashseed: str) -> list[str]:
    code = ("import json, sys; from sinks.read.training import ShardedRecords; "
            "print(json.dumps([r['id'] for r in ShardedRecords(sys.argv[1], rank=1, world_size=3, worker_id=1, "
            "num_workers=2, seed=int(sys.argv[2]))]))")
    proc = subprocess.run([sys.executable, "-c", code, url, str(seed)], capture_output=True, text=True, check=True,
                          env=cli_env({"PYTHONHASHSEED": hashseed}), cwd=ROOT, timeout=300)
    return json.loads(proc.stdout)


def test_a_seed_gives_one_order_everywhere_and_each_epoch_another(seven: Path) -> None:
    url = str(seven)
    first = parts(url, seed=5)
    assert parts(url, seed=5) == first  # the same seed, the same order, twice
    # ...and on another "machine": a fresh interpreter with another hash seed.
    assert _ids_in_subprocess(url, 5, "123") == _ids_in_subprocess(url, 5, "999") == first[(1, 1)]
    unshuffled = parts(url)
    assert all(first[k] != unshuffled[k] for k in first)
    epoch1 = parts(url, seed=5, epoch=1)
    assert epoch1 != first
    assert Counter(i for ids in epoch1.values() for i in ids) == Counter(committed_ids(seven))
    # A pass run to its end moves on to the next epoch by itself.
    reader = ShardedRecords(url, rank=2, world_size=3, worker_id=0, num_workers=2, seed=5)
    assert [r["id"] for r in reader] == first[(2, 0)]
    assert reader.epoch == 1 and [r["id"] for r in reader] == epoch1[(2, 0)]


@pytest.mark.parametrize("seed", [None, 3])
def test_a_restarted_reader_yields_exactly_the_rest(twelve: Path, seed: int | None) -> None:
    url = str(twelve)
    for rank, worker in [(0, 0), (2, 1)]:
        kwargs = dict(rank=rank, world_size=3, worker_id=worker, num_workers=2, seed=seed)
        full = [r["id"] for r in ShardedRecords(url, **kwargs)]
        assert len(full) == 10
        for n in (0, 1, 4, 5, 6, 9, 10):  # within, at and across shard boundaries, and at the end
            reader = ShardedRecords(url, **kwargs)
            it = iter(reader)
            head = [next(it)["id"] for _ in range(n)]
            state = json.loads(json.dumps(reader.state_dict()))  # it travels as JSON in a checkpoint
            it.close()  # the job dies
            again = ShardedRecords(url, **kwargs)
            again.load_state_dict(state)
            assert head + [r["id"] for r in again] == full, (rank, worker, n)
    other = ShardedRecords(url, rank=1, world_size=3, worker_id=0, num_workers=2, seed=seed)
    with pytest.raises(ValueError, match="reader state is for consumer"):
        other.load_state_dict(state)


def test_resume_plans_over_the_commits_of_the_state_not_newer_ones(twelve: Path, tmp_path: Path) -> None:
    root = tmp_path / "grow"
    shutil.copytree(twelve, root)
    kwargs = dict(rank=0, world_size=3, worker_id=1, num_workers=2)
    full = [r["id"] for r in ShardedRecords(str(root), **kwargs)]
    reader = ShardedRecords(str(root), **kwargs)
    it = iter(reader)
    head = [next(it)["id"] for _ in range(3)]
    it.close()
    state = reader.state_dict()
    produce(str(root), tmp_path / "state7", 5, 5, "--producer", "7")  # a new commit changes a fresh epoch's plan
    again = ShardedRecords(str(root), **kwargs)
    again.load_state_dict(state)
    assert head + [r["id"] for r in again] == full


def test_dedup_exclusions_and_where_are_honoured(seven: Path, tmp_path: Path) -> None:
    root = tmp_path / "dups"
    shutil.copytree(seven, root)
    # Producer 2 repeats producer 0's seeds: its records are cross-producer duplicates.
    produce(str(root), tmp_path / "state2", 10, 5, "--producer", "2", "--seed-start", "0")
    jitsynth("dedup", str(root), check=True)
    expected = [r["id"] for r in iter_records(str(root))]
    assert len(expected) < len(committed_ids(root))  # the pass listed duplicates, and readers skip them
    assert Counter(i for ids in parts(str(root)).values() for i in ids) == Counter(expected)
    where = "'loops' in metadata.features"
    want = [r["id"] for r in iter_records(str(root), where=where)]
    assert 0 < len(want) < len(expected)
    assert Counter(i for ids in parts(str(root), where=where).values() for i in ids) == Counter(want)


def test_splits_partition_the_records_as_iter_records_does(seven: Path, tmp_path: Path) -> None:
    root = tmp_path / "near"
    shutil.copytree(seven, root)
    jitsynth("dedup", str(root), "--near", check=True)
    fractions = {"train": 0.5, "validation": 0.25, "test": 0.25}  # every split non-empty on 33 records
    seen: Counter[str] = Counter()
    for split in fractions:
        want = Counter(r["id"] for r in iter_records(str(root), split=split, fractions=fractions))
        got = Counter(i for ids in parts(str(root), split=split, fractions=fractions).values() for i in ids)
        assert got == want and want, split
        seen += got
    assert seen == Counter(r["id"] for r in iter_records(str(root)))  # each kept record in exactly one split
    with pytest.raises(ValueError, match="not one of"):
        list(ShardedRecords(str(root), split="dev"))


def test_a_corrupt_shard_raises_or_is_skipped_and_counted(seven: Path, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    shutil.copytree(seven, root)
    commits, _ = read_local_dataset(root)
    bad = commits[6]  # the leftover shard (3 records): consumers 1, 3 and 5 read one record of it each
    with open(root / bad["shard"], "ab") as f:
        f.write(b"\0")
    with pytest.raises(CorruptShard, match=rf"{bad['shard']} .*`jitsynth verify URL`"):
        list(ShardedRecords(str(root), rank=0, world_size=3, worker_id=1, num_workers=2))
    readers = {k: ShardedRecords(str(root), rank=k[0], world_size=3, worker_id=k[1], num_workers=2,
                                 on_corrupt="skip") for k in LAYOUT}
    got = [r["id"] for reader in readers.values() for r in reader]
    assert Counter(got) == Counter(i for c in commits if c is not bad for i in c["ids"])
    assert sum(reader.skipped.records for reader in readers.values()) == bad["count"]
    assert {s for reader in readers.values() for s in reader.skipped.shards} == {bad["shard"]}


def _iterate_pickled(blob: bytes) -> list[str]:
    return [r["id"] for r in pickle.loads(blob)]


def test_workers_in_spawned_processes_like_a_torch_dataloader(seven: Path) -> None:
    """torch is not installed: DataLoader workers are simulated as it runs them, one spawned
    process per worker, each handed the pickled dataset."""
    readers = [ShardedRecords(str(seven), rank=rank, world_size=3, worker_id=worker, num_workers=2, seed=1,
                              where="seed >= 0") for rank, worker in LAYOUT]
    ctx = multiprocessing.get_context("spawn")
    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT)
    try:
        with ctx.Pool(2) as pool:
            got = pool.map(_iterate_pickled, [pickle.dumps(r) for r in readers])
    finally:
        if env_path is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = env_path
    assert got == [[r["id"] for r in reader] for reader in readers]
    assert Counter(i for ids in got for i in ids) == Counter(committed_ids(seven))


def test_torch_worker_info_is_used_when_torch_is_importable(seven: Path, tmp_path: Path) -> None:
    """Without torch a reader is its rank's only worker; with a ``torch`` on the path whose
    ``get_worker_info()`` says worker 1 of 2 (the documented contract of that function; the
    real torch is not installed here), the reader reads that worker's part."""
    code = ("import json, sys; from sinks.read.training import ShardedRecords; "
            "r = ShardedRecords(sys.argv[1], rank=0, world_size=3); "
            "print(json.dumps([r.consumer().worker, r.consumer().num_workers, [x['id'] for x in r]]))")
    plain = subprocess.run([sys.executable, "-c", code, str(seven)], capture_output=True, text=True, check=True,
                           env=cli_env(), cwd=ROOT, timeout=300)
    worker, workers, ids = json.loads(plain.stdout)
    assert (worker, workers) == (0, 1)
    assert ids == [r["id"] for r in ShardedRecords(str(seven), rank=0, world_size=3)]
    data = tmp_path / "torch" / "utils" / "data"
    data.mkdir(parents=True)
    (tmp_path / "torch" / "__init__.py").write_text("")
    (tmp_path / "torch" / "utils" / "__init__.py").write_text("")
    (data / "__init__.py").write_text("import types\n\ndef get_worker_info():\n"
                                      "    return types.SimpleNamespace(id=1, num_workers=2, seed=0, dataset=None)\n")
    env = cli_env({"PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"})
    proc = subprocess.run([sys.executable, "-c", code, str(seven)], capture_output=True, text=True, check=True,
                          env=env, cwd=ROOT, timeout=300)
    worker, workers, ids = json.loads(proc.stdout)
    assert (worker, workers) == (1, 2)
    assert ids == parts(str(seven))[(0, 1)]
    # A state saved in worker 1 is loaded before the worker is known, and checked when it is.
    saved = ShardedRecords(str(seven), rank=0, world_size=3, worker_id=1, num_workers=2)
    it = iter(saved)
    head = [next(it)["id"] for _ in range(2)]
    it.close()
    resume = ("import json, sys; from sinks.read.training import ShardedRecords; "
              "r = ShardedRecords(sys.argv[1], rank=0, world_size=3); r.load_state_dict(json.loads(sys.argv[2])); "
              "print(json.dumps([x['id'] for x in r]))")
    proc = subprocess.run([sys.executable, "-c", resume, str(seven), json.dumps(saved.state_dict())],
                          capture_output=True, text=True, check=True, env=env, cwd=ROOT, timeout=300)
    assert head + json.loads(proc.stdout) == ids
    proc = subprocess.run([sys.executable, "-c", resume, str(seven), json.dumps({**saved.state_dict(),
                                                                                 "consumer": [0, 3, 0, 2]})],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 1 and "ValueError: reader state is for consumer [0, 3, 0, 2]" in proc.stderr


# -- follow ----------------------------------------------------------------------------------------------
class Follower(threading.Thread):
    """One consumer following a dataset in a thread, as a training worker would."""

    def __init__(self, reader: ShardedRecords, seen: threading.Condition, total: list[int]) -> None:
        super().__init__(daemon=True)
        self.reader, self.seen, self.total = reader, seen, total
        self.ids: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for record in self.reader:
                with self.seen:
                    self.ids.append(record["id"])
                    self.total[0] += 1
                    self.seen.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc


def test_followers_started_on_an_empty_dataset_yield_exactly_what_a_producer_commits(tmp_path: Path) -> None:
    out = tmp_path / "live"
    seen, total = threading.Condition(), [0]
    followers = [Follower(ShardedRecords(str(out), worker_id=w, num_workers=2, follow=True, poll_interval=0.05,
                                         max_poll_interval=0.4), seen, total) for w in range(2)]
    for follower in followers:
        follower.start()
    producer = subprocess.Popen([sys.executable, "-m", "stream.cli.app", "run", "--out", str(out), "--count", "40",
                                 "--workers", "1", "--shard-records", "4", "--state-dir", str(tmp_path / "state")],
                                env=cli_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = producer.communicate(timeout=600)
    assert producer.returncode == 0, err[-2000:]
    commits, _ = read_local_dataset(out)
    expected = [i for c in commits for i in c["ids"]]
    assert len(commits) == 10 and len(expected) == 40
    with seen:  # event: the followers caught up with every commit of the finished producer
        assert seen.wait_for(lambda: total[0] >= len(expected) or any(f.error for f in followers), timeout=300)
    for follower in followers:
        follower.reader.stop()
        follower.join(timeout=60)
        assert not follower.is_alive() and follower.error is None, follower.error
    assert Counter(i for f in followers for i in f.ids) == Counter(expected)  # once each, nothing more
    for w, follower in enumerate(followers):  # each owns its shards by (producer, seq), in commit order
        assert follower.ids == [i for c in commits if follows(c, Consumer(0, 1, w, 2)) for i in c["ids"]]


def test_a_stopped_follower_resumes_from_its_state(twelve: Path) -> None:
    expected = [r["id"] for r in iter_records(str(twelve))]
    kwargs = dict(follow=True, poll_interval=0.05, max_poll_interval=0.2)
    first = ShardedRecords(str(twelve), **kwargs)
    head = []
    for record in first:
        head.append(record["id"])
        if len(head) == 23:  # mid-shard
            first.stop()
    state = json.loads(json.dumps(first.state_dict()))
    assert len(head) == 23
    second = ShardedRecords(str(twelve), **kwargs)
    second.load_state_dict(state)
    rest = []
    for record in second:
        rest.append(record["id"])
        if len(head) + len(rest) == len(expected):
            second.stop()  # caught up: the dataset is complete
    assert head + rest == expected
