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


def test_sweep_steps_double_up_to_n_and_report_main_cpu_and_the_scale_model() -> None:
    from stream.bench import run_sweep

    found = run_sweep(4, 3, seed_start=910_000)
    assert [s["workers"] for s in found["steps"]] == [1, 2, 3]
    for step in found["steps"]:
        assert step["ratio"] == pytest.approx(step["pipeline_kernels_per_s"] / step["ceiling_kernels_per_s"], abs=1e-3)
        model = step["scale_model"]
        assert step["main_cpu_ms_per_record"] > 0 and model["main_ms_per_kernel"] > 0
        assert model["workers_one_producer_feeds_all_per_kernel"] == int(model["worker_ms_per_kernel"]
                                                                         / model["main_ms_per_kernel"])
        # the idle part is charged once, the rest per kernel: never fewer workers than the stricter model
        assert step["main_idle_cpu_ms_per_s"] == model["idle_ms_per_s"] >= 0
        assert 0 < model["marginal_ms_per_kernel"] <= model["main_ms_per_kernel"]
        assert model["workers_one_producer_feeds"] >= model["workers_one_producer_feeds_all_per_kernel"]


def test_scale_model_charges_idle_cpu_per_second_and_the_rest_per_kernel() -> None:
    from stream.bench import scale_model

    ceilings = [{"per_process_kernels_per_s": [50.0, 50.0]}]  # 20 ms a kernel per worker
    # 10 s, 1,000 kernels, 0.5 CPU-s: 0.5 ms/kernel in all; 20 ms/s idle -> 0.2 s idle, 0.3 s for kernels
    pipelines = [{"main_cpu_s": 0.5, "wall_s": 10.0, "kernels": 1000, "main_cpu_ms_per_kernel": 0.5,
                  "main_cpu_ms_per_record": 0.5}]
    model = scale_model(ceilings, pipelines, idle_ms_per_s=20.0)
    assert model["marginal_ms_per_kernel"] == pytest.approx(0.3)
    # W workers: 20 + W * (1000 / 20) * 0.3 = 1000 ms/s  ->  W = 980 / 15 = 65.3
    assert model["workers_one_producer_feeds"] == 65
    assert model["workers_one_producer_feeds_all_per_kernel"] == 40  # 20 / 0.5
