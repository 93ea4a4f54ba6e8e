"""The one place that touches Warp's private API (``warp._src``).

Everything jitsynth needs from Warp beyond its public surface lives here, so a Warp
upgrade that moves an internal breaks exactly one module, and
``tests/synth/test_warp_adapter.py`` says so loudly.

What we use, and why:
- ``warp._src.context.user_modules``: Warp registers every ``@wp.kernel`` in a global
  module registry keyed by the Python module name. We build each kernel in a fresh,
  uniquely named in-memory module and must drop it afterwards, or a long-running worker
  grows without bound.
- ``warp._src.context.ModuleBuilder``: runs code generation for a module without
  compiling it (no clang, no NVRTC, no GPU). One builder serves both the CPU and the
  CUDA pass of a plain kernel: the builder's ``target`` is only consulted by tile/MathDx
  builtins, so building the adjoints twice would be wasted work; tile kernels (launched
  with a block size) get a builder per target (``KernelModule.codegen(block_dim=...)``).
- ``warp._src.context.builtin_functions`` with ``codegen.func_match_args`` and
  ``warp._src.types``: the builtin registry and Warp's own overload resolution, read by
  ``synth/gen/signatures.py`` through ``builtin_overloads`` / ``builtin_return_type``.
- ``ModuleHasher`` / ``ModuleBuilder(hasher=...)``, ``Module._get_live_kernels``,
  ``Module.load`` and ``Kernel.get_mangled_name``: ``jitsynth ingest`` generates one real
  kernel at a time out of an imported user module, finds kernels a module created, and
  blocks compilation while user code is imported (see the last section).
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass

import warp as wp
import warp._src.codegen as _wcodegen
import warp._src.context as _wctx
import warp._src.types as _wtypes

WARP_VERSION: str = wp.config.version

_initialised = False


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Warp's native library writes "CUDA driver not found" straight to fd 2 on init, in
    every worker; on the CPU-only machines we target that line is noise that breaks JSON
    logs. Exceptions still surface (they are raised after fd 2 is restored)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def init_warp() -> None:
    """Initialise Warp once per process, quietly (codegen needs no device)."""
    global _initialised
    if _initialised:
        return
    # Warp greets on init at LOG_INFO; a worker pool would print it once per worker.
    wp.config.log_level = getattr(wp, "LOG_WARNING", wp.config.log_level)
    # Portable, reproducible output: never bake the build machine's CPU into anything.
    wp.config.mode = "release"
    with _native_stderr_silenced():
        wp.init()
    set_overload_cache(True)
    _initialised = True


@dataclass(frozen=True, slots=True)
class GeneratedSources:
    """Warp's full generated sources for one Python module."""

    cpu: str
    cuda: str
    kernel_keys: tuple[str, ...]


