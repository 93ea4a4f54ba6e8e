"""Corpus figures for ``jitsynth report``: quality totals, and how much a corpus looks like another.

Both sides of a comparison are measured the same way, from ``python_source`` and the kernel
name: ``synth.quality.checks.check_kernel`` for quality and ``synth.metadata.analyse`` for features,
builtins, LOC and parameter count (recomputed for real records too, so a dataset ingested by an
older jitsynth is measured by today's definitions).

Builtin frequencies are *kernels using each builtin*: ``metadata.builtins`` is a set per kernel
(an operator counts as the builtin it lowers to, ``+`` is ``add``), so a kernel calling
``wp.dot`` five times counts once. The Jensen-Shannon divergence (base 2, 0 = same, 1 =
disjoint) is taken between the two corpora's builtin distributions so normalised.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import structlog

from synth.metadata import analyse
from synth.quality.checks import KernelQuality, QualityTotals, check_kernel

log = structlog.get_logger("jitsynth.realism")


def jsd(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon divergence in bits between two unnormalised count maps (0 if either is empty)."""
    sp, sq = sum(p.values()), sum(q.values())
    if not sp or not sq:
        return 0.0
    total = 0.0
    for key in p.keys() | q.keys():
        a, b = p.get(key, 0) / sp, q.get(key, 0) / sq
        m = (a + b) / 2
        total += (a * math.log2(a / m) if a else 0.0) + (b * math.log2(b / m) if b else 0.0)
    return max(0.0, min(1.0, total / 2))


def safe_check(source: str, kernel_name: str, quiet: bool = False) -> KernelQuality | None:
    """``check_kernel``, or None for a source it cannot read: one bad record must not end a report.

    ``quiet`` in pool workers, whose structlog is not configured (it would print to stdout);
    the caller counts the None as unreadable either way."""
    try:
        return check_kernel(source, kernel_name)
    except (SyntaxError, LookupError, RecursionError, ValueError) as exc:
        if not quiet:
            log.warning("quality check skipped", kernel=kernel_name, error=f"{type(exc).__name__}: {exc}")
        return None


@dataclass(slots=True)
class CorpusFigures:
    kernels: int = 0
    quality: QualityTotals = field(default_factory=QualityTotals)
    builtins: Counter[str] = field(default_factory=Counter)  # kernels using each builtin
    features: Counter[str] = field(default_factory=Counter)  # kernels with each feature
    locs: list[int] = field(default_factory=list)
    n_params: list[int] = field(default_factory=list)
    ptx: Counter[bool] = field(default_factory=Counter)  # checked kernels by NVRTC outcome
    cpu_compile: Counter[bool] = field(default_factory=Counter)
    execution: Counter[str] = field(default_factory=Counter)

    def add(self, quality: KernelQuality | None, builtins: Iterable[str], features: Iterable[str], loc: int,
            n_params: int, validation: Mapping[str, Any] | None = None) -> None:
        self.kernels += 1
        self.quality.add(quality)
        self.builtins.update(set(builtins))
        self.features.update(set(features))
        self.locs.append(loc)
        self.n_params.append(n_params)
        validation = validation or {}
        if validation.get("cuda_ptx") is not None:
            self.ptx[bool(validation["cuda_ptx"])] += 1
        if validation.get("cpu_compile") is not None:
            self.cpu_compile[bool(validation["cpu_compile"])] += 1
        if validation.get("execution"):
            self.execution[validation["execution"]] += 1

    def add_source(self, source: str, kernel_name: str, validation: Mapping[str, Any] | None = None) -> None:
        """Measure one kernel from its module source (how real records are measured)."""
        try:
            facts = analyse(source, kernel_name)
        except SyntaxError as exc:
            log.warning("unreadable source skipped", kernel=kernel_name, error=str(exc))
            self.quality.add(None)
            return
        self.add(safe_check(source, kernel_name), facts.builtins, facts.features, facts.loc, facts.n_params,
                 validation)

    def as_dict(self) -> dict[str, Any]:
        def rate(c: Counter[bool]) -> dict[str, Any]:
            checked = c[True] + c[False]
            return {"checked": checked, "passed": c[True], "rate": round(c[True] / checked, 4) if checked else None}

        n = self.kernels or 1
        return {
            "kernels": self.kernels,
            "quality": self.quality.as_dict(),
            "feature_shares": {k: round(v / n, 4) for k, v in sorted(self.features.items(), key=lambda kv: -kv[1])},
            "loc_median": median(self.locs) if self.locs else None,
            "param_median": median(self.n_params) if self.n_params else None,
            "builtin_kernels": dict(self.builtins.most_common()),
            "validation": {"ptx": rate(self.ptx), "cpu_compile": rate(self.cpu_compile),
                           "execution": dict(self.execution.most_common())},
        }


def records_figures(records: Iterable[Mapping[str, Any]]) -> CorpusFigures:
    """Figures of committed records (e.g. ``iter_records`` of an ingest of warp.examples)."""
    figures = CorpusFigures()
    for record in records:
        figures.add_source(record["python_source"], record["kernel_name"], record.get("validation"))
    return figures
