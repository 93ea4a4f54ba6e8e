"""Kernels defined inside functions that capture nothing: define them at module scope.

A ``@wp.kernel`` written inside a function (a test body, a factory) exists only once that
function runs, and ingest never calls user functions. But when the kernel uses nothing of
the enclosing function (no closure variables in its body, and no enclosing local in its
decorators, annotations or defaults), it means exactly what it would mean at module
level: its names resolve in the module's globals, as Warp resolves them. Such a kernel is
defined again from its own source lines, with the module's globals, and generated like
any other (``metadata.source.hoisted``). A kernel that captures something stays a
``closure:`` failure naming what it captures.
"""

from __future__ import annotations

import ast
import functools
import types

import warp as wp

from synth.ingest.discover import IngestItem
from synth.ingest.loader import IngestFailure, Loaded, guarded


@functools.lru_cache(maxsize=64)
def module_tree(file: str) -> tuple[str, ast.Module] | None:
    """(text, AST) of a source file, or None if it cannot be read."""
    try:
        with open(file, encoding="utf-8") as f:
            text = f.read()
        return text, ast.parse(text, filename=file)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


@functools.lru_cache(maxsize=16)
def _code_objects(file: str) -> dict[tuple[str, int], types.CodeType]:
    parsed = module_tree(file)
    out: dict[tuple[str, int], types.CodeType] = {}
    if parsed is None:
        return out
    stack = [compile(parsed[0], file, "exec")]
    while stack:
        code = stack.pop()
        out.setdefault((code.co_name, code.co_firstlineno), code)
        stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return out


def _locate(tree: ast.Module, item: IngestItem) -> tuple[ast.FunctionDef, list[ast.AST]] | None:
    """The kernel's ``def`` node and the functions enclosing it (outermost first)."""

    def visit(node: ast.AST, chain: list[ast.AST]) -> tuple[ast.FunctionDef, list[ast.AST]] | None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child.lineno == item.line \
                    and child.name == item.name:
                return child, chain
            inner = chain + [child] if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) \
                else chain
            found = visit(child, inner)
            if found:
                return found
        return None

    return visit(tree, [])


def _bound_in(func: ast.AST, skip: ast.AST) -> set[str]:
    """Names local to an enclosing function: its parameters and what its body binds (not
    counting the kernel's own body)."""
    names: set[str] = set()
    stack = [func]
    while stack:
        node = stack.pop()
        if node is skip:
            names.add(node.name)
            continue
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not func:
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".", 1)[0] for a in node.names}
        stack += list(ast.iter_child_nodes(node))
    return names


def _evaluated_outside(node: ast.FunctionDef) -> set[str]:
    """Names the enclosing scope evaluates when the ``def`` runs: decorators, annotations, defaults."""
    exprs: list[ast.AST] = [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]
    args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg]
    exprs += [a.annotation for a in args if a is not None and a.annotation is not None]
    if node.returns is not None:
        exprs.append(node.returns)
    return {n.id for e in exprs if e is not None for n in ast.walk(e) if isinstance(n, ast.Name)}


def hoist_kernel(loaded: Loaded, item: IngestItem) -> wp.Kernel:
    """The nested kernel defined at module scope, or IngestFailure("closure: ...")."""
    outer = item.qualname.split(".<locals>.", 1)[0]
    parsed = module_tree(item.file)
    located = _locate(parsed[1], item) if parsed else None
    code = _code_objects(item.file).get((item.name, item.first_line))
    if located is None or code is None:
        raise IngestFailure(f"closure: kernel is defined inside {outer}() and created only when it runs")
    node, chain = located
    enclosing = set().union(*(_bound_in(f, node) for f in chain)) if chain else set()
    captured = set(code.co_freevars) | (_evaluated_outside(node) & enclosing)
    if captured:
        raise IngestFailure(f"closure: kernel uses {', '.join(sorted(captured))} of {outer}(), "
                            "so it exists only when that runs")
    namespace: dict[str, object] = {}
    module_code = compile(ast.Module(body=[node], type_ignores=[]), item.file, "exec")
    try:
        with guarded(loaded.config):
            exec(module_code, loaded.module.__dict__, namespace)  # noqa: S102 - the kernel's own def statement
    except IngestFailure:
        raise
    except Exception as exc:  # noqa: BLE001
        raise IngestFailure(f"closure: defining the kernel at module scope failed: {type(exc).__name__}: "
                            f"{str(exc)[:200]}") from exc
    kernel = namespace.get(item.name)
    if not isinstance(kernel, wp.Kernel):
        raise IngestFailure(f"closure: {item.name} is not a Warp kernel once defined at module scope")
    return kernel
