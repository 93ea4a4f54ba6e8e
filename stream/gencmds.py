"""``jitsynth report``: the generator report over N seeds (validity, distinct keys,
builtin coverage per Warp group, LOC histogram, throughput).

Dataset figures live in ``jitsynth stats URL``; this command measures the generator
itself, before anything is stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

Opt = typer.Option
log = structlog.get_logger("jitsynth.report")


def _summary(rep: dict[str, Any]) -> str:
    lines = [
        f"seeds {rep['start']}..{rep['start'] + rep['seeds'] - 1}  config {rep['config_hash']}  "
        f"warp {rep['warp_version']}  workers {rep['workers']}",
        f"codegen-valid   {rep['valid']}/{rep['seeds']} = {rep['validity_rate']:.2%}  "
        f"(failures: {len(rep['failures'])})",
        f"distinct keys   {rep['distinct_keys']}/{rep['seeds']} = {rep['distinct_rate']:.2%}",
        "builtin coverage (documented builtins of each Warp group used at least once):",
    ]
    for group, c in rep["coverage"].items():
        missing = f"  missing: {', '.join(c['missing'])}" if c["missing"] else ""
        lines.append(f"  {group:<15} {c['covered']:>3}/{c['documented']:<3} = {c['rate']:.0%}{missing}")
    loc = rep["loc"]
    lines.append(f"LOC min {loc['min']}  median {loc['median']}  max {loc['max']}")
    peak = max(loc["histogram"].values(), default=1)
    for bucket, n in loc["histogram"].items():
        lines.append(f"  {bucket:>8} {n:>6} {'#' * max(1, round(40 * n / peak))}")
    lines.append("features (kernels using each): " + ", ".join(f"{k} {v}" for k, v in rep["features"].items()))
    lines.append(f"throughput      {rep['kernels_per_s']} kernels/s wall, {rep['kernels_per_cpu_s']} kernels/s per "
                 f"core-second (build_record: generate + CPU/CUDA codegen + extraction + metadata)")
    return "\n".join(lines)


def report(
    seeds: Annotated[int, Opt(help="How many seeds")] = 1000,
    start: Annotated[int, Opt(help="First seed")] = 0,
    workers: Annotated[int, Opt(help="Worker processes (default: CPU count)")] = 0,
    json_file: Annotated[Path | None, Opt("--json", help="Also write the full report (all failures) here")] = None,
    config: Annotated[Path | None, Opt(help="TOML config file ([generator] knobs)")] = None,
) -> None:
    """Generator report: validity, distinct keys, builtin coverage per group, LOC histogram."""
    from stream.config import ConfigError, load_settings
    from stream.logs import configure

    if seeds < 1 or start < 0 or workers < 0:
        typer.echo("jitsynth: error: --seeds must be >= 1, --start and --workers >= 0", err=True)
        raise typer.Exit(2)
    try:
        settings = load_settings({}, config)
    except ConfigError as exc:
        typer.echo(f"jitsynth: error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure("auto", "info")
    from synth.report import generator_report

    def failed(result: Any) -> None:
        log.warning("kernel failed", seed=result.seed, error=result.error)

    rep = generator_report(seeds, start, workers or None, settings.generator_config(), on_failure=failed).as_dict()
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(rep, indent=1) + "\n")
    typer.echo(_summary(rep))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
