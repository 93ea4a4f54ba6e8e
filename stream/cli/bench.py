"""``jitsynth bench``: write results to bench/results/ and print a table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

Opt = typer.Option


def _table(result: dict[str, Any]) -> str:
    rows = [("ceiling (plain processes)", result["ceiling"]), ("pipeline, local sink", result["pipeline_local"])]
    if "pipeline_s3" in result:
        rows.append(("pipeline, S3 sink (SeaweedFS)", result["pipeline_s3"]))
    # The last round's rows, against the mean of the ceilings before and after that round.
    ceiling = result["ceiling_per_round"][-1]
    lines = ["| run | kernels/s | ratio to ceiling | main CPU ms/record | stored B/record | raw B/record | peak RSS main MB | "
             "peak RSS workers MB | CPU util |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows:
        if "kernels_per_s" not in r:
            lines.append(f"| {name} | skipped: {r.get('skipped', '')} | | | | | | | |")
            continue
        lines.append(f"| {name} | {r['kernels_per_s']} | {r['kernels_per_s'] / ceiling:.3f} | "
                     f"{r.get('main_cpu_ms_per_record', '')} | "
                     f"{r.get('stored_bytes_per_record', '')} | {r.get('raw_bytes_per_record', '')} | "
                     f"{r.get('peak_rss_main_mb', '')} | {r.get('peak_rss_workers_mb', r.get('worker_rss_mb', ''))} | "
                     f"{r.get('cpu_utilisation', '')} |")
    by_family = result.get("profile_by_family") or {}
    if by_family:
        lines += ["", "| family (worker codegen path) | kernels/s | ms/kernel | of which build_adjoints + emit ms |",
                  "|---|---|---|---|"]
        for family, p in by_family.items():
            ms = p["ms_per_kernel"]
            lines.append(f"| {family} | {p['kernels_per_s']} | {p['total_ms_per_kernel']} | "
                         f"{ms['build_adjoints'] + ms['emit_cpu'] + ms['emit_cuda']:.2f} |")
    model = result.get("scale_model")
    if model:
        cap = result.get("capacity") or {}
        feeds = model["workers_one_producer_feeds"]
        lines += ["", f"Main process at capacity (instant workers): {cap.get('records_per_s')} records/s, "
                      f"{cap.get('main_ms_per_record')} ms CPU per record, {cap.get('records_per_core_s')} records "
                      f"per core-second; idle with its pool up: {model['idle_ms_per_s']} ms CPU per second.",
                  f"Scale model: a worker spends {model['worker_ms_per_kernel']} ms per kernel, so one producer "
                  + (f"feeds up to {feeds} workers " if feeds is not None else "feeds ? workers (--capacity 0: not measured) ")
                  + f"({model['workers_one_producer_feeds_all_per_kernel']} if all of its CPU in the 2-worker runs, "
                  f"{model['main_ms_per_kernel']} ms per kernel, grew with kernels)."]
    return "\n".join(lines)


def _sweep_table(found: dict[str, Any]) -> str:
    lines = ["| workers | ceiling kernels/s | pipeline kernels/s | ratio | main CPU ms/record | main idle CPU ms/s | "
             "workers one producer feeds |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {s['workers']} | {s['ceiling_kernels_per_s']} | {s['pipeline_kernels_per_s']} | {s['ratio']} | "
              f"{s['main_cpu_ms_per_record']} | {s['main_idle_cpu_ms_per_s']} | "
              f"{s['scale_model']['workers_one_producer_feeds']} |"
              for s in found["steps"]]
    return "\n".join(lines)


def _keep(found: dict[str, Any], name: str, results_dir: Path, json_file: Path | None) -> None:
    """Write a result to the results folder (timestamped) and to --json."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    text = json.dumps(found, indent=2)
    (results_dir / f"{name}-{stamp}.json").write_text(text + "\n")
    if json_file:
        json_file.write_text(text + "\n")