class KernelModule:
    """A Python module built from source text, registered with Warp, removable again.

    Used as a context manager so the Python module, its ``linecache`` entry and
    Warp's registry entry are always removed, even when Warp rejects the kernel.
    """

    def __init__(self, source: str, module_name: str, filename: str | None = None) -> None:
        self.source = source
        self.module_name = module_name
        # Warp copies the file name into comments of the generated code, so it must be
        # deterministic (never the unique module name, which holds the worker's pid).
        self.filename = f"<jitsynth:{filename or module_name}>"
        self.pymodule: types.ModuleType | None = None

    def __enter__(self) -> KernelModule:
        # inspect.getsource (which Warp uses to parse kernels) reads linecache, so
        # registering the text there replaces writing a file and importing it.
        lines = self.source.splitlines(keepends=True)
        linecache.cache[self.filename] = (len(self.source), None, lines, self.filename)
        module = types.ModuleType(self.module_name)
        module.__file__ = self.filename
        sys.modules[self.module_name] = module
        self.pymodule = module
        exec(compile(self.source, self.filename, "exec"), module.__dict__)  # noqa: S102
        return self

    def __exit__(self, *exc: object) -> None:
        wmod = _wctx.user_modules.pop(self.module_name, None)
        if wmod is not None:
            try:
                # Warp records our module in the ``dependents`` of every module it uses
                # (warp.math, warp.utils ...); without detaching, those keep each kernel
                # module alive: ~140 KB leaked per kernel, 3 GB over 20,000 kernels.
                wmod._detach_references()
                wmod.unload()
            except Exception:  # noqa: BLE001 - cleanup must never mask the real error
                pass
        sys.modules.pop(self.module_name, None)
        linecache.cache.pop(self.filename, None)
        self.pymodule = None

    def warp_module(self) -> _wctx.Module:
        try:
            return _wctx.user_modules[self.module_name]
        except KeyError:
            raise ValueError("source defines no @wp.kernel") from None

    def codegen(self, shared_builder: bool = True, timings: dict[str, float] | None = None,
                block_dim: int | None = None) -> GeneratedSources:
        """Generate CPU and CUDA source. ``shared_builder=False`` builds one ModuleBuilder per
        target, as Warp's own load path does (kept for the profile's before/after);
        ``timings`` (seconds, accumulated) feeds ``jitsynth bench --profile``.

        One builder serves both targets only while the target does not matter: it is read
        by tile (and MathDx) builtins alone. A kernel launched with ``block_dim`` (a tile
        kernel) gets a builder per target, as ``wp.launch`` would build it: CPU with block
        size 1 (Warp's CPU default), CUDA with ``block_dim`` for ``INGEST_CUDA_ARCH`` without
        MathDx, the same settings ``codegen_kernel`` uses for real tile kernels."""
        clock = time.perf_counter
        wmod = self.warp_module()
        options = wmod.resolve_options(wp.config) | {"output_arch": None}
        cuda_options = options
        if block_dim is not None:
            shared_builder = False
            options, cuda_options = _target_options(wmod, "cpu", 1), _target_options(wmod, "cuda", block_dim)
        t = timings if timings is not None else {}
        with _wctx._codegen_lock:
            t0 = clock()
            builder = _wctx.ModuleBuilder(wmod, options, target="cpu")
            t1 = clock()
            cpu = builder.codegen("cpu")
            t2 = clock()
            if shared_builder:
                builder.target = "cuda"
            else:
                builder = _wctx.ModuleBuilder(wmod, cuda_options, target="cuda")
            t3 = clock()
            cuda = builder.codegen("cuda")
            t4 = clock()
        for stage, seconds in (("build_adjoints", t1 - t0 + t3 - t2), ("emit_cpu", t2 - t1), ("emit_cuda", t4 - t3)):
            t[stage] = t.get(stage, 0.0) + seconds
        keys = tuple(k.key for k in builder.kernels)
        return GeneratedSources(cpu=cpu, cuda=cuda, kernel_keys=keys)


# -- Overload resolution cache ---------------------------------------------------------
# Warp resolves every builtin call by trying each overload in turn (Signature.bind and
# type matching per candidate): about a third of all codegen time for our kernels. The
# choice depends only on (builtin, argument types, keyword types, outputs), so when all
# of those are plain type objects (hashable by value) the answer is memoised. Anything
# else (array instances, references, user functions) takes Warp's own path unchanged.
# tests/synth/test_warp_adapter.py checks the output is byte-identical with and without it.
_ORIGINAL_RESOLVE = _wcodegen.Adjoint.resolve_func
_resolve_cache: dict[tuple, object] = {}
_RESOLVE_CACHE_LIMIT = 100_000


def _cached_resolve_func(adj, func, arg_types, kwarg_types, min_outputs):  # noqa: ANN001, ANN202
    # Only Warp's global builtins: struct constructors are "builtin" Functions too, but
    # per module, and caching them would keep every struct's module alive.
    if (_wctx.builtin_functions.get(func.key) is not func or not all(isinstance(t, type) for t in arg_types)
            or not all(isinstance(t, type) for t in kwarg_types.values())):
        return _ORIGINAL_RESOLVE(adj, func, arg_types, kwarg_types, min_outputs)
    key = (id(func), tuple(arg_types), tuple(sorted(kwarg_types.items())), min_outputs)
    found = _resolve_cache.get(key)
    if found is None:
        found = _ORIGINAL_RESOLVE(adj, func, arg_types, kwarg_types, min_outputs)
        if len(_resolve_cache) < _RESOLVE_CACHE_LIMIT:
            _resolve_cache[key] = found
    return found


def set_overload_cache(enabled: bool) -> None:
    """Turn the memoised overload resolution on (the worker default) or off."""
    _resolve_cache.clear()
    _wcodegen.Adjoint.resolve_func = _cached_resolve_func if enabled else _ORIGINAL_RESOLVE


