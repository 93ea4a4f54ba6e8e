"""Run untrusted native code (generated kernels) in a forked child of the worker.

A kernel that segfaults, hangs or exhausts memory must cost only its own ``executed``
flag, never the worker (whose death would fail the whole batch and drop the records).
So the worker, which never runs generated code itself, forks one child per batch; the
child runs the jobs in order and streams one result per job back over a pipe:

- a job that raises is reported by the child as ``error``;
- a child that dies mid-job (signal, OOM kill, ``os._exit``) makes that job ``crashed``;
- a job with no result within ``timeout`` seconds is ``timeout`` and the child is killed.

After a crash or timeout a fresh child continues with the next job. Fork (not spawn) is
the point: the child inherits the loaded Warp modules and costs milliseconds, not the
second a fresh interpreter with Warp would. Limits in the child: address space
(``RLIMIT_AS``: the worker's current size plus ``memory`` bytes), CPU seconds as a
backstop for the parent's own timer, no core files, and death with its parent.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import pickle
import resource
import select
import signal
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_HEADER = struct.Struct("<Q")


@dataclass(frozen=True, slots=True)
class Result:
    status: str  # "ok" | "error" | "crashed" | "timeout"
    value: Any = None  # the job's return value when ok, else a short reason


def run_isolated(jobs: Sequence[Callable[[], Any]], timeout: float, memory: int | None) -> list[Result]:
    """One Result per job, in order; never raises for what a job does."""
    results: list[Result] = []
    while len(results) < len(jobs):
        results += _run_child(jobs[len(results):], timeout, memory)
    return results


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _limit_child(memory: int | None, cpu_seconds: float) -> None:
    try:  # die with the worker, e.g. when the pool kills it past its task timeout
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(cpu_seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
    if memory is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = _vm_size() + memory
        resource.setrlimit(resource.RLIMIT_AS, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


def _send(fd: int, message: tuple[str, Any]) -> None:
    try:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - an unpicklable result is the job's error
        payload = pickle.dumps(("error", f"result not picklable: {exc}"))
    data = _HEADER.pack(len(payload)) + payload
    while data:
        data = data[os.write(fd, data):]


def _child(jobs: Sequence[Callable[[], Any]], fd: int, timeout: float, memory: int | None) -> None:
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        faulthandler.disable()  # a crashing kernel is an expected outcome, not a traceback on stderr
        _limit_child(memory, timeout * len(jobs))
        for job in jobs:
            try:
                message: tuple[str, Any] = ("ok", job())
            except MemoryError:
                message = ("error", "MemoryError: address-space limit reached")
            except BaseException as exc:  # noqa: BLE001 - reported, the next job still runs
                message = ("error", f"{type(exc).__name__}: {str(exc)[:300]}")
            _send(fd, message)
    finally:
        os._exit(0)  # never return into the worker's code, never run its atexit hooks


class _Reader:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def _fill(self, need: int, deadline: float) -> bool:
        while len(self.buffer) < need:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return False  # EOF: the child is gone
            self.buffer += chunk
        return True

    def next(self, timeout: float) -> tuple[str, Any] | None:
        deadline = time.monotonic() + timeout
        if not self._fill(_HEADER.size, deadline):
            return None
        size = _HEADER.unpack_from(self.buffer)[0]
        if not self._fill(_HEADER.size + size, deadline):
            return None
        payload, self.buffer = self.buffer[_HEADER.size:_HEADER.size + size], self.buffer[_HEADER.size + size:]
        return pickle.loads(payload)  # noqa: S301 - written by our own forked child


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"killed by {signal.Signals(sig).name}" if sig in signal.Signals._value2member_map_ else f"signal {sig}"
    return f"exited with status {os.WEXITSTATUS(status)} mid-job"


def _run_child(jobs: Sequence[Callable[[], Any]], timeout: float, memory: int | None) -> list[Result]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns (coverage cannot see it)
        os.close(read_fd)
        _child(jobs, write_fd, timeout, memory)
    os.close(write_fd)
    results: list[Result] = []
    reader = _Reader(read_fd)
    try:
        while len(results) < len(jobs):
            message = reader.next(timeout)
            if message is None:
                break
            results.append(Result(*message))
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return [*results, Result("timeout", f"no result within {timeout:g} s")]
    finally:
        os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if len(results) < len(jobs):
        results.append(Result("crashed", _describe_exit(status)))
    return results
