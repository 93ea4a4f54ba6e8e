"""Fault tests: whatever happens, the committed dataset equals an uninterrupted run's.

Each test runs the real CLI in subprocesses and checks commits and shard bytes against
a reference run made without faults (same arguments). Faults fire on events (a commit
file, metrics, open shard files), never after a sleep; ``--max-rate`` keeps each run in
flight past its fault on any machine, and every test asserts the fault landed mid-run."""

from __future__ import annotations

import random
import resource
import shutil
import signal
from pathlib import Path

import pytest

from tests.conftest import jitsynth, read_local_dataset
from tests.faults import (DUPLICATES, FAILURES, PROCESSED, RECORDS_COMMITTED, commit_path, commits,
                          committed_records, free_port, kill_group, kill_on_random_event, open_shards, reaped,
                          run_until_done,
                          scrape, snapshot, start, wait_event)

COUNT, SHARD = 200, 20
BASE = ["--count", str(COUNT), "--workers", "2", "--shard-records", str(SHARD), "--batch-size", "2"]


def args_for(out: Path, state: Path, *extra: str) -> list[str]:
    return ["run", "--out", str(out), "--state-dir", str(state), *BASE, *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict[str, bytes]]:
    root = tmp_path_factory.mktemp("reference")
    jitsynth(*args_for(root / "ds", root / "st"), check=True)
    commits, shards = snapshot(root / "ds")
    assert sum(c["count"] for c in commits) == COUNT
    return commits, shards


def test_sigkill_at_random_events_then_resume_equals_uninterrupted(reference, tmp_path: Path) -> None:  # noqa: ANN001
    out, state = tmp_path / "ds", tmp_path / "st"
    rng = random.Random(1234)
    kills = []
    for n in range(6):
        # 20 kernels/s: two shards (the margin each kill leaves) take > 1 s after its event.
        kills.append(kill_on_random_event(args_for(out, state, "--max-rate", "20"), out, rng, COUNT, SHARD,
                                          log=tmp_path / f"run-{n}.log"))
        if n == 2:
            shutil.rmtree(state)  # lose the local cache as well once
    run_until_done(args_for(out, state))
    got_commits, got_shards = snapshot(out)
    ref_commits, ref_shards = reference
    assert got_commits == ref_commits, kills
    assert got_shards == ref_shards, kills  # byte-identical
    assert jitsynth("verify", str(out)).returncode == 0