def live_module_count() -> int:
    """How many Warp modules are registered (a leak check for workers and tests)."""
    return len(_wctx.user_modules)


# -- Builtin registry (read by synth/gen/signatures.py) -----------------------------------
# ``warp._src.context.builtin_functions`` maps every builtin's name to a Function whose
# ``overloads`` carry ``input_types``, ``value_func``, ``defaults``, ``group`` and
# ``hidden``. The generator derives its expression productions from it, so a new Warp
# release widens the generator without a hand-typed list. Only plain data leaves here.


@dataclass(frozen=True, slots=True)
class BuiltinOverload:
    name: str
    group: str
    documented: bool  # Warp lists this overload in its documentation (not hidden)
    params: tuple[tuple[str, str], ...]  # (name, type): "float32", "vec3f", "array[float32]" or a
    # generic placeholder such as "Float", "Scalar", "vec_t", "Any"; "*args" for variadic
    optional: tuple[str, ...]  # parameters that have defaults and may be left out
    returns: str | None  # declared return type; None where Warp infers it from the arguments
    index: int  # position among the builtin's overloads (for builtin_return_type)


def _named_value_types() -> dict[str, type]:
    """Warp's public concrete value types by name (float32, vec3f, mat33d, quatf ...)."""
    named: dict[str, type] = {t.__name__: t for t in _wtypes.scalar_types}
    named["bool"] = bool
    for name in dir(_wtypes):
        t = getattr(_wtypes, name)
        if isinstance(t, type) and name == getattr(t, "__name__", None) and hasattr(t, "_wp_scalar_type_"):
            if not _wtypes.type_is_generic(t):
                named[name] = t
    return named


_NAMED: dict[str, type] | None = None


def _named() -> dict[str, type]:
    global _NAMED
    if _NAMED is None:
        _NAMED = _named_value_types()
    return _NAMED


def _type_name(t: object) -> str:
    if t is None:
        return "None"
    if t is int:
        return "int32"
    if t is float:
        return "float32"
    if t is bool:
        return "bool"
    if isinstance(t, (tuple, list)):
        return "tuple[" + ",".join(_type_name(x) for x in t) + "]"
    if _wtypes.is_array(t):
        return f"array[{_type_name(t.dtype)}]"
    name = getattr(t, "__name__", None) or repr(t)
    named = _named()
    if named.get(name) is t:
        return name
    if isinstance(t, type) and hasattr(t, "_wp_scalar_type_") and not _wtypes.type_is_generic(t):
        # Generic constructors return anonymous classes (transform_t of float32 ...).
        for candidate, ct in named.items():
            if ct is not bool and _wtypes.types_equal(t, ct):
                return candidate
    return name


def builtin_overloads() -> list[BuiltinOverload]:
    """Every overload of every Warp builtin, in registration order."""
    out: list[BuiltinOverload] = []
    for name, func in _wctx.builtin_functions.items():
        for index, o in enumerate(getattr(func, "overloads", None) or [func]):
            params = tuple(("*args" if o.variadic and pname == "args" else pname, _type_name(pt))
                           for pname, pt in (o.input_types or {}).items())
            vt = o.value_type
            returns = None if vt is None or _wtypes.type_is_generic(vt) else _type_name(vt)
            out.append(BuiltinOverload(name, func.group, not o.hidden, params, tuple(o.defaults or ()), returns, index))
    return out


def builtin_return_type(name: str, arg_types: tuple[str, ...], index: int | None = None) -> str | None:
    """What Warp's own overload resolution makes of ``name(arg_types...)``: the return
    type name ("None" for a void builtin), or None when no overload accepts the types.
    With ``index``, only that overload is tried (cheaper when instantiating it)."""
    named = _named()
    try:
        types = tuple(named[t] for t in arg_types)
    except KeyError:
        return None
    func = _wctx.builtin_functions.get(name)
    if func is None:
        return None
    overloads = getattr(func, "overloads", None) or [func]
    for o in overloads if index is None else overloads[index : index + 1]:
        if not o.variadic and len(o.input_types) < len(types):
            continue
        try:
            if not _wcodegen.func_match_args(o, types, {}):
                continue
            bound = o.signature.bind(*types)
        except TypeError:
            continue
        arg_map = dict(bound.arguments)
        if o.variadic and "args" in arg_map:
            arg_map["args"] = tuple(arg_map["args"])
        try:
            ret = o.value_func(arg_map, {k: None for k in arg_map}) if o.value_func else o.value_type
        except Exception:  # noqa: BLE001 - a value_func that rejects the types means "no"
            continue
        return _type_name(ret)
    return None


