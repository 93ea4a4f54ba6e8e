"""The worker pool: separate processes (Warp codegen holds the GIL and keeps module
state), built on pebble, which kills and replaces a worker that dies or passes the task
timeout and recycles workers after N tasks.

A batch whose worker dies or hangs is retried once, one seed per task, so a single bad
seed fails alone; a seed that fails again is reported as a failure (``failed(seed,
reason)``, a task result of its own) with its reason.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import structlog
import pebble.common
from pebble import ProcessExpired, ProcessPool

log = structlog.get_logger("jitsynth.pool")

# pebble's manager threads wake every ``CONSTS.sleep_unit`` (0.1 s) to look for timed-out
# tasks and dead workers, whether or not anything happened: ~20 wake-ups a second that cost
# the producer's main process a fixed few ms of CPU per second (measured with yappi, issue
# 18). Results never wait for this tick (they arrive on a pipe the message thread polls),
# so a coarser one only delays noticing a hang or a crash by up to half a second, next to
# task timeouts of minutes. tests/stream/test_pool.py fails loudly if pebble drops the knob.
POLL_INTERVAL_S = 0.5


def _coarser_polling() -> None:
    pebble.common.CONSTS.sleep_unit = max(pebble.common.CONSTS.sleep_unit, POLL_INTERVAL_S)


def _child_init(initializer: Callable[..., None], args: tuple[Any, ...]) -> None:
    # Ctrl-C goes to the whole terminal process group; the parent decides how to stop,
    # so workers ignore SIGINT (SIGTERM from the pool still ends them).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    initializer(*args)


def _pause(seconds: float) -> int:
    import os
    import time

    time.sleep(seconds)
    return os.getpid()


class WorkerPool:
    def __init__(self, workers: int, task: Callable[[list[int]], Any], failed: Callable[[int, str], Any],
                 initializer: Callable[..., None], initargs: tuple[Any, ...], timeout: float, max_tasks: int) -> None:
        self._task = task
        self._failed = failed
        self._timeout = timeout
        self.crashes = 0
        self.timeouts = 0
        self.closed = False
        _coarser_polling()
        self._pool = ProcessPool(max_workers=workers, max_tasks=max_tasks, initializer=_child_init,
                                 initargs=(initializer, initargs), context=multiprocessing.get_context("spawn"))

    async def warm_up(self, workers: int) -> None:
        """Wait until every worker has started and initialised Warp (pool start-up costs
        a few seconds; callers that time throughput start their clock after this).

        A round of ``workers`` short pauses proves it only when ``workers`` different
        processes ran them at once: a worker ready early could otherwise take two pauses
        while another is still importing Warp, and the clock would start too soon."""
        for _ in range(50):
            futures = [self._pool.schedule(_pause, args=(0.3,), timeout=self._timeout + 60) for _ in range(workers)]
            pids = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
            if len(set(pids)) == workers:
                return
        log.warning("workers did not all start together; going on", workers=workers)

    async def _run(self, seeds: list[int]) -> Any:
        future = self._pool.schedule(self._task, args=(seeds,), timeout=self._timeout)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, ProcessExpired):
            self.crashes += 1
            return f"worker died (exit code {exc.exitcode})"
        if isinstance(exc, (FutureTimeout, TimeoutError)):
            self.timeouts += 1
            return f"worker timed out after {self._timeout:g}s"
        return f"worker error: {type(exc).__name__}: {exc}"

    async def process(self, seeds: list[int]) -> list[Any]:
        """Task results covering ``seeds`` in seed order: one for the whole batch, or one per
        seed after a worker fault; never raises for worker faults."""
        if self.closed:
            raise asyncio.CancelledError
        try:
            return [await self._run(seeds)]
        except (ProcessExpired, FutureTimeout, TimeoutError, Exception) as exc:  # noqa: BLE001
            reason = self._reason(exc)
            log.warning("batch failed, retrying seed by seed", first_seed=seeds[0], n=len(seeds), reason=reason)
        if self.closed:  # shutting down: these seeds are simply not consumed
            raise asyncio.CancelledError
        return list(await asyncio.gather(*(self._single(seed) for seed in seeds)))

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker; if the worker dies or hangs, here instead (a pure
        function whose result is needed either way)."""
        try:
            return await asyncio.wrap_future(self._pool.schedule(fn, args=args, timeout=self._timeout))
        except (ProcessExpired, FutureTimeout, TimeoutError) as exc:
            log.warning("pool call failed, running it here", fn=fn.__name__, reason=self._reason(exc))
            return fn(*args)

    async def _single(self, seed: int) -> Any:
        try:
            return await self._run([seed])
        except Exception as exc:  # noqa: BLE001
            if self.closed:
                raise asyncio.CancelledError from None
            reason = self._reason(exc)
            log.error("seed failed", seed=seed, reason=reason)
            return self._failed(seed, reason)

    def close(self, now: bool = False) -> None:
        self.closed = True
        if now:
            self._pool.stop()
        else:
            self._pool.close()
        self._pool.join(timeout=10)
        if now:
            for proc in multiprocessing.active_children():
                proc.kill()
