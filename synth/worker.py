"""Runs in pool worker processes: seeds in, serialised records (or failures) out.

Kept free of anyio/S3/files: the pipeline ships a list of seeds and gets back plain
tuples, which pickle cheaply across the process boundary.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass

import msgspec

from synth import warp_adapter
from synth.validate import tiers as validate
from synth.canonical import KEY_VERSION, canonical_key
from synth.gen.config import GENERATOR_NAME, GENERATOR_VERSION, GeneratorConfig
from synth.extract import extract_sources
from synth.gen.generator import GeneratedKernel, generate
from synth.launch import Launch
from synth.metadata import analyse
from synth.record import BackendSource, GeneratorInfo, Metadata, Record, Validation, encode_line
from synth.variants.source import SourcedKernel


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
    keep_ptx: bool = False  # store the PTX text (also enabled by the "keep-ptx" pseudo-tier)
    limits: validate.Limits = validate.Limits()
    # The kernel source hook: an object with ``kernel(seed)`` returning a ``SourcedKernel``
    # (e.g. synth.variants.source.VariantSource); None: the random generator.
    source: object | None = None

    def effective_tiers(self) -> tuple[str, ...]:
        return (*self.tiers, validate.KEEP_PTX) if self.keep_ptx else self.tiers


_settings: WorkerSettings | None = None


def init_worker(settings: WorkerSettings) -> None:
    """Pool initializer: Warp starts once per worker process."""
    global _settings
    _settings = settings
    warp_adapter.init_warp()
    if any(t != "codegen" for t in settings.effective_tiers()):
        validate.prepare_worker()


def build_record(seed: int, settings: WorkerSettings) -> Record:
    """The record for one seed, with the requested validation tiers; raises if Warp rejects it."""
    result = build_records([seed], settings)[0]
    if isinstance(result, BaseException):
        raise result
    return result


def build_records(seeds: list[int], settings: WorkerSettings) -> list[Record | Exception]:
    """Records for ``seeds`` in order (or the exception that rejected a seed).

    Every kernel's module stays open until the validation tiers are done with the batch,
    because the tiers compile all of the batch's kernels as one module (synth/validate/tiers.py).
    """
    with ExitStack() as modules:
        built: list[tuple[Record, object, Launch | None] | Exception] = []
        with validate.Timed(validate.STATS, "codegen", len(seeds)) as timed:
            for seed in seeds:
                try:
                    built.append(_codegen_record(seed, settings, modules))
                    timed.passed += 1
                except Exception as exc:  # noqa: BLE001 - a rejected kernel is this seed's outcome
                    built.append(exc)
        tiers = settings.effective_tiers()
        if all(t == "codegen" for t in tiers):
            return [b if isinstance(b, Exception) else b[0] for b in built]
        good = [b for b in built if not isinstance(b, Exception)]
        items = [validate.Item(record.seed, kernel, record.cuda.full, launch) for record, kernel, launch in good]
        outcomes = iter(validate.run_tiers(items, tiers, settings.limits))
        return [b if isinstance(b, Exception) else _with_outcome(b[0], next(outcomes)) for b in built]


def measure_tiers(seeds: list[int], settings: WorkerSettings, batch_size: int = 8) -> dict:
    """Per-tier cost per kernel (wall and CPU seconds in this process) and pass rates,
    building ``seeds`` in batches as a worker does: what ``jitsynth bench`` reports."""
    init_worker(settings)
    # Warm-up batch, not counted: a process builds clang's and NVRTC's precompiled headers
    # on its first compile (~3 s), once per worker lifetime.
    build_records(seeds[:1], settings)
    validate.STATS = validate.TierStats()
    for start in range(0, len(seeds), batch_size):
        build_records(seeds[start:start + batch_size], settings)
    return validate.STATS.summary()


def _with_outcome(record: Record, o: validate.Outcome) -> Record:
    validation = Validation(codegen=True, cuda_ptx=o.cuda_ptx, cpu_compile=o.cpu_compile, executed=o.executed,
                            execution=o.execution, errors=o.errors or None)
    return msgspec.structs.replace(record, validation=validation, ptx=o.ptx, examples=o.examples)


def _codegen_record(seed: int, settings: WorkerSettings, modules: ExitStack) -> tuple[Record, object, Launch | None]:
    """The record as far as codegen goes, the Warp kernel (its module left open) and its launch."""
    kernel = kernel_for(seed, settings)
    # A module name unique within the process; it never reaches the output because
    # Warp's generated names are normalised below.
    module = modules.enter_context(warp_adapter.KernelModule(
        kernel.source, f"jitsynth_gen_{os.getpid()}_{seed}", filename=f"{kernel.kernel_name}.py"))
    # A kernel launched with a block size (tiles) gets CUDA text built for that size by a
    # CUDA-target builder: tile builtins emit different code per target.
    sources = module.codegen(block_dim=kernel.launch.block_dim if kernel.launch else None)
    names = (kernel.kernel_name, *kernel.helper_names, *kernel.struct_names)
    # a real kernel's variant keeps the parent's enable_backward=False (then no adjoint to extract)
    backward = not isinstance(kernel, SourcedKernel) or kernel.backward
    cpu, cuda = extract_sources(sources.cpu, sources.cuda, kernel.kernel_name, names, backward)
    facts = analyse(kernel.source, kernel.kernel_name)
    record = Record(
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
            dedup_key_version=KEY_VERSION,
            **_origin(kernel, settings),
        ),
    )
    return record, getattr(module.pymodule, kernel.kernel_name), kernel.launch


def kernel_for(seed: int, settings: WorkerSettings) -> GeneratedKernel | SourcedKernel:
    """The kernel of ``seed``: from the configured source, else the generator."""
    if settings.source is None:
        return generate(seed, settings.generator)
    return settings.source.kernel(seed)  # type: ignore[attr-defined]


def _origin(kernel: GeneratedKernel | SourcedKernel, settings: WorkerSettings) -> dict:
    """The record metadata naming where the kernel came from."""
    if isinstance(kernel, GeneratedKernel):
        return {"generator": GeneratorInfo(GENERATOR_NAME, GENERATOR_VERSION, settings.generator.config_hash)}
    return kernel.metadata()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " | ")
    return f"{type(exc).__name__}: {text[:500]}"


def process_batch(seeds: list[int]) -> list[Outcome]:
    """Turn each seed into a record; a kernel Warp rejects becomes a Failed outcome."""
    if _settings is None:
        raise RuntimeError("worker not initialised")
    if _FAULTS:
        _fault_hook(seeds)
    try:
        results = build_records(seeds, _settings)
    except Exception as exc:  # noqa: BLE001 - e.g. the tiers' temp dir is gone: every seed fails, loudly
        return [Failed(seed, f"validation: {_describe(exc)}") for seed in seeds]
    return [Failed(seed, _describe(r)) if isinstance(r, Exception) else Produced(seed, r.id, encode_line(r))
            for seed, r in zip(seeds, results)]


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