def bench(
    kernels: Annotated[int, Opt(help="Kernels per measured run")] = 1500,
    workers: Annotated[int, Opt(help="Worker processes")] = 2,
    rounds: Annotated[int, Opt(help="Interleaved rounds of ceiling/local/S3; ratios are medians")] = 3,
    json_file: Annotated[Path | None, Opt("--json", help="Also write the results here")] = None,
    s3: Annotated[bool, Opt("--s3/--no-s3", help="Measure the S3 sink against a local SeaweedFS")] = True,
    profile: Annotated[int, Opt(help="Per-stage profile over N kernels (0: skip)")] = 300,
    tiers: Annotated[int, Opt(help="Per-tier validation cost and pass rate over N kernels (0: skip)")] = 0,
    memory: Annotated[int, Opt(help="Worker RSS over N kernels in one process (0: skip)")] = 0,
    dedup_ids: Annotated[int, Opt(help="Dedup index at N synthetic ids (0: skip)")] = 0,
    compression: Annotated[bool, Opt(help="Compare zstd settings on generated records")] = True,
    results_dir: Annotated[Path, Opt(help="Where results are kept")] = Path("bench/results"),
    log_scale: Annotated[int, Opt(help="Only this: write N synthetic commits and time open/read/stats/verify "
                                       "(0: skip)")] = 0,
    log_producers: Annotated[int, Opt(help="Producers of the --log-scale dataset")] = 50,
    sweep: Annotated[int, Opt(help="Only this: ceiling and pipeline at 1, 2, 4 ... N workers, --kernels per "
                                   "worker (0: skip)")] = 0,
    capacity: Annotated[int, Opt(help="Records through the producer with instant workers: the main process's "
                                      "CPU per record when busy, for the scale model (0: skip)")] = 20_000,
) -> None:
    """Pipeline vs codegen ceiling, side by side in one run (see README: Performance)."""
    from stream.bench.throughput import run_bench
    from stream.logs import configure

    configure("console", "warning")
    if log_scale:
        import tempfile

        from stream.bench.logscale import run_log_scale
        from stream.bench.logscale import table as log_table

        with tempfile.TemporaryDirectory(prefix="jitsynth-logscale-") as tmp:
            found = run_log_scale(log_scale, log_producers, s3, Path(tmp))
        _keep(found, "logscale", results_dir, json_file)
        typer.echo(log_table(found))
        return
    if sweep:
        from stream.bench.throughput import run_sweep

        found = run_sweep(kernels, sweep, capacity=capacity)
        _keep(found, "sweep", results_dir, json_file)
        typer.echo(_sweep_table(found))
        return
    result = run_bench(kernels, workers, with_s3=s3, rounds=rounds, capacity=capacity)
    if profile:
        import multiprocessing

        from synth.profile import profile as run_profile

        seeds = list(range(20_000_000, 20_000_000 + profile))
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            result["profile_before_separate_builders"] = pool.apply(run_profile, (seeds, False))
            result["profile_after_shared_builder"] = pool.apply(run_profile, (seeds, True))
            # Per family, as the worker builds them: tile kernels pay for a builder per target.
            import dataclasses

            from synth.gen.config import GeneratorConfig

            default = GeneratorConfig()
            result["profile_by_family"] = {
                family: pool.apply(run_profile, (seeds, True, dataclasses.replace(default, families={family: 1.0})))
                for family in sorted(default.families) if default.families[family] > 0}
    if tiers:
        import multiprocessing

        from synth.gen.config import GeneratorConfig
        from synth.worker import WorkerSettings, measure_tiers

        all_tiers = ("codegen", "ptx", "cpu-compile", "execute")
        seeds = list(range(40_000_000, 40_000_000 + tiers))
        # A subprocess: measure_tiers points TMPDIR at a worker folder of its own.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            result["validation_tiers"] = pool.apply(
                measure_tiers, (seeds, WorkerSettings(GeneratorConfig(), "bench", all_tiers), 8))
    if memory:
        import multiprocessing

        from synth.profile import rss_growth

        with multiprocessing.get_context("spawn").Pool(1) as pool:
            result["worker_memory"] = pool.apply(rss_growth, (memory,))
    if dedup_ids:
        from stream.bench.components import dedup_at_scale

        result["dedup_index"] = dedup_at_scale(dedup_ids)
    if compression:
        from stream.bench.components import compression_choices

        result["compression"] = compression_choices(_sample_lines(400))
    _keep(result, "bench", results_dir, json_file)
    table = _table(result)
    (results_dir / "latest.md").write_text(f"Measured {result['started']} on {result['machine']['cpu']} "
                                           f"({result['machine']['cores']} cores), Warp {result['machine']['warp']}, "
                                           f"{kernels} kernels, {workers} workers, {rounds} interleaved rounds.\n\n{table}\n\n"
                                           f"Median ratios over the rounds: local {result['ratio']}, "
                                           f"S3 {result.get('ratio_s3')}; per round {result['ratios_per_round']}.\n")
    typer.echo(table)
    typer.echo(f"ratio (local) = {result['ratio']}" + (f", ratio (S3) = {result['ratio_s3']}" if "ratio_s3" in result
                                                        else "") + f"; per round: {result['ratios_per_round']}")


def _sample_lines(n: int) -> list[bytes]:
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_lines_worker, (n,))


def _lines_worker(n: int) -> list[bytes]:
    from synth.gen.config import GeneratorConfig
    from synth.record import encode_line
    from synth.worker import WorkerSettings, build_record, init_worker

    settings = WorkerSettings(GeneratorConfig(), "bench")
    init_worker(settings)
    lines = []
    for seed in range(30_000_000, 30_000_000 + n):
        try:
            lines.append(encode_line(build_record(seed, settings)))
        except Exception:  # noqa: BLE001
            continue
    return lines


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