# -- Validation tiers (used by synth/validate/tiers.py) ----------------------------------------
# Compiling a Warp module costs ~0.5 s of clang or NVRTC before its first kernel, so the
# tiers compile the kernels of a whole worker batch as ONE module: a fresh ``Module`` that
# is never put in ``user_modules`` (nothing to leak), holding a copy of each kernel under a
# unique key. Helpers and structs come along through the builder as for any cross-module
# call; Warp gives every ``@wp.func`` a process-unique native name and emits each struct
# once per hash, so same-named helpers of different seeds do not collide.

import os as _os  # noqa: E402 - kept with the section that needs it

import warp._src.build as _wbuild  # noqa: E402


def kernel_params(kernel: wp.Kernel) -> list[tuple[str, type]]:
    """(name, Warp type) of each kernel parameter, as Warp resolved the annotations."""
    return [(arg.label, arg.type) for arg in kernel.adj.args]


def struct_fields(struct_type: object) -> dict[str, type]:
    """Field name -> resolved Warp type of a ``@wp.struct`` type."""
    return {name: var.type for name, var in struct_type.vars.items()}  # type: ignore[attr-defined]


def composite_layout(t: type) -> tuple[type, tuple[int, ...]]:
    """(scalar type, shape) of a vector / matrix / quaternion type; (t, ()) for a scalar."""
    return getattr(t, "_wp_scalar_type_", t), tuple(getattr(t, "_shape_", ()))


def batch_module(name: str, kernels: list[wp.Kernel], options: dict) -> tuple[_wctx.Module, list[wp.Kernel]]:
    """One unregistered Warp module holding a copy of each kernel (keys made unique)."""
    module = _wctx.Module(name, None)
    module.options.update(options)
    copies = [wp.Kernel(k.func, key=f"{k.key}_b{i}", module=module, options=dict(k.options))
              for i, k in enumerate(kernels)]
    return module, copies


def resolved_cpu_flags(module: _wctx.Module) -> str:
    """The flag string Warp's clang gets for ``module`` (module option over wp.config)."""
    return _wctx._resolve_cpu_compiler_flags(module.options["cpu_compiler_flags"], wp.config.cpu_compiler_flags)


def nvrtc_ptx(cuda_source: str, arch: int, workdir: str) -> str:
    """NVRTC PTX of a complete generated CUDA source text, with the options Warp's own
    build uses by default. The file name is fixed so the PTX depends only on the text."""
    options = _wctx.Module("jitsynth_ptx_options", None).resolve_options(wp.config)
    cu_path, ptx_path = _os.path.join(workdir, "kernel.cu"), _os.path.join(workdir, "kernel.ptx")
    with open(cu_path, "w", encoding="utf-8") as f:
        f.write(cuda_source)
    _wbuild.build_cuda(cu_path, arch, ptx_path, pch_dir=_wctx.runtime.get_nvrtc_pch_dir(), config=options["mode"],
                       optimization_level=options["optimization_level"] or 3, verify_fp=options["verify_fp"],
                       fast_math=options["fast_math"], fuse_fp=options["fuse_fp"], lineinfo=options["lineinfo"],
                       use_precompiled_headers=options["use_precompiled_headers"])
    with open(ptx_path, encoding="utf-8") as f:
        return f.read().rstrip("\0")


# -- Ingest of existing kernels (used by synth/ingest/worker.py and synth/ingest/loader.py) -------------------------
# Real modules are imported as they are (Warp registers their kernels in ``user_modules`` like any
# user's), then each kernel is generated alone: a ``ModuleHasher`` over just that kernel makes the
# ``ModuleBuilder`` emit it and what it calls, not the whole module. Real kernels use tiles and
# MathDx, whose builtins consult the builder's target and ``output_arch``, so each target gets its
# own builder. CUDA is generated as for a PTX build for ``INGEST_CUDA_ARCH`` (Warp's default PTX
# target) with MathDx off: Warp's own GPU path without libmathdx. That is deterministic and fast;
# with MathDx on, codegen would call libmathdx for LTO binaries (seconds to minutes per kernel)
# that are not part of the generated source anyway. ``output_arch=None`` would be the CPU path.
INGEST_CUDA_ARCH = 75
_NO_MATHDX = {"enable_mathdx_gemm": False, "enable_mathdx_fft": False, "enable_mathdx_solver": False}


