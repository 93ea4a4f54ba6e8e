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


def _uneven_init(marks: str) -> None:
    """The first worker to start is ready at once; every later one takes 3 s more (as a
    worker still importing Warp), then writes when it became ready."""
    import pathlib

    root = pathlib.Path(marks)
    try:
        (root / "first").open("x").close()
    except FileExistsError:
        time.sleep(3)
    (root / f"ready-{time.monotonic_ns()}").touch()


def test_warm_up_returns_only_when_every_worker_is_ready(tmp_path) -> None:  # noqa: ANN001
    pool = WorkerPool(2, _task, _failed, _uneven_init, (str(tmp_path),), timeout=30, max_tasks=1000)

    async def main() -> int:
        await pool.warm_up(2)
        return time.monotonic_ns()

    try:
        warmed = anyio.run(main)
    finally:
        pool.close(now=True)
    ready = sorted(int(p.name.split("-")[1]) for p in tmp_path.glob("ready-*"))
    assert len(ready) == 2
    assert warmed >= ready[-1]  # the slow worker was ready before the clock would start