def test_lost_state_directory_writes_no_duplicate(reference, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "ds"
    jitsynth("run", "--out", str(out), "--state-dir", str(tmp_path / "a"), *BASE[:0], "--count", "60",
             *BASE[2:], check=True)
    shutil.rmtree(tmp_path / "a")
    jitsynth(*args_for(out, tmp_path / "b"), check=True)
    commits, shards = snapshot(out)
    _, records = read_local_dataset(out)
    assert len({r["id"] for r in records}) == len(records) == COUNT
    assert [r["id"] for r in records] == [i for c in reference[0] for i in c["ids"]]


def test_sigterm_mid_shard_commits_the_open_shard_and_exits_0(reference, tmp_path: Path) -> None:  # noqa: ANN001
    out, state = tmp_path / "ds", tmp_path / "st"
    args = ["run", "--out", str(out), "--state-dir", str(state), "--count", str(COUNT), "--workers", "2",
            "--shard-records", "80", "--batch-size", "2"]
    port, log = free_port(), tmp_path / "run.log"
    # 40 kernels/s: the 77 records shard 2 still lacks at the signal take > 1.5 s to submit.
    proc = start([*args, "--max-rate", "40", "--metrics-port", str(port)], log=log)

    def shard_2_has_3_records() -> bool:  # commit 0 done; 3 records of the second shard in the open shard
        m = scrape(port)
        committed = m.get(RECORDS_COMMITTED, 0)
        return committed >= 80 and m[PROCESSED] - m[FAILURES] - m[DUPLICATES] - committed >= 3

    with reaped(proc):
        wait_event(proc, shard_2_has_3_records, "commit 0 and 3 records of shard 2", log=log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-2000:]
    done = commits(out)
    assert [c["count"] for c in done][:1] == [80] and len(done) == 2, [c["count"] for c in done]
    assert 3 <= done[1]["count"] < 80  # the open shard, committed early
    run_until_done(args)
    _, records = read_local_dataset(out)
    # Shard boundaries differ from the reference, the record sequence does not.
    assert [r["id"] for r in records] == [i for c in reference[0] for i in c["ids"]]


def test_two_producers_with_one_id_are_fenced(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    # 1 kernel/s: a shard of 10 records takes >= 8 s, so both producers write shard 0 at once.
    common = ["run", "--out", str(out), "--producer", "same", "--count", "10", "--workers", "1",
              "--shard-records", "10", "--batch-size", "2", "--max-rate", "1"]
    a = start([*common, "--state-dir", str(tmp_path / "a"), "--seed-start", "0"], log=tmp_path / "a.log")
    b = start([*common, "--state-dir", str(tmp_path / "b"), "--seed-start", "500000"], log=tmp_path / "b.log")
    commit = commit_path(out, 0, "same")

    def both_writing() -> bool:
        if commit.exists():
            raise AssertionError("precondition: a producer committed shard 0 before the other one started "
                                 "writing it; the producers did not overlap (lower --max-rate)")
        return len(open_shards(out, 0, "same")) == 2

    with reaped(a, b):
        wait_event([a, b], both_writing, "both producers writing shard 0")
        codes = (a.wait(300), b.wait(300))
    logs = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    assert sorted(codes) == [0, 1], logs[-3000:]  # the first commit wins, the other producer is fenced
    assert "another producer is writing with the same id" in logs and "'same'" in logs
    # Whatever was committed is intact: every commit matches its shard.
    assert jitsynth("verify", str(out)).returncode == 0
    assert committed_records(out, "same") == 10


def test_worker_segfault_and_hang_are_recorded_failures(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    env = {"JITSYNTH_FAULT_INJECT": "segv:5,hang:13"}
    proc = jitsynth("run", "--out", str(out), "--state-dir", str(tmp_path / "st"), "--count", "30", "--workers",
                    "2", "--shard-records", "30", "--batch-size", "4", "--task-timeout", "8", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    commits, records = read_local_dataset(out)
    failures = {f["seed"]: f["reason"] for c in commits for f in c["failures"]}
    assert "died" in failures[5] and "-11" in failures[5]  # SIGSEGV
    assert "timed out" in failures[13]
    assert len(records) == 30
    seeds = {r["seed"] for r in records}
    assert 5 not in seeds and 13 not in seeds
    # The other seeds of the failed batches were retried and kept.
    assert {4, 6, 7, 12, 14, 15} <= seeds


def test_the_last_frame_does_not_wait_behind_a_margin_batch(tmp_path: Path) -> None:
    """--count 6 in batches of 4: the shard ends inside batch [4, 8), so its last frame is
    rebuilt from the kept lines. Batch [8, 12), submitted as a margin for duplicates, hangs in
    the only worker (seed 9). The rebuild is done in the producer, not queued in the pool
    behind that batch, where it waited for the task timeout (a batch's time in a real run)."""
    out = tmp_path / "ds"
    proc = jitsynth("run", "--out", str(out), "--state-dir", str(tmp_path / "st"), "--count", "6", "--workers", "1",
                    "--batch-size", "4", "--shard-records", "100", "--task-timeout", "120",
                    env={"JITSYNTH_FAULT_INJECT": "hang:9"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "timed out" not in proc.stderr  # the hung margin batch was never waited for
    commits_, records = read_local_dataset(out)
    assert [(c["seed_start"], c["seed_end"], c["count"]) for c in commits_] == [(0, 6, 6)]
    assert [r["seed"] for r in records] == list(range(6))  # ends inside the batch: the rebuilt path


def test_full_disk_stops_cleanly_and_resumes(reference, tmp_path: Path) -> None:  # noqa: ANN001
    out, state = tmp_path / "ds", tmp_path / "st"
    # Half the stored size of the reference's first 100 records per file: their shard cannot be
    # stored, whatever the generator's record size (a constant went stale when records shrank).
    limit = sum(c["bytes"] for c in reference[0][:5]) // 2

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    args = ["run", "--out", str(out), "--state-dir", str(state), "--count", "100", "--workers", "2",
            "--shard-records", "100", "--batch-size", "2"]
    log = tmp_path / "run.log"
    proc = start(args, log=log, preexec=small_disk)
    assert proc.wait(300) == 1
    text = log.read_text()
    assert "File too large" in text and "rerun the same command" in text and "Traceback" not in text
    assert not list((out / "commits").rglob("*.json")) if (out / "commits").exists() else True
    assert not list(out.rglob("*.tmp-*"))  # the partial shard was removed
    run_until_done(args)
    _, records = read_local_dataset(out)
    assert [r["id"] for r in records] == [i for c in reference[0] for i in c["ids"]][:100]


def test_incomplete_exit_code_after_sigterm(tmp_path: Path) -> None:
    out, log = tmp_path / "ds", tmp_path / "run.log"
    # 10 kernels/s: after commit 0, the other 30 records take > 2 s.
    args = ["run", "--out", str(out), "--state-dir", str(tmp_path / "st"), "--count", "40", "--workers", "1",
            "--shard-records", "10", "--batch-size", "2", "--max-rate", "10"]
    proc = start(args, env={"JITSYNTH_INCOMPLETE_EXIT_CODE": "3"}, log=log)
    with reaped(proc):
        wait_event(proc, lambda: commit_path(out, 0).exists(), "commit 0", log=log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 3, log.read_text()[-2000:]
    assert committed_records(out) < 40
    assert jitsynth("verify", str(out)).returncode == 0


def test_sigkill_between_a_commit_and_its_checkpoint_then_resume(reference, tmp_path: Path) -> None:  # noqa: ANN001
    """Checkpoints every 3 commits (seqs 2, 5, 8): killed once commit 3 exists, the newest
    checkpoint covers less than the commits; the resumed run rewrites the log's checkpoints
    so they cover everything, agree with the commits, and readers see the same records."""
    import json

    out, state = tmp_path / "ds", tmp_path / "st"
    log = tmp_path / "run.log"
    proc = start(args_for(out, state, "--max-rate", "20", "--checkpoint-every", "3"), log=log)
    with reaped(proc):
        wait_event(proc, lambda: commit_path(out, 3).exists(), "commit 3", log=log)
        kill_group(proc)
    checkpoints = sorted((out / "checkpoints" / "0").glob("*[0-9].json"))
    last_seq = max(c["seq"] for c in commits(out))
    assert checkpoints and last_seq < COUNT // SHARD - 1  # killed mid-run
    assert json.loads(checkpoints[-1].read_text())["commits"][-1]["seq"] < last_seq  # commits past the checkpoint
    from sinks.read.reader import iter_records

    before = [r["id"] for r in iter_records(str(out))]  # the checkpoint + the commits after it
    assert before == [i for c in commits(out) for i in c["ids"]]
    run_until_done(args_for(out, state, "--checkpoint-every", "3"))
    assert snapshot(out) == reference
    newest = json.loads(sorted((out / "checkpoints" / "0").glob("*[0-9].json"))[-1].read_text())
    assert [c["seq"] for c in newest["commits"]] == list(range(COUNT // SHARD))
    assert jitsynth("verify", str(out)).returncode == 0  # every checkpoint agrees with the commits
