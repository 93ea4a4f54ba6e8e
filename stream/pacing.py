"""Pacing for ``--max-rate``: a token bucket the submitter consults before each batch.

The bucket holds up to ``burst`` seeds and refills at ``rate`` seeds per second. A batch
of ``n`` seeds waits until the bucket holds ``n``, then takes them. ``n`` may exceed
``burst`` (a rate below the batch size, e.g. 0.5/s with batches of 4): the batch then
waits for the refill beyond the cap, so nothing stalls. Whatever the batch sizes and the
pauses between requests (a slow sink stops the submitter), the seeds released by time
``t`` never exceed ``burst + rate * (t - first request)``; back to back, ``n`` seeds are
released at exactly ``max(0, (n - burst) / rate)`` after the first request.

The pacer only computes delays from its clock (injectable, so its schedule is a pure
function of the request times); the caller does the waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0 or burst < 0:
            raise ValueError(f"rate must be > 0 and burst >= 0 (got rate={rate}, burst={burst})")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._tokens = burst  # bucket level at time self._at (negative while a reservation is pending)
        self._at: float | None = None

    def reserve(self, n: int) -> float:
        """Take ``n`` seeds from the budget; return the seconds to wait before releasing them."""
        now = self.clock()
        if self._at is None:
            self._at = now
        tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        delay = max(0.0, (n - tokens) / self.rate)
        # At now + delay the bucket holds tokens + delay * rate (>= n); the batch empties it by n.
        self._tokens = tokens + delay * self.rate - n
        self._at = now + delay
        return delay

