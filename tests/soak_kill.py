"""Soak: SIGKILL the producer (and its workers) N times on random events (right after
start, after commit k, after N processed seeds), resume each time, then compare with an
uninterrupted run: identical commits, byte-identical shards. Killed runs are paced with
``--max-rate`` so none can finish before its kill; a dataset that gets too close to
``--count`` to leave a margin only sees kills right after start.

    python -m tests.soak_kill --kills 50 --count 400 --report soak.json
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.conftest import jitsynth
from tests.faults import committed_records, kill_on_random_event, run_until_done, snapshot

SHARD = 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-rate", type=float, default=20.0, help="kernels/s of the killed runs")
    parser.add_argument("--report", type=Path)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jitsynth-soak-"))
    base = ["--count", str(opts.count), "--workers", "2", "--shard-records", str(SHARD), "--batch-size", "2"]
    rng = random.Random(opts.seed)

    t0 = time.monotonic()
    jitsynth("run", "--out", str(work / "ref"), "--state-dir", str(work / "ref-st"), *base, check=True)
    reference_s = time.monotonic() - t0
    args = ["run", "--out", str(work / "ds"), "--state-dir", str(work / "st"), *base]
    paced = [*args, "--max-rate", f"{opts.max_rate:g}"]
    events: Counter[str] = Counter()
    lost_state = restarted = 0
    t0 = time.monotonic()
    for _ in range(opts.kills):
        if committed_records(work / "ds") >= opts.count - 2 * SHARD:
            shutil.rmtree(work / "ds")  # too close to the end for a kill mid-shard: start the dataset over
            restarted += 1
        (work / "run.log").unlink(missing_ok=True)
        kill = kill_on_random_event(paced, work / "ds", rng, opts.count, SHARD, log=work / "run.log")
        events[kill.event.split()[0]] += 1
        if rng.random() < 0.1:
            shutil.rmtree(work / "st", ignore_errors=True)
            lost_state += 1
    resume_t0 = time.monotonic()
    run_until_done(args)
    last_resume_s = time.monotonic() - resume_t0
    got, want = snapshot(work / "ds"), snapshot(work / "ref")
    report = {
        "kills": opts.kills, "kill_events": dict(events), "state_dir_deleted": lost_state,
        "restarted_from_scratch": restarted,
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
