"""Liveness pruning: the last pass of the generator, so every statement it emits matters.

Warp does no dead-code elimination: an assignment nobody reads still becomes C++ and
CUDA that a model learns from. This pass runs a backward liveness analysis over each
function of a generated module (structured control flow only: if/elif/else, for, while,
break, continue, return) and removes

- assignments (plain, augmented, component updates such as ``v.x = ...`` or
  ``wp.transform_set_translation(t, p)``) whose value no later statement can observe;
  an unread ``old = wp.atomic_add(...)`` keeps its atomic as a bare call;
- calls without effect, ``if`` statements left without a body, and loops whose body no
  longer writes an array or a value that is read after the loop;
- kernel parameters nothing reads, ``@wp.func`` helpers the kernel does not reach,
  ``@wp.struct`` types nothing names and struct fields nothing accesses.

Effects (the roots of liveness) are array stores and atomics, calls of void helpers
(they store into arrays), debug output (``print``, ``wp.printf``, ``wp.expect_*``) and
returns; for the kernel families also tile and volume stores, in-place tile builtins and
stores into arrays held by structs. A helper is reached when a reached function names it
(a call, or a builtin it is handed to: ``wp.tile_map(f, t)``); ``@wp.func_grad(f)``
functions stay with ``f``. The pass is a pure function of the source text, so generation stays
deterministic; its output is formatted by ``ast.unparse``.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterable

from synth.quality.modinfo import decorator_name

_OUTPUT_CALLS = frozenset({"print", "printf", "expect_eq", "expect_neq", "expect_near"})
# Builtins that write memory (arrays, volumes) or update a tile argument in place (which
# argument differs per builtin: tile_matmul's third, a solve's right-hand side, both of a
# sort's): kept whenever reached, and every argument they take is read. Conservative for
# the tile and volume families, whose kernels are live by construction (synth.quality.checks
# checks them); the plain generator never emits these.
_EFFECT_BUILTINS = re.compile(r"^(tile_store\w*|tile_atomic_\w+|tile_scatter_\w+|volume_store\w*|tile_assign|"
                              r"tile_axpy|tile_fft|tile_ifft|tile_sort|tile_matmul|tile_\w+_inplace|tile_stack_\w+)$")
# Builtins that update their first argument in place (tests/synth/gen/test_prune.py checks this
# against the void builtins of Warp's registry that the generator uses).
INPLACE = frozenset({"transform_set_translation", "transform_set_rotation", "transform_set_scale"})


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "wp":
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _reads(node: ast.AST | None, arrays: frozenset[str] = frozenset()) -> set[str]:
    """Names ``node`` reads. An element of an array parameter read at index ``s`` is the
    token ``a[s]``; any other use of the array (another index, passing it on) is ``a[*]``."""
    if node is None:
        return set()
    out: set[str] = set()
    indexed: set[int] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id in arrays:
            indexed.add(id(n.value))
            out.add(_element(n))
        elif isinstance(n, ast.Call) and _call_name(n).startswith("atomic_") and n.args and \
                isinstance(n.args[0], ast.Name) and n.args[0].id in arrays:
            # wp.atomic_add(a, i, j, v): element a[i, j] (cas has two values after the index)
            values = 2 if _call_name(n) == "atomic_cas" else 1
            indexed.add(id(n.args[0]))
            out.add(f"{n.args[0].id}[{', '.join(ast.unparse(a) for a in n.args[1:-values])}]")
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id != "wp" and id(n) not in indexed:
            out.add(f"{n.id}[*]" if n.id in arrays else n.id)
    return out


def _element(node: ast.Subscript) -> str:
    parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    return f"{ast.unparse(node.value)}[{', '.join(ast.unparse(p) for p in parts)}]"


def _root(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _target_names(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Name) for e in node.elts):
        return [e.id for e in node.elts]  # type: ignore[union-attr]
    return None


def _component_reads(target: ast.expr, arrays: frozenset[str]) -> set[str]:
    """Names an update of ``target`` reads besides its root (subscript indices)."""
    out: set[str] = set()
    node = target
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Subscript):
            out |= _reads(node.slice, arrays)
        node = node.value
    return out


class _FunctionPruner:
    def __init__(self, fn: ast.FunctionDef, void_helpers: set[str], inplace: set[str]) -> None:
        self.arrays = frozenset(a.arg for a in fn.args.args
                                if a.annotation is not None and "array" in ast.unparse(a.annotation))
        self.void_helpers = void_helpers
        self.inplace = inplace  # builtins that update their first argument
        # What memory holds when the function ends: every array element it stores.
        self.exit = {_element(t) for n in ast.walk(fn) if isinstance(n, (ast.Assign, ast.AugAssign))
                     for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if self.is_array_target(t)}

    def reads(self, node: ast.AST | None) -> set[str]:
        return _reads(node, self.arrays)

    def has_effect(self, node: ast.AST) -> bool:
        for n in ast.walk(node):
            if isinstance(n, ast.Call):
                name = _call_name(n)
                if name.startswith("atomic_") or name in _OUTPUT_CALLS or name in self.void_helpers \
                        or _EFFECT_BUILTINS.match(name):
                    return True
        return False

    def overwritten(self, call: ast.Call, live: set[str]) -> bool:
        """An atomic on an element that a later plain store overwrites before any read
        (an accumulator's elements are never plainly stored, so its atomics stay)."""
        if not _call_name(call).startswith("atomic_") or not call.args or not isinstance(call.args[0], ast.Name):
            return False
        element = next((r for r in self.reads(call) if r.startswith(call.args[0].id + "[")), None)
        return element in self.exit and element not in live and f"{call.args[0].id}[*]" not in live

    def is_array_target(self, target: ast.expr) -> bool:
        # ``a[i]`` of an array, or ``s.field[i]``: an array inside a struct (kept: conservative)
        return isinstance(target, ast.Subscript) and (
            (isinstance(target.value, ast.Name) and target.value.id in self.arrays)
            or isinstance(target.value, ast.Attribute))

    def run(self, body: list[ast.stmt]) -> list[ast.stmt]:
        return self.block(body, set(self.exit), None)[0]

    def block(self, stmts: list[ast.stmt], live: set[str], head: set[str] | None) -> tuple[list[ast.stmt], set[str]]:
        out: list[ast.stmt] = []
        for st in reversed(stmts):
            kept, live = self.stmt(st, live, head)
            out[0:0] = kept
        return out, live

    def _without(self, value: ast.expr, live: set[str]) -> tuple[list[ast.stmt], set[str]]:
        """A dead assignment goes; an atomic in its value stays, as a bare call (unless a
        later store overwrites the element it updates)."""
        if isinstance(value, ast.Call) and self.overwritten(value, live):
            return [], live
        if self.has_effect(value):
            return [ast.Expr(value)], live | self.reads(value)
        return [], live

    def stmt(self, st: ast.stmt, live: set[str], head: set[str] | None) -> tuple[list[ast.stmt], set[str]]:
        if isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            return self.assignment(st, live)
        if isinstance(st, ast.Expr):
            if not isinstance(st.value, ast.Call):
                return [], live
            if _call_name(st.value) in self.inplace and st.value.args:
                if _root(st.value.args[0]) in live:
                    return [st], live | self.reads(st.value)
                return self._without(st.value, live)
            if self.overwritten(st.value, live):
                return [], live
            return ([st], live | self.reads(st.value)) if self.has_effect(st.value) else ([], live)
        if isinstance(st, ast.If):
            body, lb = self.block(st.body, live, head)
            orelse, lo = self.block(st.orelse, live, head)
            if not body and not orelse:
                return [], live
            if not body:  # only the else side is left: ``if a >= b: ...`` for ``if a < b: pass else: ...``
                st.test, body, orelse = _negate(st.test), orelse, []
                inner = body[0] if len(body) == 1 and isinstance(body[0], ast.If) else None
                if inner is not None and not inner.orelse:  # what was an elif joins the test
                    st.test, body = ast.BoolOp(ast.And(), [st.test, inner.test]), inner.body
            st.body, st.orelse = body, orelse
            return [st], lb | lo | self.reads(st.test)
        if isinstance(st, (ast.For, ast.While)):
            return self.loop(st, live)
        if isinstance(st, ast.Return):
            return [st], self.exit | self.reads(st.value)
        if isinstance(st, (ast.Break, ast.Continue)):
            return [st], set(head or ())
        if isinstance(st, ast.Pass):
            return [], live
        return [st], live | self.reads(st)

    def assignment(self, st: ast.Assign | ast.AnnAssign | ast.AugAssign,
                   live: set[str]) -> tuple[list[ast.stmt], set[str]]:
        target = st.targets[0] if isinstance(st, ast.Assign) else st.target
        value = st.value
        if value is None:  # a bare annotation declares nothing Warp needs
            return [], live
        augmented = isinstance(st, ast.AugAssign)
        names = _target_names(target)
        if names is not None:
            if isinstance(value, ast.Call) and _call_name(value) == "tid":
                return [st], (live - set(names)) | self.reads(value)
            if not set(names) & live:
                return self._without(value, live)
            defined = set(names) if augmented else set()
            return [st], (live - set(names)) | self.reads(value) | defined
        if self.is_array_target(target):
            element = _element(target)  # type: ignore[arg-type]
            if element not in live and f"{target.value.id}[*]" not in live:  # type: ignore[attr-defined]
                return self._without(value, live)  # overwritten before anything reads it
            stored = {element} if augmented else set()
            return [st], (live - {element}) | stored | self.reads(value) | self.reads(target.slice)  # type: ignore[attr-defined]
        root = _root(target)
        if root is None or root in live:  # a component update keeps the rest of the value alive
            return [st], live | self.reads(value) | _component_reads(target, self.arrays)
        return self._without(value, live)

    def loop(self, st: ast.For | ast.While, live: set[str]) -> tuple[list[ast.stmt], set[str]]:
        bound = set(_target_names(st.target) or ()) if isinstance(st, ast.For) else set()
        per_iteration = self.reads(st.test) if isinstance(st, ast.While) else set()
        original = st.body
        head = live | per_iteration
        while True:  # the live set at the loop head grows to a fixed point
            body, body_live = self.block(copy.deepcopy(original), set(head), head)
            new_head = live | per_iteration | (body_live - bound)
            if new_head == head:
                break
            head = new_head
        if not body or not self.useful(body, live):
            return [], live
        st.body = body
        return [st], head | (self.reads(st.iter) if isinstance(st, ast.For) else set())

    def useful(self, body: Iterable[ast.stmt], live_after: set[str]) -> bool:
        """Does the body store to an array, call an effect, return, or write a value that
        is read after the loop? (A body that only advances its own counter is not.)"""
        for st in body:
            for n in ast.walk(st):
                if isinstance(n, ast.Return) or (isinstance(n, ast.expr) and self.has_effect(n)):
                    return True
                if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                    targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                    for t in targets:
                        if self.is_array_target(t) or set(_target_names(t) or [_root(t)]) & live_after:
                            return True
                if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and \
                        _call_name(n.value) in self.inplace and n.value.args and _root(n.value.args[0]) in live_after:
                    return True
        return False


_FLIP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}


