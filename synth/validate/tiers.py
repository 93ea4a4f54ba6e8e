"""Validation tiers beyond codegen, run by a worker over the kernels of one batch.

- ``ptx``: NVRTC compiles each record's own (normalised) CUDA text to PTX for
  ``PTX_ARCH``: no GPU or driver needed. Per record rather than per batch because Warp's
  NVRTC precompiled header already removes the fixed cost (measured: 0.30 s per kernel
  alone vs 0.27 s in a batch of 8), and because a per-record compile makes the kept PTX
  exactly that of the recorded source, independent of which seeds shared the batch.
- ``cpu-compile``: Warp's bundled clang builds ONE module holding every kernel of the
  batch (CPU seconds per kernel, warm: 0.52 alone, 0.41 in a batch of 8; the adjoint code
  is most of it). A batch that fails is bisected so only the failing kernels are marked.
- ``execute``: each compiled kernel runs on the CPU on seeded random inputs in a forked
  sandbox (synth/validate/sandbox.py); ``examples`` keeps the inputs and outputs.

Portability: the CPU build never gets ``-march=native`` (Warp's default flags carry it)
and FP contraction is off, so recorded outputs do not depend on the build machine's
instruction set; see ``CPU_OPTIONS``. Nothing here puts a time, path or pid into a record:
outcomes are a function of the kernel, so records stay byte-identical across runs (the
one exception is a kernel that runs for about ``Limits.exec_timeout`` seconds, which may
time out on a loaded machine and not on another; generated kernels run in microseconds).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import warp as wp

from synth.validate import examples as ex
from synth import warp_adapter
from synth.validate import sandbox
from synth.launch import Launch

TIERS = ("codegen", "ptx", "cpu-compile", "execute")
KEEP_PTX = "keep-ptx"  # pseudo-tier: store the PTX text in the record
PTX_ARCH = 75  # the oldest architecture CUDA 13 targets; its PTX JIT-compiles on any newer GPU
# Generic x86-64/aarch64 code, strict IEEE (no FMA contraction), block_dim 1 as wp.launch
# uses on CPU (another block_dim would be a different module variant and compile again).
CPU_OPTIONS = {"cpu_compiler_flags": "", "fuse_fp": False, "block_dim": 1}

_batch_names = itertools.count()
# Each worker gets its own temp folder, named by its pid: NVRTC's and clang's precompiled
# headers (~80 MB) and the tiers' work folders live there, and the pool kills workers
# (task timeout, shutdown) without cleanup, so the next worker to start removes the
# folders of dead pids (prepare_worker).
_WORKDIR_PREFIX = "jitsynth-validate-"


@dataclass(frozen=True, slots=True)
class Limits:
    exec_timeout: float = 10.0  # seconds per kernel in the sandbox
    exec_memory: int | None = 1 << 30  # address space the sandbox may add to the worker's
    examples: int = ex.N_EXAMPLES


@dataclass(slots=True)
class Item:
    """One kernel to validate: its Warp kernel (its module kept open by the caller)."""

    seed: int
    kernel: wp.Kernel
    cuda_source: str  # the normalised CUDA text that goes into the record
    launch: Launch | None = None  # how the execute tier launches it (None: the default convention)


@dataclass(slots=True)
class Outcome:
    cuda_ptx: bool | None = None
    cpu_compile: bool | None = None
    executed: bool | None = None
    execution: str | None = None  # ok | nonfinite | crashed | timeout | error | not-compiled
    errors: dict[str, str] = field(default_factory=dict)  # tier -> why it failed
    ptx: str | None = None
    examples: list[dict] | None = None


@dataclass(slots=True)
class TierStats:
    """Seconds spent per tier (wall, and CPU of this process) and pass counts."""

    wall: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    kernels: dict[str, int] = field(default_factory=dict)
    passed: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, Counter] = field(default_factory=dict)  # tier -> why kernels failed it

    def add(self, tier: str, wall: float, cpu: float, kernels: int, passed: int) -> None:
        for table, value in ((self.wall, wall), (self.cpu, cpu), (self.kernels, kernels), (self.passed, passed)):
            table[tier] = table.get(tier, 0) + value

    def summary(self) -> dict[str, dict[str, Any]]:
        return {t: {"kernels": n, "pass_rate": round(self.passed[t] / n, 4),
                    "wall_s_per_kernel": round(self.wall[t] / n, 4), "cpu_s_per_kernel": round(self.cpu[t] / n, 4),
                    "top_failures": self.reasons.get(t, Counter()).most_common(3)}
                for t, n in self.kernels.items() if n}


STATS = TierStats()  # per-process totals, read by synth.worker.measure_tiers


def _describe(exc: BaseException, diagnostics: str = "") -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    # The compiler's first error, without the file path (it holds a temp folder and pid).
    first = next((m.group(1) for m in re.finditer(r"(error[:(].*)", diagnostics)), None)
    return f"{type(exc).__name__}: {text}" + (f" ({first[:300]})" if first else "")


@contextlib.contextmanager
def _native_output() -> Iterator[list[str]]:
    """Capture what native code (clang, NVRTC) prints on fds 1 and 2: compile errors go
    into the record instead of flooding the producer's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    captured: list[str] = []
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            ctypes.CDLL(None).fflush(None)  # std::cout is buffered in C stdio
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


