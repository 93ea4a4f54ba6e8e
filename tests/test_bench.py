"""The benchmark's ceiling is honest: the sum of what each plain process sustains, so a
slow straggler in a static split cannot make the pipeline look better than it is."""

from __future__ import annotations

import pytest

from stream.bench import measure_ceiling


def test_ceiling_is_the_sum_of_per_process_rates() -> None:
    found = measure_ceiling(list(range(900_000, 900_012)), 2)
    rates = found["per_process_kernels_per_s"]
    assert len(rates) == 2 and found["kernels"] == 12
    assert found["kernels_per_s"] == pytest.approx(sum(rates), abs=0.2)
    # the static split's wall-clock rate waits for the slower process: never above the sum
    assert found["static_split_kernels_per_s"] <= found["kernels_per_s"] + 0.2
