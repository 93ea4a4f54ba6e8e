"""``jitsynth report``: the generator report over N seeds (validity, distinct keys,
builtin coverage per Warp group, LOC histogram, throughput), and the quality/realism table
of issue 19: the same figures for the generated kernels and, with ``--against URL``
(repeatable: the corpora are merged), for a real dataset's records, side by side.

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
_FEATURES_SHOWN = 14  # the most common features of either side; --json has them all


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
    if rep.get("coverage_all"):
        c = rep["coverage_all"]
        lines.append(f"  {'all groups':<15} {c['covered']:>3}/{c['documented']:<3} = {c['rate']:.1%}")
    loc = rep["loc"]
    lines.append(f"LOC min {loc['min']}  median {loc['median']}  max {loc['max']}")
    peak = max(loc["histogram"].values(), default=1)
    for bucket, n in loc["histogram"].items():
        lines.append(f"  {bucket:>8} {n:>6} {'#' * max(1, round(40 * n / peak))}")
    lines.append("features (kernels using each): " + ", ".join(f"{k} {v}" for k, v in rep["features"].items()))
    lines.append(f"throughput      {rep['kernels_per_s']} kernels/s wall, {rep['kernels_per_cpu_s']} kernels/s per "
                 f"core-second (build_record: generate + CPU/CUDA codegen + extraction + metadata)")
    return "\n".join([*lines, "", *_quality_table(rep), *_operator_table(rep.get("operators") or {})])


def _operator_table(ops: dict[str, Any]) -> list[str]:
    """Variants: how often each mutation operator applied, was rejected (and why), found no site."""
    if not ops:
        return []
    out = ["", f"{'mutation operator':<16}{'applied':>9}{'rejected':>10}{'no site':>9}  rejection reasons (most common)"]
    for op, t in ops.items():
        tried = t["applied"] + t["rejected"]
        share = f" ({t['rejected'] / tried:.0%})" if tried else ""
        reasons = ", ".join(f"{why} {n}" for why, n in list(t["reasons"].items())[:3])
        out.append(f"{op:<16}{t['applied']:>9}{t['rejected']:>10}{t['no_site']:>9}  {share.strip()} {reasons}".rstrip())
    return out


def _pct(n: float | None) -> str:
    return "n/a" if n is None else f"{n:.1%}"


def _quality_table(rep: dict[str, Any]) -> list[str]:
    """Generated | real, one row per figure (the real column only with --against)."""
    sides = [rep["generated"]] + ([rep["against"]] if rep.get("against") else [])
    head = ["variants" if rep.get("operators") else "generated"] + ([f"real ({', '.join(rep['against']['sources'])})"] if rep.get("against") else [])
    rows: list[tuple[str, list[str]]] = [("kernels measured", [str(s["kernels"]) for s in sides])]

    def q(fmt: Any) -> list[str]:
        return [fmt(s["quality"]) for s in sides]

    rows += [
        ("dead local assignments", q(lambda x: f"{_pct(x['dead_assignment_share'])} "
                                               f"({x['dead_assignments']}/{x['assignments']})")),
        ("unused kernel params", q(lambda x: f"{_pct(x['unused_kernel_param_share'])} "
                                             f"({x['unused_kernel_params']}/{x['kernel_params']})")),
    ]
    for defect, label in (("unused_param", "kernels w/ unused param"),
                          ("uncalled_helper", "kernels w/ uncalled helper"),
                          ("unused_struct", "kernels w/ unused struct"),
                          ("unused_struct_field", "kernels w/ unused field"),
                          ("constant_condition", "kernels w/ constant cond."),
                          ("unused_helper_param", "kernels w/ unused helper param"),
                          ("dead_assignment", "kernels w/ dead assignment")):
        rows.append((label, q(lambda x, d=defect: f"{_pct(x['kernel_share_with'][d])} ({x['kernels_with'][d]})")))
    rows += [
        ("race violations (kernels)", q(lambda x: f"{x['race_violations']} ({x['kernels_with']['race_violation']})")),
        ("LOC median", [str(s["loc_median"]) for s in sides]),
        ("params median", [str(s["param_median"]) for s in sides]),
    ]
    if set(rep["tiers"]) - {"codegen", "keep-ptx"}:
        for tier, label in (("ptx", "NVRTC (ptx) compiles"), ("cpu_compile", "clang (cpu-compile) compiles")):
            rows.append((label, [_rate(s["validation"][tier]) for s in sides]))
        rows.append(("execution", [", ".join(f"{k} {v}" for k, v in s["validation"]["execution"].items()) or "n/a"
                                   for s in sides]))
    shown = sorted({k for s in sides for k in list(s["feature_shares"])[:_FEATURES_SHOWN]},
                   key=lambda k: -max(s["feature_shares"].get(k, 0.0) for s in sides))
    rows.append(("feature shares (kernels with each):", []))  # a heading: no cells
    rows += [(f"  {k}", [_pct(s["feature_shares"].get(k, 0.0)) for s in sides]) for k in shown]
    width = max(31, *(len(label) + 2 for label, cells in rows if cells))
    cols = [max(len(h), *(len(cells[i]) for _, cells in rows if cells)) + 2 for i, h in enumerate(head)]
    out = ["quality and realism (issue 19)".ljust(width) + "".join(h.rjust(c) for h, c in zip(head, cols, strict=True))]
    for label, cells in rows:
        out.append(label.ljust(width) + "".join(c.rjust(w) for c, w in zip(cells, cols, strict=True)) if cells
                   else label)
    if rep["tier_failures"]:
        out.append(f"validation tier failures: {len(rep['tier_failures'])} records (all in --json), e.g.")
        out += [f"  seed {f['seed']}: " + "; ".join(f"{k}: {v}" for k, v in f.items() if k != "seed")[:200]
                for f in rep["tier_failures"][:3]]
    if rep.get("against"):
        out.append(f"builtin JSD (base 2, kernels using each builtin), generated vs real: "
                   f"{rep['against']['builtin_jsd']:.3f}")
    return out


def _rate(r: dict[str, Any]) -> str:
    return "n/a" if not r["checked"] else f"{r['passed']}/{r['checked']} = {r['rate']:.1%}"


def report(
    seeds: Annotated[int, Opt(help="How many seeds")] = 1000,
    start: Annotated[int, Opt(help="First seed")] = 0,
    workers: Annotated[int, Opt(help="Worker processes (default: CPU count)")] = 0,
    json_file: Annotated[Path | None, Opt("--json", help="Also write the full report (all failures) here")] = None,
    config: Annotated[Path | None, Opt(help="TOML config file ([generator] knobs)")] = None,
    against: Annotated[list[str] | None, Opt(help="A committed dataset of real kernels (e.g. from `jitsynth "
                                                  "ingest warp.examples`) to measure the same way; repeat "
                                                  "to merge several")] = None,
    validate: Annotated[str | None, Opt(help="Tiers to run on the generated kernels: "
                                             "codegen,ptx,cpu-compile,execute")] = None,
    endpoint_url: Annotated[str | None, Opt(help="S3 endpoint for --against (or $AWS_ENDPOINT_URL)")] = None,
    family: Annotated[str | None, Opt(help="Only this kernel family (plain, tile, geometry, volume, lang)")] = None,
    source: Annotated[str | None, Opt(help="Kernel source: generator (default) or variants:DATASET[,DATASET...]; "
                                           "variants are compared with their parents unless --against says "
                                           "otherwise")] = None,
) -> None:
    """Generator report: validity, distinct keys, builtin coverage, LOC; quality and realism vs --against."""
    from stream.config import ConfigError, load_settings
    from stream.logs import configure

    if seeds < 1 or start < 0 or workers < 0:
        typer.echo("jitsynth: error: --seeds must be >= 1, --start and --workers >= 0", err=True)
        raise typer.Exit(2)
    try:
        settings = load_settings({"validate_tiers": validate, "endpoint_url": endpoint_url, "source": source}, config)
        from stream.sources import kernel_source

        kernels = kernel_source(settings)
    except ConfigError as exc:
        typer.echo(f"jitsynth: error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure("auto", "info")
    against = against or settings.source_spec()
    real = _read_against(against, settings.endpoint_url)
    from synth.gen.report import generator_report

    def failed(result: Any) -> None:
        log.warning("kernel failed", seed=result.seed, error=result.error)

    tiers = tuple(settings.validate_tiers)
    cfg = settings.generator_config()
    if family is not None:
        import dataclasses

        from synth.gen.config import FAMILY_KEYS

        if family not in FAMILY_KEYS:
            typer.echo(f"jitsynth: error: --family {family}: known families: {', '.join(FAMILY_KEYS)}", err=True)
            raise typer.Exit(2)
        cfg = dataclasses.replace(cfg, families={family: 1.0})
    result = generator_report(seeds, start, workers or None, cfg, on_failure=failed, tiers=tiers, source=kernels)
    if real is not None:
        result.attach_against(real, against)
    rep = result.as_dict()
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(rep, indent=1) + "\n")
    typer.echo(_summary(rep))


def _read_against(urls: list[str], endpoint_url: str | None) -> Any:
    """The real corpora's figures, read before the (long) generator run so a bad URL fails fast."""
    if not urls:
        return None
    from sinks.read.reader import iter_records
    from synth.quality.realism import CorpusFigures

    figures = CorpusFigures()
    for url in urls:
        before = figures.kernels
        try:
            for record in iter_records(url, endpoint_url):
                figures.add_source(record["python_source"], record["kernel_name"], record.get("validation"))
        except Exception as exc:  # noqa: BLE001 - any reader failure is a usage problem here: say which URL
            typer.echo(f"jitsynth: error: --against {url}: {type(exc).__name__}: {exc}", err=True)
            raise typer.Exit(2) from None
        if figures.kernels == before:
            typer.echo(f"jitsynth: error: --against {url}: no committed records there", err=True)
            raise typer.Exit(2)
        log.info("against corpus read", url=url, records=figures.kernels - before)
    return figures


def register(app: typer.Typer) -> None:
    app.command("report")(report)
