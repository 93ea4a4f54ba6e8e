"""The generator report: what N seeds of a config give once Warp has seen them.

For every seed the worker's own path (``synth.worker.build_record``: generate, Warp
codegen for CPU and CUDA, extraction, metadata, canonical key) runs in a process pool.
The report counts codegen-valid kernels (every failure is kept with its seed and Warp's
message), distinct canonical keys, builtin coverage per Warp group (against the builtins
Warp documents in that group), the LOC histogram, feature frequencies and throughput.

Issue 19 added the quality and realism figures (``synth.quality.checks``, ``synth.quality.realism``: dead
assignments, unused parameters/helpers/structs, constant conditions, static race-contract
violations, feature shares, LOC and parameter medians, builtin usage), measured on each valid
kernel in the workers, optional validation tiers (``ptx``, ``cpu-compile``, ``execute``) with
their pass rates, and a side-by-side comparison with a real corpus's figures (the caller reads
the records: this package knows nothing of storage) including the builtin-frequency JSD.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from synth.gen.config import GeneratorConfig
from synth.quality.checks import KernelQuality
from synth.quality.realism import CorpusFigures, jsd, safe_check

LOC_BINS = (0, 10, 20, 30, 40, 50, 60, 80, 100, 150, 200)


@dataclass(frozen=True, slots=True)
class SeedResult:
    seed: int
    ok: bool
    key: str  # canonical key ("" if the source did not even parse)
    loc: int
    builtins: tuple[str, ...]
    features: tuple[str, ...]
    error: str  # Warp's message when not ok
    cpu_s: float  # process time spent on this seed (a batch's time split evenly when tiers run)
    n_params: int = 0
    quality: KernelQuality | None = None  # None for a rejected kernel (or one the checker cannot read)
    validation: tuple[tuple[str, Any], ...] = ()  # the record's validation fields that were set
    mutations: tuple[str, ...] = ()  # variants: the accepted mutations ("operator: what")
    rejected: tuple[tuple[str, str], ...] = ()  # variants: (operator, reason) of each rejected try


def _init(cfg: GeneratorConfig, tiers: tuple[str, ...] = ("codegen",), source: Any = None) -> None:
    from synth.worker import WorkerSettings, init_worker

    global _SETTINGS
    _SETTINGS = WorkerSettings(cfg, "report", tiers, source=source)
    init_worker(_SETTINGS)


_SETTINGS: Any = None


def run_seeds(seeds: list[int]) -> list[SeedResult]:
    """Pool task: one result per seed, failures included (never raised).

    The batch goes through ``build_records`` as a producer's worker would, so the validation
    tiers compile it as one module (their per-kernel cost depends on that)."""
    from synth.worker import build_records

    t0 = time.process_time()
    built = build_records(seeds, _SETTINGS)
    share = (time.process_time() - t0) / max(1, len(seeds))
    out = []
    for seed, record in zip(seeds, built, strict=True):
        if isinstance(record, BaseException):
            out.append(_failed(seed, record, share))
            continue
        meta = record.metadata
        validation = tuple((k, v) for k, v in (("cuda_ptx", record.validation.cuda_ptx),
                                               ("cpu_compile", record.validation.cpu_compile),
                                               ("execution", record.validation.execution),
                                               ("errors", record.validation.errors)) if v is not None)
        quality = safe_check(record.python_source, record.kernel_name, quiet=True)
        variant = meta.variant or None
        out.append(SeedResult(seed, True, record.id, meta.loc, tuple(meta.builtins), tuple(meta.features), "",
                              share, meta.n_params, quality, validation,
                              tuple(variant.mutations) if variant else (),
                              tuple((op, why) for op, why in variant.rejected) if variant else ()))
    return out


def _failed(seed: int, error: BaseException, share: float) -> SeedResult:
    """A rejected seed, measured from its source when there is one (a variant source may have none)."""
    from synth.canonical import canonical_key
    from synth.metadata import analyse
    from synth.worker import kernel_for

    message = f"{type(error).__name__}: {' | '.join(str(error).split(chr(10)))[:800]}"
    try:
        kernel = kernel_for(seed, _SETTINGS)
    except Exception:  # noqa: BLE001 - the source itself gave up on this seed: the message says why
        return SeedResult(seed, False, "", 0, (), (), message, share)
    facts = analyse(kernel.source, kernel.kernel_name)
    return SeedResult(seed, False, canonical_key(kernel.source), facts.loc, tuple(facts.builtins),
                      tuple(facts.features), message, share, facts.n_params)


@dataclass(slots=True)
class Report:
    seeds: int
    start: int
    workers: int
    config_hash: str
    warp_version: str
    valid: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    distinct_keys: int = 0
    coverage: dict[str, dict[str, Any]] = field(default_factory=dict)
    coverage_all: dict[str, Any] = field(default_factory=dict)  # every documented builtin, all groups
    loc_histogram: dict[str, int] = field(default_factory=dict)
    loc_min: int = 0
    loc_median: float = 0.0
    loc_max: int = 0
    features: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    tiers: tuple[str, ...] = ("codegen",)
    figures: CorpusFigures = field(default_factory=CorpusFigures)  # of the codegen-valid kernels
    against: CorpusFigures | None = None  # of a real corpus (attach_against)
    against_sources: list[str] = field(default_factory=list)
    tier_failures: list[dict[str, Any]] = field(default_factory=list)  # {"seed", tier: why} per record
    operators: dict[str, dict[str, Any]] = field(default_factory=dict)  # variants: mutation operator table

    def attach_against(self, figures: CorpusFigures, sources: list[str]) -> None:
        self.against, self.against_sources = figures, sources

    def as_dict(self) -> dict[str, Any]:
        against = None
        if self.against is not None:
            against = {"sources": self.against_sources, **self.against.as_dict(),
                       "builtin_jsd": round(jsd(self.figures.builtins, self.against.builtins), 4)}
        return {
            "seeds": self.seeds, "start": self.start, "workers": self.workers, "config_hash": self.config_hash,
            "warp_version": self.warp_version, "valid": self.valid, "validity_rate": self.validity_rate,
            "failures": self.failures, "distinct_keys": self.distinct_keys, "distinct_rate": self.distinct_rate,
            "coverage": self.coverage, "coverage_all": self.coverage_all,
            "loc": {"min": self.loc_min, "median": self.loc_median, "max": self.loc_max,
                    "histogram": self.loc_histogram},
            "features": self.features, "wall_s": round(self.wall_s, 2), "cpu_s": round(self.cpu_s, 2),
            "kernels_per_s": round(self.seeds / self.wall_s, 2) if self.wall_s else None,
            "kernels_per_cpu_s": round(self.seeds / self.cpu_s, 2) if self.cpu_s else None,
            "tiers": list(self.tiers), "tier_failures": self.tier_failures,
            "generated": self.figures.as_dict(), "against": against, "operators": self.operators,
        }

    @property
    def validity_rate(self) -> float:
        return self.valid / self.seeds if self.seeds else 0.0

    @property
    def distinct_rate(self) -> float:
        return self.distinct_keys / self.seeds if self.seeds else 0.0


def _bin(loc: int) -> str:
    for lo, hi in zip(LOC_BINS, LOC_BINS[1:], strict=False):
        if loc < hi:
            return f"{lo}-{hi - 1}"
    return f">={LOC_BINS[-1]}"


def operator_table(results: list[SeedResult]) -> dict[str, dict[str, Any]]:
    """Per mutation operator: tries that applied (accepted), were rejected (by reason), or found
    no site; over the variants produced (a seed with no variant keeps no record of its tries)."""
    table: dict[str, dict[str, Any]] = {}

    def row(op: str) -> dict[str, Any]:
        return table.setdefault(op, {"applied": 0, "rejected": 0, "no_site": 0, "reasons": Counter()})

    for r in results:
        for what in r.mutations:
            row(what.split(":", 1)[0])["applied"] += 1
        for op, why in r.rejected:
            if why == "no site":
                row(op)["no_site"] += 1
            else:
                row(op)["rejected"] += 1
                row(op)["reasons"][why] += 1
    return {op: {**t, "reasons": dict(t["reasons"].most_common())}
            for op, t in sorted(table.items(), key=lambda kv: -kv[1]["applied"])}


def summarise(results: list[SeedResult], start: int, workers: int, cfg: GeneratorConfig, wall_s: float,
              tiers: tuple[str, ...] = ("codegen",), config_hash: str | None = None) -> Report:
    from synth.gen.signatures import documented_all
    from synth.warp_adapter import WARP_VERSION

    results = sorted(results, key=lambda r: r.seed)
    rep = Report(len(results), start, workers, config_hash or cfg.config_hash, WARP_VERSION, wall_s=wall_s,
                 tiers=tiers)
    rep.operators = operator_table(results)
    for r in results:
        if r.ok:
            validation = dict(r.validation)
            rep.figures.add(r.quality, r.builtins, r.features, r.loc, r.n_params, validation)
            if validation.get("errors"):
                rep.tier_failures.append({"seed": r.seed, **validation["errors"]})
    rep.valid = sum(r.ok for r in results)
    rep.failures = [{"seed": r.seed, "error": r.error} for r in results if not r.ok]
    rep.distinct_keys = len({r.key for r in results})
    used: Counter[str] = Counter()
    features: Counter[str] = Counter()
    for r in results:
        if r.ok:
            used.update(r.builtins)
            features.update(r.features)
    for group, names in documented_all().items():
        covered = [n for n in names if used[n]]
        rep.coverage[group] = {"covered": len(covered), "documented": len(names),
                               "rate": round(len(covered) / len(names), 4) if names else 1.0,
                               "missing": [n for n in names if not used[n]]}
    locs = sorted(r.loc for r in results)
    hist: Counter[str] = Counter(_bin(x) for x in locs)
    rep.loc_histogram = {b: hist[b] for b in [*(f"{lo}-{hi - 1}" for lo, hi in zip(LOC_BINS, LOC_BINS[1:],
                                                                                     strict=False)),
                                              f">={LOC_BINS[-1]}"] if hist[b]}
    if locs:
        rep.loc_min, rep.loc_max = locs[0], locs[-1]
        mid = len(locs) // 2
        rep.loc_median = locs[mid] if len(locs) % 2 else (locs[mid - 1] + locs[mid]) / 2
    rep.features = dict(sorted(features.items(), key=lambda kv: (-kv[1], kv[0])))
    covered_all = sum(c["covered"] for c in rep.coverage.values())
    documented = sum(c["documented"] for c in rep.coverage.values())
    rep.coverage_all = {"covered": covered_all, "documented": documented,
                        "rate": round(covered_all / documented, 4) if documented else 1.0}
    rep.cpu_s = sum(r.cpu_s for r in results)
    return rep


def generator_report(seeds: int, start: int = 0, workers: int | None = None, cfg: GeneratorConfig | None = None,
                     batch: int = 25, on_failure: Any = None, tiers: tuple[str, ...] = ("codegen",),
                     source: Any = None) -> Report:
    """Run ``seeds`` seeds from ``start`` through Warp in ``workers`` processes, with ``tiers``;
    ``source``: a kernel source (``synth.variants.source.VariantSource``) instead of the generator."""
    cfg = cfg or GeneratorConfig()
    if set(tiers) - {"codegen"}:
        batch = min(batch, 8)  # tiers compile a batch as one module; a producer's batch size keeps that cost real
    workers = max(1, workers or os.cpu_count() or 1)
    batches = [list(range(s, min(start + seeds, s + batch))) for s in range(start, start + seeds, batch)]
    results: list[SeedResult] = []
    t0 = time.perf_counter()
    # spawn: a fresh interpreter per worker, as the producer's pool does (Warp and fork mix badly).
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init,
                             initargs=(cfg, tiers, source)) as pool:
        for chunk in pool.map(run_seeds, batches):
            for r in chunk:
                if not r.ok and on_failure is not None:
                    on_failure(r)
            results.extend(chunk)
    return summarise(results, start, workers, cfg, time.perf_counter() - t0, tiers,
                     getattr(source, "config_hash", None))