def _negate(test: ast.expr) -> ast.expr:
    """The opposite condition, written as people write it: a single comparison flips its
    operator, anything else gets ``not``."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _FLIP:
        return ast.Compare(test.left, [_FLIP[type(test.ops[0])]()], test.comparators)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return test.operand
    return ast.UnaryOp(ast.Not(), test)


def _decorator(node: ast.AST) -> str:
    if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) or not node.decorator_list:
        return ""
    return decorator_name(node.decorator_list[0])


def _used_names(nodes: Iterable[ast.AST]) -> set[str]:
    return {n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name)}


def prune(source: str, kernel_name: str, inplace: Iterable[str] = INPLACE) -> str:
    """``source`` without dead code (see the module docstring); formatted by ast.unparse.
    Dropping a helper parameter drops its arguments, which can make more code dead, so
    the passes repeat until nothing changes."""
    text = _format(ast.parse(source))
    for _ in range(8):
        pruned = _prune_once(ast.parse(text), kernel_name, set(inplace))
        if pruned == text:
            break
        text = pruned
    return text


def _prune_once(tree: ast.Module, kernel_name: str, inplace: set[str]) -> str:
    funcs = [n for n in tree.body if _decorator(n) in ("func", "kernel")]
    void = {f.name for f in funcs if _decorator(f) == "func" and f.returns is None}
    for fn in funcs:
        fn.body = _FunctionPruner(fn, void, inplace).run(fn.body) or [ast.Pass()]
    kernel = next(f for f in funcs if f.name == kernel_name)
    used = _used_names(kernel.body)
    kernel.args.args = [a for a in kernel.args.args if a.arg in used]
    reached, frontier = set(), {kernel.name}
    while frontier:  # helpers the kernel calls, directly or through other helpers
        reached |= frontier
        calls = {_call_name(c) for f in funcs if f.name in frontier for c in ast.walk(f) if isinstance(c, ast.Call)}
        # ... or hand to a builtin (wp.tile_map(f, t), wp.tile_reduce(f, t), wp.static(f if ... else g))
        calls |= _used_names([f for f in funcs if f.name in frontier])
        frontier = {f.name for f in funcs if f.name in calls} - reached
    # Functions under other decorators (@wp.func_grad(f), @wp.func_replay(f)) belong to the
    # function they name and stay while it does.
    tree.body = [n for n in tree.body if not isinstance(n, ast.FunctionDef) or n.name in reached
                 or (_decorator(n) not in ("func", "kernel") and _used_names(n.decorator_list) & reached)]
    _drop_unused_helper_params(tree, [f for f in funcs if f.name in reached and f is not kernel])
    _prune_structs(tree)
    return _format(tree)


def _drop_unused_helper_params(tree: ast.Module, helpers: list[ast.FunctionDef]) -> None:
    """A parameter no overload of a helper reads goes, with the argument at every call."""
    by_name: dict[str, list[ast.FunctionDef]] = {}
    for fn in helpers:
        by_name.setdefault(fn.name, []).append(fn)
    for name, overloads in by_name.items():
        if len(overloads) > 1:  # overloads differ by parameter types: dropping one could merge them
            continue
        fn = overloads[0]
        unused = [k for k, a in enumerate(fn.args.args) if a.arg not in _used_names(fn.body)]
        if len(unused) == len(fn.args.args):
            unused = unused[1:]  # keep one: a call without arguments would read as a constant
        if not unused:
            continue
        first_default = len(fn.args.args) - len(fn.args.defaults)
        fn.args.defaults = [d for k, d in enumerate(fn.args.defaults, first_default) if k not in unused]
        fn.args.args = [a for k, a in enumerate(fn.args.args) if k not in unused]
        for call in (c for c in ast.walk(tree) if isinstance(c, ast.Call) and _call_name(c) == name):
            call.args = [a for k, a in enumerate(call.args) if k not in unused]


def _prune_structs(tree: ast.Module) -> None:
    """Fields nothing accesses go first, then structs nothing names (a nested struct named
    only by a removed field goes with it)."""
    accessed = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    structs = [n for n in tree.body if isinstance(n, ast.ClassDef) and _decorator(n) == "struct"]
    for struct in structs:
        fields = [f for f in struct.body if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name)]
        struct.body = [f for f in fields if f.target.id in accessed] or fields[:1]  # type: ignore[union-attr]
    while structs:
        others = [n for n in tree.body if n not in structs]
        named = _used_names(others) | {n for s in structs for n in _used_names(s.body) if n != s.name}
        unused = [s for s in structs if s.name not in named]
        if not unused:
            break
        structs = [s for s in structs if s not in unused]
        tree.body = [n for n in tree.body if n not in unused]


def _format(tree: ast.Module) -> str:
    """Top-level definitions two blank lines apart, as generated code always was."""
    parts = [ast.unparse(node) for node in tree.body]
    return "\n\n\n".join(parts) + "\n"
