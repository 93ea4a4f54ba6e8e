"""How often real Warp code uses each builtin: the weights the generator draws builtins by.

``real_profile.json`` beside this module holds, for every builtin, the share of real
kernels that use it (``metadata.builtins`` as ``synth.metadata.analyse`` computes it),
measured on datasets made with ``jitsynth ingest`` (Warp's own examples and tests), and
the draw ``weights`` fitted to those shares: many builtins also come from structure
(guards, index wrapping, loop bounds), so drawing each with its real share would still
over- or under-shoot. ``fit`` generates kernels, compares each builtin's share with the
real one and scales its weight towards it (a damped multiplicative update, a few rounds).
Every weight stays >= ``MIN_WEIGHT``, which keeps every builtin the generator can emit
in reach (coverage).

Regenerate after a Warp upgrade, a generator change or a change to metadata:

    jitsynth ingest warp.examples warp.tests --out ./real
    python -m synth.gen.calibration ./real
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

import structlog

log = structlog.get_logger("jitsynth.calibration")
PROFILE = Path(__file__).with_name("real_profile.json")
FLOOR = 0.01  # a builtin real code never uses starts with this weight
MIN_WEIGHT = 0.001  # what fitting may lower a weight to: rare, never unreachable


@lru_cache(maxsize=1)
def _profile() -> dict:
    return json.loads(PROFILE.read_text())


@lru_cache(maxsize=1)
def profile_digest() -> str:
    """Part of every generator config hash (synth.gen.config)."""
    import blake3

    return blake3.blake3(PROFILE.read_bytes()).hexdigest(length=8)


def real_shares() -> dict[str, float]:
    return _profile()["builtins"]


_fitting: dict[str, float] | None = None  # weights under trial while ``fit`` runs


def builtin_weight(name: str) -> float:
    weights = _fitting if _fitting is not None else _profile().get("weights", {})
    if name in weights:
        return weights[name]
    return real_shares().get(name, 0.0) + FLOOR


def profile(urls: list[str]) -> dict:
    """The shares of the real records at ``urls`` (metadata recomputed from the source,
    so records ingested by an older metadata version count the same way)."""
    from sinks.read.reader import iter_records
    from synth.metadata import analyse

    used: Counter[str] = Counter()
    kernels = 0
    for url in urls:
        for record in iter_records(url):
            used.update(analyse(record["python_source"], record["kernel_name"]).builtins)
            kernels += 1
    shares = {name: round(n / kernels, 5) for name, n in sorted(used.items())}
    return {"kernels": kernels, "sources": "jitsynth ingest warp.examples warp.tests", "builtins": shares}


def generated_shares(seeds: int) -> dict[str, float]:
    from synth.gen.generator import generate
    from synth.metadata import analyse

    used: Counter[str] = Counter()
    for seed in range(seeds):
        kernel = generate(seed)
        used.update(analyse(kernel.source, kernel.kernel_name).builtins)
    return {name: n / seeds for name, n in used.items()}


def fit(shares: dict[str, float], rounds: int = 8, seeds: int = 1500, damping: float = 0.5) -> dict[str, float]:
    """Draw weights whose generated shares approach ``shares`` (see the module docstring).
    Choices interact (a builtin drawn more often crowds out others), so the update can
    overshoot: every round is scored by the builtin JSD and the best round's weights win."""
    from synth.quality.realism import jsd

    global _fitting
    weights = {name: share + FLOOR for name, share in shares.items()}
    best: tuple[float, dict[str, float]] = (float("inf"), dict(weights))
    try:
        for n in range(rounds):
            _fitting = weights
            got = generated_shares(seeds)
            score = jsd(got, shares)
            log.info("calibration round", round=n, jsd=round(score, 4))
            if score < best[0]:
                best = (score, dict(weights))
            for name in sorted(set(got) | set(shares)):
                ratio = (shares.get(name, 0.0) + 0.002) / (got.get(name, 0.0) + 0.002)
                weights[name] = min(50.0, max(MIN_WEIGHT, builtin_weight(name) * ratio ** damping))
    finally:
        _fitting = None
    return {name: round(w, 5) for name, w in sorted(best[1].items())}


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m synth.gen.calibration DATASET_URL...")
    data = profile(argv)
    data["weights"] = fit(data["builtins"])
    PROFILE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    # Run as ``python -m``, this file is ``__main__``, a second copy of the module: the
    # generator reads the weights under trial from ``synth.gen.calibration``, so fit there.
    from synth.gen.calibration import main as _main

    _main(sys.argv[1:])
