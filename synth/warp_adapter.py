"""The one place that touches Warp's private API (``warp._src``).

Everything jitsynth needs from Warp beyond its public surface lives here, so a Warp
upgrade that moves an internal breaks exactly one module, and
``tests/test_warp_adapter.py`` says so loudly.

What we use, and why:
- ``warp._src.context.user_modules``: Warp registers every ``@wp.kernel`` in a global
  module registry keyed by the Python module name. We build each kernel in a fresh,
  uniquely named in-memory module and must drop it afterwards, or a long-running worker
  grows without bound.
- ``warp._src.context.ModuleBuilder``: runs code generation for a module without
  compiling it (no clang, no NVRTC, no GPU). One builder serves both the CPU and the
  CUDA pass: the builder's ``target`` is only consulted by tile/MathDx builtins, which
  the generator does not emit, so building the adjoints twice would be wasted work.
"""

from __future__ import annotations

import linecache
import sys
import types
from dataclasses import dataclass

import warp as wp
import warp._src.context as _wctx

WARP_VERSION: str = wp.config.version

_initialised = False


def init_warp() -> None:
    """Initialise Warp once per process, quietly (codegen needs no device)."""
    global _initialised
    if _initialised:
        return
    # Warp greets on init at LOG_INFO; a worker pool would print it once per worker.
    wp.config.log_level = getattr(wp, "LOG_WARNING", wp.config.log_level)
    # Portable, reproducible output: never bake the build machine's CPU into anything.
    wp.config.mode = "release"
    wp.init()
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

    def codegen(self) -> GeneratedSources:
        """Generate CPU and CUDA source with one shared ModuleBuilder."""
        wmod = self.warp_module()
        options = wmod.resolve_options(wp.config) | {"output_arch": None}
        with _wctx._codegen_lock:
            builder = _wctx.ModuleBuilder(wmod, options, target="cpu")
            cpu = builder.codegen("cpu")
            builder.target = "cuda"
            cuda = builder.codegen("cuda")
        keys = tuple(k.key for k in builder.kernels)
        return GeneratedSources(cpu=cpu, cuda=cuda, kernel_keys=keys)


def live_module_count() -> int:
    """How many Warp modules are registered (a leak check for workers and tests)."""
    return len(_wctx.user_modules)
