"""Runs in pool worker processes: seeds in, serialised records (or failures) out.

Kept free of anyio/S3/files: the pipeline ships a list of seeds and gets back plain
tuples, which pickle cheaply across the process boundary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from synth import warp_adapter
from synth.canonical import KEY_VERSION, canonical_key
from synth.config import GENERATOR_NAME, GENERATOR_VERSION, GeneratorConfig
from synth.extract import extract, normalise_names
from synth.generator import generate
from synth.metadata import analyse
from synth.record import BackendSource, GeneratorInfo, Metadata, Record, Validation, encode_line


@dataclass(frozen=True, slots=True)
class Produced:
    seed: int
    id: str
    line: bytes  # one JSONL line


@dataclass(frozen=True, slots=True)
class Failed:
    seed: int
    reason: str


Outcome = Produced | Failed


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    generator: GeneratorConfig
    producer: str
    tiers: tuple[str, ...] = ("codegen",)


_settings: WorkerSettings | None = None


def init_worker(settings: WorkerSettings) -> None:
    """Pool initializer: Warp starts once per worker process."""
    global _settings
    _settings = settings
    warp_adapter.init_warp()


def build_record(seed: int, settings: WorkerSettings) -> Record:
    cfg = settings.generator
    kernel = generate(seed, cfg)
    # A module name unique within the process; it never reaches the output because
    # Warp's generated names are normalised below.
    with warp_adapter.KernelModule(kernel.source, f"jitsynth_gen_{os.getpid()}_{seed}",
                                   filename=f"{kernel.kernel_name}.py") as module:
        sources = module.codegen()
    names = (kernel.kernel_name, *kernel.helper_names, *kernel.struct_names)
    cpu_full = normalise_names(sources.cpu, names)
    cuda_full = normalise_names(sources.cuda, names)
    cpu = extract(cpu_full, kernel.kernel_name, "cpu")
    cuda = extract(cuda_full, kernel.kernel_name, "cuda")
    facts = analyse(kernel.source, kernel.kernel_name)
    return Record(
        id=canonical_key(kernel.source),
        schema_version=1,
        seed=seed,
        producer=settings.producer,
        kernel_name=kernel.kernel_name,
        python_source=kernel.source,
        cpu=BackendSource(cpu.forward, cpu.backward, cpu.full),
        cuda=BackendSource(cuda.forward, cuda.backward, cuda.full),
        validation=Validation(codegen=True),
        metadata=Metadata(
            loc=facts.loc,
            n_params=facts.n_params,
            param_types=facts.param_types,
            features=facts.features,
            builtins=facts.builtins,
            complexity=facts.complexity,
            warp_version=warp_adapter.WARP_VERSION,
            generator=GeneratorInfo(GENERATOR_NAME, GENERATOR_VERSION, cfg.config_hash),
            dedup_key_version=KEY_VERSION,
        ),
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " | ")
    return f"{type(exc).__name__}: {text[:500]}"


def process_batch(seeds: list[int]) -> list[Outcome]:
    """Turn each seed into a record; a kernel Warp rejects becomes a Failed outcome."""
    if _settings is None:
        raise RuntimeError("worker not initialised")
    if _FAULTS:
        _fault_hook(seeds)
    outcomes: list[Outcome] = []
    for seed in seeds:
        try:
            record = build_record(seed, _settings)
        except Exception as exc:  # noqa: BLE001 - every rejection is recorded, never raised
            outcomes.append(Failed(seed, _describe(exc)))
        else:
            outcomes.append(Produced(seed, record.id, encode_line(record)))
    return outcomes


# Fault injection for the fault tests: ``JITSYNTH_FAULT_INJECT="segv:5,hang:9"`` makes the
# worker that gets seed 5 die of a real SIGSEGV and the one that gets seed 9 hang.
_FAULTS = os.environ.get("JITSYNTH_FAULT_INJECT", "")


def _fault_hook(seeds: list[int]) -> None:
    for item in _FAULTS.split(","):
        kind, _, seed = item.partition(":")
        if not seed or int(seed) not in seeds:
            continue
        if kind == "segv":
            import ctypes

            ctypes.string_at(0)  # dereference NULL: a genuine segmentation fault
        elif kind == "hang":
            import time

            time.sleep(3600)
