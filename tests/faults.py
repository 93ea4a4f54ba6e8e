"""Helpers for fault tests and the soak script: start the real producer in its own
process group, watch it for events (commit files, open shard temp files, Prometheus
metrics, JSON log events), kill it (and its workers) with SIGKILL, compare datasets.

A fault is always triggered by an event, never by a sleep: the run is slowed with
``--max-rate`` so it cannot finish before its fault, and the tests assert that the fault
landed mid-run. ``wait_event`` polls (a poll interval only decides how soon an event is
seen, not when the fault happens)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sinks.local import TMP_MARK
from tests.conftest import ROOT, cli_env, free_port

PROCESSED = "jitsynth_kernels_processed_total"
RECORDS_COMMITTED = "jitsynth_records_committed_total"
FAILURES = "jitsynth_failures_total"
DUPLICATES = "jitsynth_duplicates_total"
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$", re.M)


def start(args: list[str], env: dict[str, str] | None = None, log: Path | None = None,
          preexec=None) -> subprocess.Popen[bytes]:  # noqa: ANN001
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    return subprocess.Popen([sys.executable, "-m", "stream.cli.app", *args], cwd=ROOT, env=cli_env(env),
                            stdout=out, stderr=out, start_new_session=True, preexec_fn=preexec)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the producer and every worker it started (same session/process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@contextlib.contextmanager
def reaped(*procs: subprocess.Popen[bytes]) -> Iterator[None]:
    """Kill the groups of producers still running when the block ends (a failed test)."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                kill_group(proc)


def snapshot(root: Path) -> tuple[list[dict], dict[str, bytes]]:
    """(commits without created_at, {shard key: bytes}) of a local dataset's committed part."""
    commits = []
    shards = {}
    for path in sorted((root / "commits").rglob("*.json")):
        commit = json.loads(path.read_bytes())
        commit.pop("created_at")
        commits.append(commit)
        shards[commit["shard"]] = (root / commit["shard"]).read_bytes()
    return commits, shards


def run_until_done(args: list[str], env: dict[str, str] | None = None, attempts: int = 5,
                   timeout: float = 600) -> subprocess.CompletedProcess[str]:
    for _ in range(attempts):
        proc = subprocess.run([sys.executable, "-m", "stream.cli.app", *args], cwd=ROOT, env=cli_env(env),
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode == 0:
            return proc
    raise AssertionError(f"producer did not finish: {proc.stderr[-3000:]}")


# -- observing a run -----------------------------------------------------------------------------
def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)  # poll interval: how soon an event is seen, never when a fault happens
    return False


def wait_event(procs: subprocess.Popen[bytes] | list[subprocess.Popen[bytes]], predicate: Callable[[], bool],
               what: str, timeout: float = 300, log: Path | None = None) -> None:
    """Wait until ``predicate()`` holds while every producer in ``procs`` still runs; fail
    with a message naming the event if one exits first or the timeout passes."""
    procs = procs if isinstance(procs, list) else [procs]

    def seen() -> bool:
        if predicate():
            return True
        exited = [p for p in procs if p.poll() is not None]
        if exited:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise AssertionError(f"producer exited ({exited[0].returncode}) before {what}\n{tail}")
        return False

    assert wait_for(seen, timeout), f"no {what} within {timeout:g}s"


def scrape(port: int) -> dict[str, float]:
    """Unlabelled samples of a producer's Prometheus endpoint; {} while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:  # noqa: S310
            text = resp.read().decode()
    except (OSError, http.client.HTTPException):
        return {}
    return {name: float(value) for name, value in _SAMPLE.findall(text)}


def commit_path(root: Path, seq: int, producer: str = "0") -> Path:
    return root / "commits" / producer / f"{seq:08d}.json"


def commits(root: Path, producer: str = "0") -> list[dict]:
    return [json.loads(p.read_bytes()) for p in sorted((root / "commits" / producer).glob("*.json"))]


def committed_records(root: Path, producer: str = "0") -> int:
    return sum(c["count"] for c in commits(root, producer))


def open_shards(root: Path, seq: int, producer: str = "0") -> list[Path]:
    """Temp files of shard ``seq`` being written (sinks/local.py: ``{key}.tmp-{random}``)."""
    return list((root / "shards" / producer).glob(f"{seq:08d}-*.jsonl.zst{TMP_MARK}*"))


def log_events(log: Path, event: str) -> list[dict]:
    """The JSON log events named ``event`` a producer wrote to ``log`` (``--log-format json``)."""
    if not log.exists():
        return []
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            try:
                item = json.loads(line)
            except ValueError:  # a line still being written
                continue
            if item.get("event") == event:
                found.append(item)
    return found


# -- SIGKILL on a random event -------------------------------------------------------------------
@dataclass(frozen=True)
class Kill:
    event: str  # "start", "commit SEQ" or "processed N"
    committed_before: int
    committed_after: int


def kill_on_random_event(args: list[str], out: Path, rng: random.Random, count: int, shard_records: int,
                         log: Path) -> Kill:
    """Start ``jitsynth run`` (``args`` must pace it with ``--max-rate``) and SIGKILL it on an
    event drawn at random: right after start, once commit SEQ exists, or once it has processed
    N seeds. Every event leaves at least two shards of records to produce (more than the
    seeds in flight), which the rate makes last well past the event. Assert that the kill
    landed in a running producer and left the dataset incomplete."""
    assert "--max-rate" in args, "pace the run so it cannot finish before its kill"
    before = committed_records(out)
    remaining, margin = count - before, 2 * shard_records
    next_seq = len(commits(out))
    kinds = ["start"] + (["processed"] if remaining > margin else []) + (
        ["commit"] if remaining - margin >= shard_records else [])
    kind = rng.choice(kinds)
    port = free_port()
    proc = start([*args, "--metrics-port", str(port), "--log-format", "json"], log=log)
    try:
        if kind == "commit":  # commit SEQ leaves remaining - (SEQ - next_seq + 1) * shard_records >= margin
            seq = next_seq + rng.randrange((remaining - margin) // shard_records)
            event = f"commit {seq}"
            wait_event(proc, lambda: commit_path(out, seq).exists(), event, log=log)
        elif kind == "processed":  # records <= seeds processed, so >= margin records remain
            n = rng.randint(1, remaining - margin)
            event = f"processed {n}"
            wait_event(proc, lambda: scrape(port).get(PROCESSED, 0) >= n, event, log=log)
        else:
            event = "start"
        running = proc.poll() is None
    finally:
        kill_group(proc)
    assert running and proc.returncode == -signal.SIGKILL, f"the producer finished before its kill at {event}"
    after = committed_records(out)
    assert after < count, f"dataset complete after the kill at {event}"
    return Kill(event, before, after)
