"""Soak: SIGKILL the producer (and its workers) N times at random moments, resume each
time, then compare with an uninterrupted run: identical commits, byte-identical shards.

    python -m tests.soak_kill --kills 50 --count 400 --report soak.json
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from tests.conftest import jitsynth
from tests.faults import kill_group, run_until_done, snapshot, start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--report", type=Path)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jitsynth-soak-"))
    base = ["--count", str(opts.count), "--workers", "2", "--shard-records", "20", "--batch-size", "2"]
    rng = random.Random(opts.seed)

    t0 = time.monotonic()
    jitsynth("run", "--out", str(work / "ref"), "--state-dir", str(work / "ref-st"), *base, check=True)
    reference_s = time.monotonic() - t0
    args = ["run", "--out", str(work / "ds"), "--state-dir", str(work / "st"), *base]
    kills, finished_early, lost_state = 0, 0, 0
    t0 = time.monotonic()
    while kills < opts.kills:
        proc = start(args, log=work / "run.log")
        time.sleep(rng.uniform(0.2, 4.0))
        if proc.poll() is not None:
            finished_early += 1
            shutil.rmtree(work / "ds")  # start the dataset over to keep killing mid-run
            continue
        kill_group(proc)
        kills += 1
        if rng.random() < 0.1:
            shutil.rmtree(work / "st", ignore_errors=True)
            lost_state += 1
    resume_t0 = time.monotonic()
    run_until_done(args)
    last_resume_s = time.monotonic() - resume_t0
    got, want = snapshot(work / "ds"), snapshot(work / "ref")
    report = {
        "kills": kills, "state_dir_deleted": lost_state, "restarted_from_scratch": finished_early,
        "records": sum(c["count"] for c in got[0]), "commits": len(got[0]),
        "commits_identical": got[0] == want[0], "shards_byte_identical": got[1] == want[1],
        "reference_run_s": round(reference_s, 1), "soak_s": round(time.monotonic() - t0, 1),
        "final_resume_run_s": round(last_resume_s, 1),
        "verify_exit": jitsynth("verify", str(work / "ds")).returncode,
    }
    text = json.dumps(report, indent=2)
    if opts.report:
        opts.report.write_text(text + "\n")
    print(text)  # noqa: T201 - a script's report
    shutil.rmtree(work, ignore_errors=True)
    if not (report["commits_identical"] and report["shards_byte_identical"] and report["verify_exit"] == 0):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
