"""``--max-rate``: the submitter's token bucket, on an injected clock (nothing sleeps)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.pacing import Pacer

EPS = 1e-6


def schedule(sizes: list[int], rate: float, burst: float, gaps: list[float] | None = None) -> list[float]:
    """Release times of batches of ``sizes`` seeds, each requested ``gaps[i]`` seconds after
    the previous release (back to back by default); the first request is at time 0."""
    now = 0.0
    pacer = Pacer(rate, burst, clock=lambda: now)
    released = []
    for i, n in enumerate(sizes):
        now += gaps[i] if gaps else 0.0
        now += pacer.reserve(n)
        released.append(now)
    return released


rates = st.floats(min_value=0.01, max_value=1000)
batches = st.lists(st.integers(1, 64), min_size=1, max_size=60)


@given(sizes=batches, rate=rates, burst=st.integers(0, 64))
def test_n_seeds_back_to_back_take_exactly_n_minus_burst_over_rate(sizes: list[int], rate: float,
                                                                   burst: int) -> None:
    released = schedule(sizes, rate, burst)
    n = sum(sizes)
    assert released[-1] >= (n - burst) / rate - EPS  # never faster than the rate...
    assert released[-1] <= max(0.0, (n - burst) / rate) * (1 + EPS) + EPS  # ...and no slower
    assert released == sorted(released)


@given(data=st.data(), sizes=batches, rate=rates, burst=st.integers(0, 64))
def test_budget_holds_at_every_release_whatever_the_pauses(data: st.DataObject, sizes: list[int], rate: float,
                                                           burst: int) -> None:
    """A paused submitter (slow sink, S3 outage) banks at most ``burst`` seeds."""
    gaps = data.draw(st.lists(st.floats(0, 100), min_size=len(sizes), max_size=len(sizes)))
    released = schedule(sizes, rate, burst, gaps)
    start = gaps[0]
    times = [start, *released]  # the first request, then every release
    done = [0, *(sum(sizes[: i + 1]) for i in range(len(sizes)))]  # seeds released by then
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            # Between any two of those moments, at most burst + rate * elapsed seeds go out.
            assert done[j] - done[i] <= burst + rate * (times[j] - times[i]) + EPS * max(1.0, done[j])


def test_rate_below_the_batch_size() -> None:
    # 0.5 kernels/s with batches of 4: the first batch goes at once, then one every 8 s.
    assert schedule([4, 4, 4], rate=0.5, burst=4) == [0.0, 8.0, 16.0]
    # A batch larger than the bucket waits for the refill beyond the cap instead of stalling.
    assert schedule([4, 4], rate=0.5, burst=1) == [6.0, 14.0]


def test_idle_time_banks_at_most_the_burst() -> None:
    now = 0.0
    pacer = Pacer(2.0, 4, clock=lambda: now)
    assert pacer.reserve(4) == 0.0
    now = 1000.0  # a long stall (backpressure): the bucket refills to 4, not 2000
    assert pacer.reserve(4) == 0.0
    assert pacer.reserve(4) == pytest.approx(2.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, -1), (float("nan"), 1)])
def test_bad_parameters(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        Pacer(rate, burst)