def _target_options(module: _wctx.Module, target: str, block_dim: int | None) -> dict:
    """A module's options for one target as a launch with ``block_dim`` builds it: the CPU
    path (no output arch), or CUDA PTX for ``INGEST_CUDA_ARCH`` without MathDx."""
    options = module.resolve_options(wp.config, block_dim=block_dim)
    if target == "cpu":
        return options | {"output_arch": None}
    return options | {"output_arch": wp.config.ptx_target_arch or INGEST_CUDA_ARCH} | _NO_MATHDX


class ModuleLoadBlocked(RuntimeError):
    """A module tried to compile (``wp.launch``, ``wp.load_module``...) while being ingested."""


@contextlib.contextmanager
def module_loads_blocked() -> Iterator[None]:
    """Make any compile/load of a Warp module raise: importing user code must not run kernels."""
    original = _wctx.Module.load

    def _blocked(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise ModuleLoadBlocked(f"Warp module {self.name!r} was loaded (a kernel launched) during import")

    _wctx.Module.load = _blocked
    try:
        yield
    finally:
        _wctx.Module.load = original


def live_kernels() -> list[wp.Kernel]:
    """Every kernel object Warp still tracks, in all registered modules (``module="unique"`` too)."""
    return [k for wmod in list(_wctx.user_modules.values()) for k in wmod._get_live_kernels()]


@dataclass(frozen=True, slots=True)
class KernelCodegen:
    cpu: str
    cuda: str
    cpu_mangled: str  # the kernel's native name in each source: key + hash suffix
    cuda_mangled: str
    backward: bool  # whether Warp generated the adjoint (enable_backward)
    function_keys: tuple[str, ...]  # keys of the user functions emitted (callees first)
    functions: tuple[object, ...]  # their Python functions (None for native snippets)
    struct_keys: tuple[str, ...]
    structs: tuple[type, ...]  # the Python classes of the structs emitted


def concrete_kernel(kernel: wp.Kernel) -> wp.Kernel | None:
    """The kernel itself, or for a generic one its first concrete overload (None if it has none)."""
    if not kernel.is_generic:
        return kernel
    return kernel.overloads[sorted(kernel.overloads)[0]] if kernel.overloads else None


def codegen_kernel(kernel: wp.Kernel, block_dim: int | None = None, cpu_block_dim: int | None = None) -> KernelCodegen:
    """CPU and CUDA source of ``kernel`` alone (a concrete kernel) as Warp builds it for a launch:
    CUDA with ``block_dim`` (the launch's; None: the module's), CPU with ``cpu_block_dim``, by
    default Warp's rule for CPU launches (1, unless ``wp.config.enable_cpu_blocks``)."""
    if cpu_block_dim is None:
        cpu_block_dim = block_dim if (block_dim and wp.config.enable_cpu_blocks) else 1
    sources, mangled, builders = [], [], []
    with _wctx._codegen_lock:
        for target, bd in (("cpu", cpu_block_dim), ("cuda", block_dim)):
            options = _target_options(kernel.module, target, bd)
            hasher = _wctx.ModuleHasher([kernel], options)
            builder = _wctx.ModuleBuilder(kernel.module, options, hasher=hasher, target=target)
            sources.append(builder.codegen(target))
            mangled.append(kernel.get_mangled_name())
            builders.append(builder)
    funcs = list(dict.fromkeys([*builders[0].functions, *builders[1].functions]))
    structs = list(dict.fromkeys([*builders[0].structs, *builders[1].structs]))
    return KernelCodegen(sources[0], sources[1], mangled[0], mangled[1],
                         bool((options | kernel.options)["enable_backward"]),
                         tuple(f.key for f in funcs), tuple(f.func for f in funcs),
                         tuple(s.key for s in structs), tuple(s.cls for s in structs))
