"""Fault tests: whatever happens, the committed dataset equals an uninterrupted run's.

Each test runs the real CLI in subprocesses and checks commits and shard bytes against
a reference run made without faults (same arguments)."""

from __future__ import annotations

import json
import random
import resource
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import jitsynth, read_local_dataset
from tests.faults import kill_group, run_until_done, snapshot, start, wait_for

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


def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(reference, tmp_path: Path) -> None:  # noqa: ANN001
    out, state = tmp_path / "ds", tmp_path / "st"
    rng = random.Random(1234)
    kills = attempts = 0
    while kills < 6 and attempts < 40:
        attempts += 1
        proc = start(args_for(out, state), log=tmp_path / "run.log")
        time.sleep(rng.uniform(0.5, 4.0))
        if proc.poll() is not None:
            # Finished before the kill (a fast machine): start the dataset over, so every
            # counted kill lands in a run that still had work to do.
            shutil.rmtree(out, ignore_errors=True)
            continue
        kill_group(proc)
        kills += 1
        if kills == 3:
            shutil.rmtree(state)  # lose the local cache as well once
    run_until_done(args_for(out, state))
    assert kills >= 5
    commits, shards = snapshot(out)
    ref_commits, ref_shards = reference
    assert commits == ref_commits
    assert shards == ref_shards  # byte-identical
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
    proc = start(args, log=tmp_path / "run.log")
    assert wait_for(lambda: any((out / "commits").rglob("*.json")) if (out / "commits").exists() else False, 120,
                    interval=0.02)
    time.sleep(0.4)  # a few records into the second shard (80 records take > 1 s on 2 workers)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, (tmp_path / "run.log").read_text()[-2000:]
    commits = [json.loads(p.read_bytes()) for p in sorted((out / "commits").rglob("*.json"))]
    assert len(commits) >= 2 and commits[-1]["count"] < 80  # the open shard, committed early
    run_until_done(args)
    _, records = read_local_dataset(out)
    # Shard boundaries differ from the reference, the record sequence does not.
    assert [r["id"] for r in records] == [i for c in reference[0] for i in c["ids"]]


def test_two_producers_with_one_id_are_fenced(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    common = ["run", "--out", str(out), "--producer", "same", "--count", "80", "--workers", "1",
              "--shard-records", "10", "--batch-size", "2"]
    a = start([*common, "--state-dir", str(tmp_path / "a"), "--seed-start", "0"], log=tmp_path / "a.log")
    b = start([*common, "--state-dir", str(tmp_path / "b"), "--seed-start", "500000"], log=tmp_path / "b.log")
    codes = (a.wait(300), b.wait(300))
    logs = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
    assert 1 in codes, logs[-3000:]
    assert "another producer is writing with the same id" in logs and "'same'" in logs
    # Whatever was committed is intact: every commit matches its shard.
    assert jitsynth("verify", str(out)).returncode == 0


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


def test_full_disk_stops_cleanly_and_resumes(reference, tmp_path: Path) -> None:  # noqa: ANN001
    out, state = tmp_path / "ds", tmp_path / "st"
    limit = 200_000  # 200 KB per file: 100 records (~6 KB each compressed) cannot be stored

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
    out = tmp_path / "ds"
    args = ["run", "--out", str(out), "--state-dir", str(tmp_path / "st"), "--count", "400", "--workers", "1",
            "--shard-records", "10", "--batch-size", "2"]
    proc = start(args, env={"JITSYNTH_INCOMPLETE_EXIT_CODE": "3"}, log=tmp_path / "run.log")
    assert wait_for(lambda: (out / "commits").exists() and any((out / "commits").rglob("*.json")), 120)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 3, (tmp_path / "run.log").read_text()[-2000:]
    assert jitsynth("verify", str(out)).returncode == 0
