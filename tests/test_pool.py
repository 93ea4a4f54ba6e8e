"""The worker pool's use of pebble: the polling knob it coarsens must exist (a pebble upgrade
that drops or renames it fails here, loudly, instead of silently bringing back the 10 Hz
wake-ups), and a coarser tick still catches a hung worker."""

from __future__ import annotations

import time

import anyio
import pebble.common

from stream.pool import POLL_INTERVAL_S, WorkerPool


def _task(seeds: list[int]) -> list[int]:
    if seeds == [13]:
        time.sleep(60)  # hangs: only the task timeout ends it
    return [s * 2 for s in seeds]


def _failed(seed: int, reason: str) -> tuple[int, str]:
    return seed, reason


def _init() -> None:
    pass


def test_pebble_still_has_the_polling_knob() -> None:
    consts = pebble.common.CONSTS
    assert isinstance(consts.sleep_unit, float), "pebble.common.CONSTS.sleep_unit is gone: see stream/pool.py"
    pool = WorkerPool(1, _task, _failed, _init, (), timeout=5, max_tasks=10)
    try:
        assert pebble.common.CONSTS.sleep_unit == POLL_INTERVAL_S
    finally:
        pool.close(now=True)


def test_a_hung_task_is_reported_with_the_coarser_tick() -> None:
    pool = WorkerPool(1, _task, _failed, _init, (), timeout=2, max_tasks=10)

    async def main() -> tuple[list, list]:
        ok = await pool.process([1, 2])
        hung = await pool.process([13])
        return ok, hung

    try:
        ok, hung = anyio.run(main)
    finally:
        pool.close(now=True)
    assert ok == [[2, 4]]
    assert len(hung) == 1 and hung[0][0] == 13 and "timed out after 2s" in hung[0][1]
    assert pool.timeouts == 2  # the batch, then the seed alone
