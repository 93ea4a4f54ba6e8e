"""Loading user modules inside ingest workers, and finding a discovered kernel in them.

Importing runs user code, so it only ever happens in pool workers (``synth/ingest/worker.py``).
Two attempts per file, both with Warp module loads blocked (a module that launches a
kernel at import fails fast instead of compiling it) and a time budget:

1. ``import``: the module as Python imports it (by dotted name for packages, by file
   location under a deterministic unique name otherwise).
2. ``lenient``, when the import fails: the file's definitions only. Top-level imports,
   ``def``/``class`` statements, assignments and ``wp.set_module_options`` calls run one by
   one (a failing one is skipped); loops, ``with`` blocks, bare calls and the
   ``if __name__ == "__main__"`` block do not. Third-party modules that are not installed
   (``pxr``, ``torch``, ``jax``...) are replaced by inert stubs; the record names them.

Changes a module makes to ``wp.config`` while loading are undone at once and re-applied
only while that module's kernels are generated, so one file cannot change another's code.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import importlib.abc
import importlib.util
import signal
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field

import warp as wp

from synth import warp_adapter
from synth.ingest.discover import IngestItem, Target

_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign,
         ast.AugAssign, ast.Pass)


class IngestFailure(Exception):
    """An item that cannot become a record; ``reason`` starts with a short category and ':'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotCreated(IngestFailure):
    """A kernel defined inside a function that the module did not create at import."""


class _Timeout(BaseException):  # a BaseException, so user code's ``except Exception`` cannot swallow it
    pass


def describe(exc: BaseException, limit: int | None = 300) -> str:
    text = str(exc).strip().replace("\n", " | ")[:limit]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class Loaded:
    module: types.ModuleType
    mode: str  # "import" or "lenient"
    stubbed: tuple[str, ...] = ()
    config: dict = field(default_factory=dict)  # wp.config values the module set while loading
    import_error: str | None = None  # why the plain import failed (lenient mode)
    statement_errors: dict[int, str] = field(default_factory=dict)  # first line -> error (lenient mode)


# -- wp.config isolation ----------------------------------------------------------------------------


def _config_snapshot() -> dict:
    return {k: v for k, v in vars(wp.config).items()
            if not k.startswith("_") and not callable(v) and not isinstance(v, (type, types.ModuleType))}


@contextlib.contextmanager
def _config_isolated(changes: dict) -> Iterator[None]:
    before = _config_snapshot()
    try:
        yield
    finally:
        after = _config_snapshot()
        changes.update({k: v for k, v in after.items() if before.get(k, object()) != v})
        for k, v in before.items():
            if after.get(k, object()) != v:
                setattr(wp.config, k, v)


