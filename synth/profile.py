"""Where a worker's time goes per kernel, stage by stage (``jitsynth bench --profile``).

Runs the worker's steps one at a time on the same seeds twice: ``before`` builds one
ModuleBuilder per target (what Warp's own load path does), ``after`` shares one builder
between the CPU and CUDA passes (what the worker does for plain kernels). Kernels launched
with a block size (tile kernels) always get a builder per target, in both modes, as in the
worker; ``jitsynth bench`` also profiles each kernel family alone, which shows that cost.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from typing import Any

import zstandard

from synth import warp_adapter
from synth.canonical import canonical_key
from synth.gen.config import GeneratorConfig
from synth.extract import extract, normalise_names
from synth.gen.generator import generate
from synth.metadata import analyse

STAGES = ("generate", "build_kernel", "build_adjoints", "emit_cpu", "emit_cuda", "extract", "metadata",
          "canonical_key", "json", "zstd")


def profile(seeds: list[int], shared_builder: bool, cfg: GeneratorConfig | None = None) -> dict[str, Any]:
    import msgspec

    cfg = cfg or GeneratorConfig()
    warp_adapter.init_warp()
    clock = time.perf_counter
    t: dict[str, float] = defaultdict(float)
    compressor = zstandard.ZstdCompressor(level=3)
    ok = 0
    wall0 = clock()
    for seed in seeds:
        t0 = clock()
        kernel = generate(seed, cfg)
        t1 = clock()
        t["generate"] += t1 - t0
        try:
            with warp_adapter.KernelModule(kernel.source, f"jitsynth_prof_{os.getpid()}_{seed}",
                                           filename=f"{kernel.kernel_name}.py") as module:
                t2 = clock()
                t["build_kernel"] += t2 - t1
                sources = module.codegen(shared_builder=shared_builder, timings=t,
                                         block_dim=kernel.launch.block_dim if kernel.launch else None)
        except Exception:  # noqa: BLE001 - rejected kernels cost what they cost
            continue
        t3 = clock()
        names = (kernel.kernel_name, *kernel.helper_names, *kernel.struct_names)
        cpu = extract(normalise_names(sources.cpu, names), kernel.kernel_name, "cpu")
        cuda = extract(normalise_names(sources.cuda, names), kernel.kernel_name, "cuda")
        t4 = clock()
        facts = analyse(kernel.source, kernel.kernel_name)
        t5 = clock()
        key = canonical_key(kernel.source)
        t6 = clock()
        line = msgspec.json.encode({"id": key, "python_source": kernel.source, "facts": facts.loc,
                                    "cpu": [cpu.forward, cpu.backward, cpu.full],
                                    "cuda": [cuda.forward, cuda.backward, cuda.full]})
        t7 = clock()
        compressor.compress(line)
        t8 = clock()
        for stage, a, b in (("extract", t3, t4), ("metadata", t4, t5), ("canonical_key", t5, t6), ("json", t6, t7),
                            ("zstd", t7, t8)):
            t[stage] += b - a
        ok += 1
    wall = clock() - wall0
    return {"kernels": len(seeds), "ok": ok, "kernels_per_s": round(len(seeds) / wall, 1),
            "ms_per_kernel": {s: round(1000 * t[s] / len(seeds), 3) for s in STAGES},
            "total_ms_per_kernel": round(1000 * wall / len(seeds), 2)}


def rss_growth(n: int, every: int = 1000, seed_start: int = 50_000_000) -> dict[str, Any]:
    """Worker RSS while building ``n`` records in one process (Warp modules are removed
    after each kernel; this shows whether anything else accumulates)."""
    import psutil

    from synth.worker import WorkerSettings, build_record, init_worker

    settings = WorkerSettings(GeneratorConfig(), "bench")
    init_worker(settings)
    proc = psutil.Process()
    samples = []
    for i, seed in enumerate(range(seed_start, seed_start + n)):
        try:
            build_record(seed, settings)
        except Exception:  # noqa: BLE001
            pass
        if i % every == 0 or i == n - 1:
            samples.append((i + 1, round(proc.memory_info().rss / 2**20, 1)))
    first_after_warmup = samples[1][1] if len(samples) > 1 else samples[0][1]
    return {"kernels": n, "rss_mb_samples": samples, "growth_mb_after_first_1000": round(samples[-1][1] -
            first_after_warmup, 1), "live_warp_modules": warp_adapter.live_module_count()}
