"""Peak memory and CPU of a process and its children, sampled from another process.

The bench used to sample in a thread of the producer it measured. Each tick (psutil walks
/proc to find the children) held the producer's GIL for a few milliseconds; the pool's
result thread waited for it, and a worker whose result did not fit the pipe waited for that
thread (pebble's channel has one writer lock for all workers). Measured side by side
(issue 18): the same 2-worker pipeline ran 5-7% slower with the thread sampling than
without, while the ceiling's plain processes did not notice it. Sampling from a separate
process measures without touching the measured process's GIL, and the bench runs the same
sampler for the ceiling, so both sides pay for the same apparatus.

Peaks are the kernel's high-water marks (``VmHWM``, reset when sampling starts), so a peak
between two ticks is not missed as long as one tick sees the process alive; the sampler takes a last tick when it is
told to stop (its stdin closes), then prints one JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Self

import psutil


def _peak_rss(proc: psutil.Process) -> int:
    """The process's peak resident set (VmHWM) where Linux reports it, else its RSS now."""
    try:
        with open(f"/proc/{proc.pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return proc.memory_info().rss


def _reset_peak(pid: int) -> None:
    """Start the high-water mark again from the current RSS (Linux: ``5`` into clear_refs), so a
    peak is the block's, not the process's lifetime's (the bench process runs many blocks)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def _tick(root: psutil.Process, peaks: dict[int, int], cpu: dict[int, float]) -> None:
    for proc in [root, *root.children(recursive=True)]:
        if proc.pid == os.getpid():
            continue  # the sampler itself
        try:
            peaks[proc.pid] = max(peaks.get(proc.pid, 0), _peak_rss(proc))
            cpu[proc.pid] = sum(proc.cpu_times()[:2])
        except psutil.Error:
            continue


def sample(pid: int, interval: float, stop: Any, ready: Any = None) -> dict[str, Any]:
    """Tick every ``interval`` seconds until ``stop`` (a file) is readable or closed;
    ``ready()`` is called after the first tick."""
    import select

    root = psutil.Process(pid)
    peaks: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for proc in [root, *root.children(recursive=True)]:
        _reset_peak(proc.pid)
    _tick(root, peaks, cpu)
    first_cpu, started = dict(cpu), time.monotonic()
    if ready is not None:
        ready()
    while not select.select([stop], [], [], interval)[0]:
        _tick(root, peaks, cpu)
    _tick(root, peaks, cpu)
    return {"pid": pid, "wall_s": time.monotonic() - started, "peaks": peaks, "cpu": cpu, "first_cpu": first_cpu}


@dataclass
class Sampler:
    """``with Sampler() as s: ...`` samples this process and its children from a separate
    process; after the block, ``peak_main``, ``peak_workers``, ``cpu_utilisation()``."""

    interval: float = 0.2
    pid: int = field(default_factory=os.getpid)
    peak_main: int = 0
    peak_workers: dict[int, int] = field(default_factory=dict)
    wall: float = 0.0
    _report: dict[str, Any] = field(default_factory=dict)
    _proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen([sys.executable, "-m", "stream.bench.sampler", str(self.pid), str(self.interval)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        # Its first line says it has taken its first tick: the measured block starts after it.
        line = self._proc.stdout.readline() if self._proc.stdout else ""
        if line.strip() != "ready":
            raise RuntimeError(f"the bench's sampler did not start: {line!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        out, _ = self._proc.communicate("", timeout=60)
        self._report = json.loads(out)
        peaks = {int(k): v for k, v in self._report["peaks"].items()}
        self.peak_main = peaks.pop(self.pid, 0)
        self.peak_workers = peaks
        self.wall = self._report["wall_s"]

    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds each process used during the block (to its last tick alive)."""
        first = self._report["first_cpu"]
        return {int(pid): v - first.get(pid, 0.0) for pid, v in self._report["cpu"].items()}

    def cpu_utilisation(self) -> float:
        """CPU seconds of the process and its children over the block, per core and second."""
        return sum(self.cpu_seconds().values()) / (self.wall * (os.cpu_count() or 1))


def main(argv: list[str]) -> int:
    pid, interval = int(argv[0]), float(argv[1])
    report = sample(pid, interval, sys.stdin, ready=lambda: print("ready", flush=True))
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
