"""Helpers for fault tests and the soak script: start the real producer in its own
process group, kill it (and its workers) with SIGKILL, compare datasets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, cli_env


def start(args: list[str], env: dict[str, str] | None = None, log: Path | None = None,
          preexec=None) -> subprocess.Popen[bytes]:  # noqa: ANN001
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    return subprocess.Popen([sys.executable, "-m", "stream.cli", *args], cwd=ROOT, env=cli_env(env),
                            stdout=out, stderr=out, start_new_session=True, preexec_fn=preexec)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the producer and every worker it started (same session/process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


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
        proc = subprocess.run([sys.executable, "-m", "stream.cli", *args], cwd=ROOT, env=cli_env(env),
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode == 0:
            return proc
    raise AssertionError(f"producer did not finish: {proc.stderr[-3000:]}")


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
