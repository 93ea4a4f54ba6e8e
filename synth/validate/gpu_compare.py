"""CUDA vs CPU on the same kernels and inputs (issue 6). NEEDS A GPU.

Run it where ``wp.get_cuda_device_count() > 0`` (README: GPU checks has the figures measured):

    python -m synth.validate.gpu_compare --seeds 0:200 [--family tile] [--device cuda:0] [--rtol 1e-5] [--atol 1e-6]

For each seed it builds the record as a worker does with ``--validate cpu-compile,execute``
(portable CPU build, recorded examples), then launches the same kernel, built by Warp's
normal CUDA path, on the GPU with each example's recorded inputs, and compares every
output array with the CPU's: ``exact`` (bitwise), ``close`` (within rtol/atol, NaN where
the CPU had NaN), or ``differ``. ``close`` is expected: the GPU contracts a*b+c into FMA
and float atomics from many threads land in another order. The summary is logged as JSON.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import structlog

log = structlog.get_logger("jitsynth.gpu_compare")


def _as_array(encoded: dict) -> np.ndarray:
    """The numbers of an encoded output, flat: an array's elements, or every number of an
    object's recorded contents (a volume a kernel stored into), in key order."""
    def leaves(v):  # noqa: ANN001, ANN202
        if isinstance(v, dict):
            return [x for k in sorted(v) for x in leaves(v[k])]
        if isinstance(v, list):
            return [x for item in v for x in leaves(item)]
        return [float(v) if isinstance(v, str) else v]

    return np.array(leaves(encoded["data"]), dtype=np.float64)


def compare(cpu: dict, gpu: dict, rtol: float, atol: float) -> str:
    """exact | close | differ, for the output arrays of one example."""
    if cpu == gpu:
        return "exact"
    for name, enc in cpu.items():
        a, b = _as_array(enc), _as_array(gpu[name])
        if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
            return "differ"
    return "close"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0:100", help="half-open range start:end")
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--atol", type=float, default=1e-6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--family", default=None, help="only kernels of this family (tile, geometry ...)")
    args = parser.parse_args()

    import warp as wp

    from synth import warp_adapter
    from synth.validate import examples
    from synth.gen.config import GeneratorConfig
    from synth.worker import WorkerSettings, build_records, init_worker

    cfg = GeneratorConfig() if args.family is None else GeneratorConfig(families={args.family: 1.0})
    settings = WorkerSettings(cfg, "gpu-compare", ("codegen", "cpu-compile", "execute"))
    init_worker(settings)
    if wp.get_cuda_device_count() == 0:
        raise SystemExit("no CUDA device: this comparison needs a GPU")
    start, end = (int(x) for x in args.seeds.split(":"))
    seeds = list(range(start, end))
    verdicts: Counter[str] = Counter()
    differing: list[int] = []
    for first in range(0, len(seeds), args.batch):
        for record in build_records(seeds[first:first + args.batch], settings):
            if isinstance(record, Exception) or not record.examples:
                verdicts["no-cpu-run"] += 1
                continue
            name = f"jitsynth_gpu_{record.seed}"
            with warp_adapter.KernelModule(record.python_source, name, filename=f"{record.kernel_name}.py") as m:
                kernel = getattr(m.pymodule, record.kernel_name)
                try:
                    runs = [examples.replay(kernel, ex, args.device) for ex in record.examples]
                except Exception as exc:  # noqa: BLE001 - a GPU failure is a verdict, not a stop
                    verdicts["gpu-error"] += 1
                    log.warning("gpu run failed", seed=record.seed, error=str(exc)[:300])
                    continue
            worst = max((compare(ex["outputs"], gpu, args.rtol, args.atol) for ex, gpu in zip(record.examples, runs)),
                        key=("exact", "close", "differ").index)
            verdicts[worst] += 1
            if worst == "differ":
                differing.append(record.seed)
    total = sum(verdicts.values())
    agree = (verdicts["exact"] + verdicts["close"]) / max(1, total - verdicts["no-cpu-run"])
    log.info("cuda vs cpu", kernels=total, agreement=round(agree, 4), verdicts=dict(verdicts),
             differing_seeds=differing[:50], rtol=args.rtol, atol=args.atol, device=args.device)


if __name__ == "__main__":
    main()
