"""The generator report: what N seeds of a config give once Warp has seen them.

For every seed the worker's own path (``synth.worker.build_record``: generate, Warp
codegen for CPU and CUDA, extraction, metadata, canonical key) runs in a process pool.
The report counts codegen-valid kernels (every failure is kept with its seed and Warp's
message), distinct canonical keys, builtin coverage per Warp group (against the builtins
Warp documents in that group), the LOC histogram, feature frequencies and throughput.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from synth.config import GeneratorConfig

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
    cpu_s: float  # process time spent on this seed


def _init(cfg: GeneratorConfig) -> None:
    from synth.worker import WorkerSettings, init_worker

    global _SETTINGS
    _SETTINGS = WorkerSettings(cfg, "report")
    init_worker(_SETTINGS)


_SETTINGS: Any = None


def run_seeds(seeds: list[int]) -> list[SeedResult]:
    """Pool task: one result per seed, failures included (never raised)."""
    from synth.canonical import canonical_key
    from synth.generator import generate
    from synth.metadata import analyse
    from synth.worker import build_record

    out = []
    for seed in seeds:
        t0 = time.process_time()
        try:
            record = build_record(seed, _SETTINGS)
        except Exception as exc:  # noqa: BLE001 - a rejected kernel is a counted result
            kernel = generate(seed, _SETTINGS.generator)
            facts = analyse(kernel.source, kernel.kernel_name)
            message = f"{type(exc).__name__}: {' | '.join(str(exc).split(chr(10)))[:800]}"
            out.append(SeedResult(seed, False, canonical_key(kernel.source), facts.loc, tuple(facts.builtins),
                                  tuple(facts.features), message, time.process_time() - t0))
            continue
        meta = record.metadata
        out.append(SeedResult(seed, True, record.id, meta.loc, tuple(meta.builtins), tuple(meta.features), "",
                              time.process_time() - t0))
    return out


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
    loc_histogram: dict[str, int] = field(default_factory=dict)
    loc_min: int = 0
    loc_median: float = 0.0
    loc_max: int = 0
    features: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds, "start": self.start, "workers": self.workers, "config_hash": self.config_hash,
            "warp_version": self.warp_version, "valid": self.valid, "validity_rate": self.validity_rate,
            "failures": self.failures, "distinct_keys": self.distinct_keys, "distinct_rate": self.distinct_rate,
            "coverage": self.coverage, "loc": {"min": self.loc_min, "median": self.loc_median, "max": self.loc_max,
                                               "histogram": self.loc_histogram},
            "features": self.features, "wall_s": round(self.wall_s, 2), "cpu_s": round(self.cpu_s, 2),
            "kernels_per_s": round(self.seeds / self.wall_s, 2) if self.wall_s else None,
            "kernels_per_cpu_s": round(self.seeds / self.cpu_s, 2) if self.cpu_s else None,
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


def summarise(results: list[SeedResult], start: int, workers: int, cfg: GeneratorConfig, wall_s: float) -> Report:
    from synth.signatures import table
    from synth.warp_adapter import WARP_VERSION

    results = sorted(results, key=lambda r: r.seed)
    rep = Report(len(results), start, workers, cfg.config_hash, WARP_VERSION, wall_s=wall_s)
    rep.valid = sum(r.ok for r in results)
    rep.failures = [{"seed": r.seed, "error": r.error} for r in results if not r.ok]
    rep.distinct_keys = len({r.key for r in results})
    used: Counter[str] = Counter()
    features: Counter[str] = Counter()
    for r in results:
        if r.ok:
            used.update(r.builtins)
            features.update(r.features)
    for group, names in table().documented.items():
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
    rep.cpu_s = sum(r.cpu_s for r in results)
    return rep


def generator_report(seeds: int, start: int = 0, workers: int | None = None, cfg: GeneratorConfig | None = None,
                     batch: int = 25, on_failure: Any = None) -> Report:
    """Run ``seeds`` seeds from ``start`` through Warp in ``workers`` processes."""
    cfg = cfg or GeneratorConfig()
    workers = max(1, workers or os.cpu_count() or 1)
    batches = [list(range(s, min(start + seeds, s + batch))) for s in range(start, start + seeds, batch)]
    results: list[SeedResult] = []
    t0 = time.perf_counter()
    # spawn: a fresh interpreter per worker, as the producer's pool does (Warp and fork mix badly).
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init, initargs=(cfg,)) as pool:
        for chunk in pool.map(run_seeds, batches):
            for r in chunk:
                if not r.ok and on_failure is not None:
                    on_failure(r)
            results.extend(chunk)
    return summarise(results, start, workers, cfg, time.perf_counter() - t0)