class Timed:
    """Adds one tier's wall and CPU seconds, kernels and passes to a TierStats."""

    def __init__(self, stats: TierStats, tier: str, kernels: int) -> None:
        self.stats, self.tier, self.kernels, self.passed = stats, tier, kernels, 0

    def __enter__(self) -> Timed:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stats.add(self.tier, time.perf_counter() - self.wall, time.process_time() - self.cpu,
                       self.kernels, self.passed)


def run_tiers(items: list[Item], tiers: tuple[str, ...] | list[str], limits: Limits | None = None,
              stats: TierStats | None = None) -> list[Outcome]:
    """Run the requested tiers over ``items``; one Outcome per item, in order."""
    limits = limits or Limits()
    stats = stats if stats is not None else STATS
    outcomes = [Outcome() for _ in items]
    if not items:
        return outcomes
    with tempfile.TemporaryDirectory(prefix=f"{_WORKDIR_PREFIX}{os.getpid()}-") as workdir:
        if "ptx" in tiers or KEEP_PTX in tiers:
            _ptx_tier(items, outcomes, KEEP_PTX in tiers, workdir, stats)
        if "cpu-compile" in tiers or "execute" in tiers:
            groups = _cpu_tier(items, outcomes, workdir, "execute" in tiers, stats)
            try:
                if "execute" in tiers:
                    _execute_tier(items, outcomes, groups, limits, stats)
            finally:
                for module, _, _ in groups:
                    module.unload()
    for outcome in outcomes:
        for tier, reason in outcome.errors.items():
            stats.reasons.setdefault(tier, Counter())[reason] += 1
    return outcomes


def _ptx_tier(items: list[Item], outcomes: list[Outcome], keep: bool, workdir: str, stats: TierStats) -> None:
    with Timed(stats, "ptx", len(items)) as timed:
        for n, (item, outcome) in enumerate(zip(items, outcomes)):
            folder = os.path.join(workdir, f"ptx{n}")
            os.mkdir(folder)
            try:
                with _native_output() as diagnostics:
                    ptx = warp_adapter.nvrtc_ptx(item.cuda_source, PTX_ARCH, folder)
            except Exception as exc:  # noqa: BLE001 - a compile error is this record's outcome
                outcome.cuda_ptx, outcome.errors["ptx"] = False, _describe(exc, "".join(diagnostics))
                continue
            outcome.cuda_ptx = ".entry" in ptx
            if not outcome.cuda_ptx:
                outcome.errors["ptx"] = "PTX has no .entry"
            timed.passed += bool(outcome.cuda_ptx)
            if keep:
                outcome.ptx = ptx


def _bisect(indices: list[int], attempt: Callable[[list[int]], None]) -> dict[int, str]:
    """Try ``attempt`` on all indices; on failure split in halves until the failing kernels
    fail alone (log2(n) extra compiles per bad kernel). The errors, by index."""
    try:
        with _native_output() as diagnostics:
            attempt(indices)
        return {}
    except Exception as exc:  # noqa: BLE001
        if len(indices) == 1:
            return {indices[0]: _describe(exc, "".join(diagnostics))}
    mid = len(indices) // 2
    return _bisect(indices[:mid], attempt) | _bisect(indices[mid:], attempt)


