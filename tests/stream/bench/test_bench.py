"""The benchmark's ceiling is honest: the sum of what each plain process sustains, so a
slow straggler in a static split cannot make the pipeline look better than it is."""

from __future__ import annotations

import pytest

from stream.bench.throughput import batch_grid, measure_ceiling


def test_the_ceiling_cuts_batches_on_the_producers_grid() -> None:
    # As the producer submits them (stream.pipeline._submit): ends on multiples of the batch size
    assert batch_grid(list(range(30, 70)), 32) == [[30, 31], list(range(32, 64)), list(range(64, 70))]
    assert batch_grid([], 32) == []


def test_ceiling_is_the_sum_of_per_process_rates() -> None:
    # 12 seeds across a multiple of the batch size (32): two batches, one per process
    found = measure_ceiling(list(range(900_024, 900_036)), 2)
    rates = found["per_process_kernels_per_s"]
    assert len(rates) == 2 and found["kernels"] == 12
    assert found["kernels_per_s"] == pytest.approx(sum(rates), abs=0.2)
    # the static split's wall-clock rate waits for the slower process: never above the sum
    assert found["static_split_kernels_per_s"] <= found["kernels_per_s"] + 0.2


def test_sweep_steps_double_up_to_n_and_report_main_cpu_and_the_scale_model() -> None:
    from stream.bench.throughput import run_sweep

    found = run_sweep(4, 3, seed_start=910_000, capacity=600)
    assert [s["workers"] for s in found["steps"]] == [1, 2, 3]
    for step in found["steps"]:
        assert step["ratio"] == pytest.approx(step["pipeline_kernels_per_s"] / step["ceiling_kernels_per_s"], abs=1e-3)
        # the step's ceiling is the mean of the ones measured just before and after its pipeline
        assert step["ceiling_kernels_per_s"] == pytest.approx(sum(step["ceilings_before_after"]) / 2, abs=0.06)
        model = step["scale_model"]
        assert step["main_cpu_ms_per_record"] > 0 and model["main_ms_per_kernel"] > 0
        assert model["workers_one_producer_feeds_all_per_kernel"] == int(model["worker_ms_per_kernel"]
                                                                         / model["main_ms_per_kernel"])
        # the idle part is charged once, the rest per kernel: never fewer workers than the stricter model
        assert step["main_idle_cpu_ms_per_s"] == model["idle_ms_per_s"] >= 0
        busy = found["capacity"]["main_ms_per_record"]
        assert model["busy_ms_per_record"] == busy > 0
        assert model["workers_one_producer_feeds"] == int((1000 - model["idle_ms_per_s"])
                                                          * model["worker_ms_per_kernel"] / (1000 * busy))
    capacity = found["capacity"]
    assert capacity["records"] == 600  # every record of the instant workers committed
    assert capacity["records_per_core_s"] == pytest.approx(1000 / capacity["main_ms_per_record"], rel=1e-3)


def test_scale_model_charges_idle_cpu_per_second_and_busy_cpu_per_record() -> None:
    from stream.bench.throughput import scale_model

    ceilings = [{"per_process_kernels_per_s": [50.0, 50.0]}]  # 20 ms a kernel per worker
    pipelines = [{"main_cpu_ms_per_kernel": 0.5, "main_cpu_ms_per_record": 0.5}]
    model = scale_model(ceilings, pipelines, idle_ms_per_s=20.0, capacity={"main_ms_per_record": 0.05})
    # W workers: 20 + W * (1000 / 20) * 0.05 = 1000 ms/s  ->  W = 980 / 2.5 = 392
    assert model["workers_one_producer_feeds"] == 392
    assert model["workers_one_producer_feeds_all_per_kernel"] == 40  # 20 / 0.5
    assert scale_model(ceilings, pipelines)["workers_one_producer_feeds"] is None  # no capacity run: no claim