@contextlib.contextmanager
def config_applied(changes: dict) -> Iterator[None]:
    """Re-apply a module's own ``wp.config`` changes while its kernels are generated."""
    saved = {k: getattr(wp.config, k) for k in changes if hasattr(wp.config, k)}
    for k, v in changes.items():
        setattr(wp.config, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(wp.config, k, v)


@contextlib.contextmanager
def _time_budget(seconds: float) -> Iterator[None]:
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expired(signum, frame):  # noqa: ANN001, ANN202, ARG001
        raise _Timeout(f"import took longer than {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Module-level prints (Python's and native printf's) go nowhere: stdout is not theirs."""
    import ctypes
    import io
    import os

    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def _on_path(entry: str | None, front: bool) -> Iterator[None]:
    if entry is None or entry in sys.path:
        yield
        return
    if front:
        sys.path.insert(0, entry)
    else:
        sys.path.append(entry)
    try:
        yield
    finally:
        if front and entry in sys.path:
            sys.path.remove(entry)
        # an import root stays on the path: the package's lazy imports need it later


# -- stubs for missing third-party modules (lenient mode) ---------------------------------------------


class _StubMeta(type):
    def __getattr__(cls, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return _stub_type(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        if "_jitsynth_stub" not in cls.__dict__:  # a user class derived from a stub: construct it normally
            return super().__call__(*args, **kwargs)
        if len(args) == 1 and not kwargs and callable(args[0]):
            return args[0]  # used as a decorator: leave the function alone
        return _stub_type(f"{cls.__qualname__}()")

    def __bool__(cls) -> bool:
        return False

    def __iter__(cls) -> Iterator:
        return iter(())

    def __getitem__(cls, item: object) -> type:
        return cls

    def __or__(cls, other: object) -> type:
        return cls

    __ror__ = __or__


def _stub_type(name: str) -> type:
    return _StubMeta(name.rsplit(".", 1)[-1], (), {"_jitsynth_stub": True, "__qualname__": name})


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return _stub_type(f"{self.__name__}.{name}")


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on ``sys.meta_path``: answers only for modules no real finder knows."""

    def __init__(self, protected: set[str]) -> None:
        self.protected = protected
        self.created: list[str] = []

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201
        if fullname.split(".", 1)[0] in self.protected:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=True)

    def create_module(self, spec):  # noqa: ANN001, ANN201
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module) -> None:  # noqa: ANN001
        self.created.append(module.__name__)


@contextlib.contextmanager
def guarded(config: dict) -> Iterator[None]:
    """Running a bit of user code after loading (a hoisted kernel's ``def``): quiet, no module
    loads, the module's own ``wp.config`` in force and nothing else changed afterwards."""
    with _quiet(), warp_adapter.module_loads_blocked(), config_applied(config), _config_isolated({}):
        yield


# -- loading ----------------------------------------------------------------------------------------


def _file_module_name(file: str) -> str:
    stem = file.rsplit("/", 1)[-1].removesuffix(".py")
    safe = "".join(c if c.isalnum() else "_" for c in stem)
    return f"jitsynth_ingest_{hashlib.sha1(file.encode()).hexdigest()[:10]}_{safe}"


def _filtered(body: list[ast.stmt]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, _KEEP):
            out.append(node)
        elif isinstance(node, ast.If):
            test = ast.unparse(node.test).replace("'", '"')
            if test in ('__name__ == "__main__"', '"__main__" == __name__'):
                continue
            node.body = _filtered(node.body) or [ast.Pass()]
            node.orelse = _filtered(node.orelse)
            out.append(node)
        elif isinstance(node, ast.Try):
            node.body = _filtered(node.body) or [ast.Pass()]
            for handler in node.handlers:
                handler.body = _filtered(handler.body) or [ast.Pass()]
            node.orelse, node.finalbody = _filtered(node.orelse), _filtered(node.finalbody)
            out.append(node)
        elif (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
              and getattr(node.value.func, "attr", getattr(node.value.func, "id", "")).startswith("set_module_option")):
            out.append(node)
    for node in out:
        ast.fix_missing_locations(node)
    return out


class Loader:
    """Per worker process: each file is loaded at most once (its outcome is cached)."""

    def __init__(self, targets: list[Target], import_timeout: float) -> None:
        self.targets = targets
        self.import_timeout = import_timeout
        self._cache: dict[str, Loaded | IngestFailure] = {}

    def load(self, item: IngestItem) -> Loaded:
        found = self._cache.get(item.file)
        if found is None:
            found = self._load(item)
            self._cache[item.file] = found
        if isinstance(found, IngestFailure):
            raise found
        return found

    def _load(self, item: IngestItem) -> Loaded | IngestFailure:
        target = self.targets[item.target]
        root = target.import_root if item.module else item.file.rsplit("/", 1)[0]
        with _on_path(root, front=item.module is None), _quiet():
            config: dict = {}
            try:
                with _config_isolated(config), warp_adapter.module_loads_blocked(), \
                        _time_budget(self.import_timeout):
                    module = self._import(item)
                return Loaded(module, "import", config=config)
            except (Exception, SystemExit, _Timeout) as exc:  # noqa: BLE001 - user code may raise anything
                import_error = describe(exc)
            config = {}
            try:
                with _config_isolated(config), warp_adapter.module_loads_blocked(), \
                        _time_budget(self.import_timeout):
                    loaded = self._lenient(item, target)
            except (Exception, SystemExit, _Timeout) as exc:  # noqa: BLE001
                return IngestFailure(f"import: {import_error} (definitions only: {describe(exc)})")
            loaded.config, loaded.import_error = config, import_error
            return loaded

    def _import(self, item: IngestItem) -> types.ModuleType:
        if item.module:
            return importlib.import_module(item.module)
        name = _file_module_name(item.file)
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, item.file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module

    def _lenient(self, item: IngestItem, target: Target) -> Loaded:
        protected = {"warp", (target.package or "").split(".", 1)[0]} - {""}
        finder = _StubFinder(protected)
        before = set(sys.modules)
        sys.meta_path.append(finder)
        errors: dict[int, str] = {}
        try:
            if item.module:
                name, spec = item.module, importlib.util.find_spec(item.module)
            else:
                name = _file_module_name(item.file) + "_defs"
                spec = importlib.util.spec_from_file_location(name, item.file)
            if spec is None or spec.origin != item.file:
                raise ImportError(f"{item.module or item.file} does not resolve to {item.file}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            with open(item.file, encoding="utf-8") as f:
                tree = ast.parse(f.read(), filename=item.file)
            for node in _filtered(tree.body):
                code = compile(ast.Module(body=[node], type_ignores=[]), item.file, "exec")
                try:
                    exec(code, module.__dict__)  # noqa: S102 - this is what ingesting user code means
                except (Exception, SystemExit) as exc:  # noqa: BLE001 - skip the statement, keep going
                    errors[node.lineno] = describe(exc)
        finally:
            sys.meta_path.remove(finder)
            if finder.created:  # modules imported against stubs must not serve later imports
                for added in set(sys.modules) - before:
                    if added != name:
                        sys.modules.pop(added, None)
        return Loaded(module, "lenient", tuple(sorted({n.split(".", 1)[0] for n in finder.created})),
                      statement_errors=errors)


# -- finding the kernel -----------------------------------------------------------------------------


def _matches(kernel: object, module: types.ModuleType, item: IngestItem) -> bool:
    func = getattr(kernel, "func", None)
    code = getattr(func, "__code__", None)
    return (code is not None and getattr(kernel, "generic_parent", None) is None
            and func.__globals__ is module.__dict__ and code.co_firstlineno == item.first_line)


def find_kernel(loaded: Loaded, item: IngestItem) -> tuple[wp.Kernel, int]:
    """The kernel object the module created for ``item`` and how many it created from that
    definition (a factory may run several times); raises IngestFailure if there is none."""
    module = loaded.module
    bound: list[wp.Kernel] = []
    for value in list(vars(module).values()):
        candidates = [value] if isinstance(value, wp.Kernel) else []
        if isinstance(value, type):
            candidates = [v for v in vars(value).values() if isinstance(v, wp.Kernel)]
        bound += [k for k in candidates if _matches(k, module, item) and k not in bound]
    others = sorted((k for k in warp_adapter.live_kernels() if _matches(k, module, item) and k not in bound),
                    key=lambda k: (k.key, str(sorted(k.options.items()))))
    found = bound + others
    if found:
        return found[0], len(found)
    failed = [e for line, e in sorted(loaded.statement_errors.items()) if line <= item.line]
    if item.nested:
        outer = item.qualname.split(".<locals>.", 1)[0]
        raise NotCreated(f"closure: kernel is defined inside {outer}() and created only when it runs")
    if loaded.mode == "lenient" and failed:
        raise IngestFailure(f"import: {loaded.import_error}; its definition failed: {failed[-1]}")
    raise IngestFailure("conditional: the module did not create this kernel at import "
                        "(defined under a condition that did not hold, or replaced)")