def _cpu_tier(items: list[Item], outcomes: list[Outcome], workdir: str, load: bool,
              stats: TierStats) -> list[tuple[Any, list[int], list[wp.Kernel]]]:
    """Compile (and load, to execute) the batch's kernels; the loaded groups."""
    loaded: list[tuple[Any, list[int], list[wp.Kernel]]] = []

    def attempt(indices: list[int]) -> None:
        name = f"jitsynth_batch_{next(_batch_names)}"
        module, copies = warp_adapter.batch_module(name, [items[i].kernel for i in indices], CPU_OPTIONS)
        folder = os.path.join(workdir, name)
        wp.compile_aot_module(module, device="cpu", module_dir=folder)
        if load:
            wp.load_aot_module(module, device="cpu", module_dir=folder)
            loaded.append((module, indices, copies))

    with Timed(stats, "cpu-compile", len(items)) as timed:
        errors = _bisect(list(range(len(items))), attempt)
        for i, outcome in enumerate(outcomes):
            outcome.cpu_compile = i not in errors
            if i in errors:
                outcome.errors["cpu-compile"] = errors[i]
        timed.passed = len(items) - len(errors)
    return loaded


def _execute_tier(items: list[Item], outcomes: list[Outcome], groups: list, limits: Limits, stats: TierStats) -> None:
    jobs = [(i, partial(ex.run_examples, kernel, items[i].seed, limits.examples, items[i].launch))
            for _, indices, copies in groups for i, kernel in zip(indices, copies)]
    with Timed(stats, "execute", len(items)) as timed:
        results = sandbox.run_isolated([job for _, job in jobs], limits.exec_timeout, limits.exec_memory)
        for outcome in outcomes:
            if not outcome.cpu_compile:
                outcome.executed, outcome.execution = False, "not-compiled"
        for (i, _), result in zip(jobs, results):
            outcome = outcomes[i]
            if result.status == "ok":
                outcome.executed, outcome.examples = True, result.value
                outcome.execution = "nonfinite" if ex.has_nonfinite(result.value) else "ok"
                timed.passed += 1
            else:
                outcome.executed, outcome.execution = False, result.status
                outcome.errors["execute"] = result.value


def prepare_worker() -> None:
    """Give this worker process its own temp folder (TMPDIR, which NVRTC reads too) and
    remove the folders of workers that no longer exist. Call before the first compile."""
    base = tempfile.gettempdir()
    sweep_stale_workdirs(base)
    own = os.path.join(base, f"{_WORKDIR_PREFIX}{os.getpid()}")
    os.makedirs(own, exist_ok=True)
    os.environ["TMPDIR"] = tempfile.tempdir = own


def sweep_stale_workdirs(base: str | None = None) -> None:
    """Remove the temp folders of worker processes that no longer exist (also worth
    calling once the pool is closed: the pool kills its workers, so they leave them)."""
    for entry in os.scandir(base or tempfile.gettempdir()):
        pid = entry.name[len(_WORKDIR_PREFIX):].split("-")[0] if entry.name.startswith(_WORKDIR_PREFIX) else ""
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
        except PermissionError:
            pass


def replay_records(records: list[dict]) -> list[list[dict]]:
    """Rebuild each record's kernel from its ``python_source``, compile them (one module,
    the same portable CPU options) and rerun every recorded example on its recorded
    inputs: the outputs, per record and example. Runs in this process (trusted records)."""
    with contextlib.ExitStack() as stack:
        kernels = []
        for n, record in enumerate(records):
            module = stack.enter_context(warp_adapter.KernelModule(
                record["python_source"], f"jitsynth_replay_{os.getpid()}_{n}", filename=f"{record['kernel_name']}.py"))
            kernels.append(getattr(module.pymodule, record["kernel_name"]))
        batch, copies = warp_adapter.batch_module(f"jitsynth_replay_{next(_batch_names)}", kernels, CPU_OPTIONS)
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix=_WORKDIR_PREFIX))
        wp.compile_aot_module(batch, device="cpu", module_dir=folder)
        wp.load_aot_module(batch, device="cpu", module_dir=folder)
        try:
            return [[ex.replay(kernel, example) for example in record["examples"] or []]
                    for kernel, record in zip(copies, records)]
        finally:
            batch.unload()
