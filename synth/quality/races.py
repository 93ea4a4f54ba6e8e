"""Static race check of one Warp kernel: every array it touches must have ONE role.

The contract (issue 19), checked on source text only, for every array the kernel touches
(its array parameters and array fields of its struct parameters, followed through local
aliases and into ``@wp.func`` helpers the array is passed to):

- *input*: read anywhere (``a[j]``, or passed whole to a builtin such as ``wp.sample_cdf``),
  never written: no store, no augmented assignment, no atomic.
- *owned output*: every access (store, augmented assignment, read, atomic, including
  ``atomic_cas``/``atomic_exch``) is at the thread's own element: the index is exactly the
  names unpacked from ``wp.tid()``, in order (``out[tid]``, ``out[i, j]``); inside a helper,
  the helper's parameters that received the caller's own index names.
- *accumulator*: written only by atomics of ONE commutative class ({add, sub}, {min}, {max},
  {and}, {or}, {xor}) at any index, never read, never plainly stored, and the atomic's
  returned old value unused (an expression statement, or assigned to a dead local).

Tile kernels (``wp.launch_tiled``) work a tile per block. A ``tile_store`` (or
``tile_load``) whose offset is the block's own tile is an own store (read): every component
is the literal ``0``, or one ``wp.tid()`` name, alone or times a module-level constant or an int
literal (``offset=(i * TILE_M, j * TILE_N)``), the names in launch order, and every tid name is
there except that the last may be missing when no tile offset of the function mentions it
(it is then the lane ``launch_tiled`` adds, used for per-thread work). A missing offset is
element 0 of every block: not own. ``tile_store_indexed`` is own when, besides, its index
tile is a ``wp.tile_arange`` (distinct indices: a permutation within the tile). Any other
``tile_load`` reads the whole array (an input); ``tile_atomic_add(_indexed)`` is an atomic
add at any element (an accumulator).

Anything else is a violation: the result would depend on thread scheduling. Own-index names
that are reassigned anywhere in their function lose their status (conservative), as does
an index that is not literally those names (``out[tid + 0]`` is "other"). ``a.shape``,
``len(a)`` are not element reads; ``wp.zeros`` locals are thread-local and ignored.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from synth.quality.liveness import dead_statements
from synth.quality.modinfo import Module, array_ndim, bound_names, index_list, params, target_names, wp_call

_CLASSES = {"add": "add", "sub": "add", "min": "min", "max": "max", "and": "and", "or": "or", "xor": "xor"}
_NOT_ELEMENT_READS = {"len"}
_MAX_DEPTH = 8  # helper call chains followed (Warp has no recursion; this only bounds a malformed module)
# Tile memory ops that take an offset -> its positional index (the array is argument 0).
_TILE_OFFSET_ARG = {"tile_load": 2, "tile_store": 2, "tile_store_indexed": 3}


def _argument(call: ast.Call, keyword: str, position: int) -> ast.expr | None:
    for k in call.keywords:
        if k.arg == keyword:
            return k.value
    return call.args[position] if len(call.args) > position else None


def _param_names(fn: ast.FunctionDef) -> list[str]:
    return [a.arg for a in params(fn)]


@dataclass(frozen=True, slots=True)
class Access:
    kind: str  # read | read-all | store | augassign | atomic
    op: str  # atomic_* suffix ("add", "cas"...) for atomics, else ""
    own: bool
    result_used: bool
    function: str
    line: int

    def describe(self) -> str:
        what = f"atomic_{self.op}" if self.kind == "atomic" else self.kind
        used = " (result used)" if self.result_used else ""
        return f"{what}@{'own' if self.own else 'other'}{used} in {self.function}:{self.line}"


@dataclass(frozen=True, slots=True)
class RaceViolation:
    array: str  # kernel parameter name, or "param.field" for a struct's array field
    reason: str


@dataclass(frozen=True, slots=True)
class RaceReport:
    roles: dict[str, str]  # array -> input | owned | accumulator | violation
    violations: tuple[RaceViolation, ...]
    accesses: dict[str, tuple[Access, ...]]


@dataclass(slots=True)
class _Env:
    fn: ast.FunctionDef
    arrays: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # local -> (array, ndim)
    structs: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (root, struct)
    own: dict[str, int] = field(default_factory=dict)  # own-index name -> launch dimension


class _Checker:
    def __init__(self, mod: Module) -> None:
        self.mod = mod
        self.accesses: dict[str, list[Access]] = {}
        self.dims = 1
        self._dead: dict[ast.FunctionDef, set[ast.stmt]] = {}

    def resolve(self, env: _Env, expr: ast.AST) -> tuple[str, int | None] | None:
        if isinstance(expr, ast.Name):
            return env.arrays.get(expr.id)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id in env.structs:
            root, struct = env.structs[expr.value.id]
            ndim = array_ndim(self.mod.structs[struct].fields.get(expr.attr))
            return (f"{root}.{expr.attr}", ndim) if ndim is not None else None
        return None

    def prepare(self, env: _Env, launch: bool) -> None:
        """Aliases (``a = out``), struct locals, wp.tid() names; reassigned own names drop out."""
        bound: dict[str, int] = {}
        for node in ast.walk(env.fn):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
                if wp_call(node.value) == "tid" and len(targets) == 1:
                    names = target_names(targets[0])
                    env.own.update({n: d for d, n in enumerate(names)})
                    if launch and len(names) > self.dims:
                        self.dims = len(names)
                elif len(targets) == 1 and isinstance(targets[0], ast.Name):
                    found = self.resolve(env, node.value)
                    if found is not None:
                        env.arrays[targets[0].id] = (found[0], None)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
                targets = [node.target]
            for t in targets:
                for n in target_names(t):
                    bound[n] = bound.get(n, 0) + 1
        for a in params(env.fn):
            if a.arg in env.own:
                bound[a.arg] = bound.get(a.arg, 0) + 1  # a parameter counts as bound by the call
        for name in [n for n in env.own if bound.get(n, 0) > 1]:
            del env.own[name]

    def is_own(self, env: _Env, index: list[ast.expr]) -> bool:
        return len(index) == self.dims and all(
            isinstance(e, ast.Name) and env.own.get(e.id) == d for d, e in enumerate(index))

    def own_tile(self, env: _Env, call: ast.Call, name: str) -> bool:
        """Whether a tile_load/tile_store(_indexed) reaches only the block's own tile (module doc)."""
        offset = _argument(call, "offset", _TILE_OFFSET_ARG[name])
        if offset is None:
            return False
        dims: list[int] = []
        for part in offset.elts if isinstance(offset, ast.Tuple) else [offset]:
            if isinstance(part, ast.Constant) and part.value == 0:
                continue
            if isinstance(part, ast.Name) and part.id in env.own:  # a tile of extent 1 (a per-block result)
                dims.append(env.own[part.id])
                continue
            if not (isinstance(part, ast.BinOp) and isinstance(part.op, ast.Mult)):
                return False
            pair = [(part.left, part.right), (part.right, part.left)]
            found = [env.own[a.id] for a, c in pair if isinstance(a, ast.Name) and a.id in env.own
                     and self.tile_size(env, c)]
            if not found:
                return False
            dims.append(found[0])
        names = sorted(env.own.values())
        if dims != sorted(set(dims)) or not names:
            return False
        needed = set(names) - ({names[-1]} if len(names) > 1 and not self.offset_names(env) & {names[-1]} else set())
        if not needed <= set(dims):
            return False
        if name == "tile_store_indexed":
            return self.is_arange(env, _argument(call, "indices", 1))
        return True

    def tile_size(self, env: _Env, node: ast.expr) -> bool:
        """A tile extent: an int literal >= 1, or a module-level name the function does not rebind."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, int) and not isinstance(node.value, bool) and node.value >= 1
        return isinstance(node, ast.Name) and node.id in self.mod.module_names and node.id not in bound_names(env.fn)

    def offset_names(self, env: _Env) -> set[int]:
        """Launch dimensions of the tid names any tile offset of the function mentions."""
        out: set[int] = set()
        for node in ast.walk(env.fn):
            name = wp_call(node) or ""
            if isinstance(node, ast.Call) and name in _TILE_OFFSET_ARG:
                offset = _argument(node, "offset", _TILE_OFFSET_ARG[name])
                out |= {env.own[n.id] for n in ast.walk(offset) if isinstance(n, ast.Name) and n.id in env.own} \
                    if offset is not None else set()
        return out

    def is_arange(self, env: _Env, node: ast.expr | None) -> bool:
        """A tile of distinct indices: a wp.tile_arange call, or a local bound once to one."""
        if node is not None and wp_call(node) == "tile_arange":
            return True
        if not isinstance(node, ast.Name):
            return False
        values = [n.value for n in ast.walk(env.fn) if isinstance(n, ast.Assign)
                  for t in n.targets if node.id in target_names(t)]
        return len(values) == 1 and wp_call(values[0]) == "tile_arange" and node.id not in _param_names(env.fn)

    def result_used(self, env: _Env, call: ast.Call, parent: dict[ast.AST, ast.AST]) -> bool:
        holder = parent.get(call)
        if isinstance(holder, ast.Expr):
            return False
        if isinstance(holder, (ast.Assign, ast.AnnAssign)) and holder.value is call:
            if env.fn not in self._dead:
                self._dead[env.fn] = dead_statements(self.mod, env.fn)
            return holder not in self._dead[env.fn]
        return True

    def add(self, env: _Env, key: str, kind: str, own: bool, node: ast.AST, op: str = "",
            used: bool = False) -> None:
        self.accesses.setdefault(key, []).append(Access(kind, op, own, used, env.fn.name, node.lineno))

    def scan(self, env: _Env, depth: int) -> None:
        parent = {child: node for node in ast.walk(env.fn) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(env.fn):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in self.mod.funcs:
                self.call(env, node, depth)
                continue
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                continue
            found = self.resolve(env, node) if isinstance(node, (ast.Name, ast.Attribute)) else None
            if found is not None:
                self.classify(env, node, found, parent)

    def classify(self, env: _Env, node: ast.AST, found: tuple[str, int | None],
                 parent: dict[ast.AST, ast.AST]) -> None:
        key, ndim = found
        up = parent.get(node)
        if isinstance(up, ast.Subscript) and up.value is node:
            index, element = index_list(up), up
            while ndim is not None and len(index) < ndim:
                outer = parent.get(element)
                if not (isinstance(outer, ast.Subscript) and outer.value is element):
                    break
                index, element = index + index_list(outer), outer
            own = self.is_own(env, index[:ndim] if ndim is not None else index) and len(index) >= (ndim or 0)
            top = element
            while isinstance(parent.get(top), (ast.Attribute, ast.Subscript)) and parent[top].value is top:
                top = parent[top]
            if isinstance(getattr(top, "ctx", None), ast.Store):
                self.add(env, key, "augassign" if isinstance(parent.get(top), ast.AugAssign) else "store", own, node)
            else:
                self.add(env, key, "read", own, node)
        elif isinstance(up, ast.Call) and node in up.args:
            name = wp_call(up) or ""
            if name in _NOT_ELEMENT_READS:
                return
            if name.startswith(("atomic_", "tile_atomic_")) and up.args[0] is node:
                # atomic_cas(a, i..., compare, value) has two operands after the index, the others one
                index = up.args[1:-2 if name == "atomic_cas" else -1] if name.startswith("atomic_") else []
                if len(index) == 1 and isinstance(index[0], ast.Tuple):
                    index = list(index[0].elts)
                op = name.removeprefix("tile_")[7:].removesuffix("_indexed")  # tile_atomic_add_indexed adds
                self.add(env, key, "atomic", self.is_own(env, index), node, op, self.result_used(env, up, parent))
            elif name in _TILE_OFFSET_ARG and up.args[0] is node:
                own = self.own_tile(env, up, name)
                if name == "tile_load":
                    self.add(env, key, "read" if own else "read-all", own, node)
                else:
                    self.add(env, key, "store", own, node)
            elif not (isinstance(up.func, ast.Name) and up.func.id in self.mod.funcs):
                self.add(env, key, "read-all", False, node)  # handed whole to a builtin: it may read any element
        elif isinstance(up, ast.keyword):
            call = parent.get(up)
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in self.mod.funcs):
                self.add(env, key, "read-all", False, node)

    def call(self, env: _Env, call: ast.Call, depth: int) -> None:
        """Follow arrays (and structs holding them) into every overload of the helper that fits."""
        if depth >= _MAX_DEPTH:
            return
        assert isinstance(call.func, ast.Name)
        for fn in self.mod.funcs[call.func.id]:
            names = [a.arg for a in params(fn)]
            if len(call.args) > len(names):
                continue
            args = list(zip(names, call.args, strict=False))
            args += [(k.arg, k.value) for k in call.keywords if k.arg in names]
            inner = _Env(fn)
            for name, arg in args:
                found = self.resolve(env, arg)
                if found is not None:
                    inner.arrays[name] = found
                elif isinstance(arg, ast.Name) and arg.id in env.structs:
                    inner.structs[name] = env.structs[arg.id]
                if isinstance(arg, ast.Name) and arg.id in env.own:
                    inner.own[name] = env.own[arg.id]
            if inner.arrays or inner.structs:
                self.prepare(inner, launch=False)
                self.scan(inner, depth + 1)


def _role(accesses: list[Access]) -> tuple[str, str]:
    """(role, why) for one array's accesses."""
    kinds = {a.kind for a in accesses}
    if not kinds & {"store", "augassign", "atomic"}:
        return "input", ""
    if all(a.own and a.kind != "read-all" for a in accesses):
        return "owned", ""
    atomics = [a for a in accesses if a.kind == "atomic"]
    classes = {_CLASSES.get(a.op) for a in atomics}
    if kinds == {"atomic"} and len(classes) == 1 and None not in classes and not any(a.result_used for a in atomics):
        return "accumulator", ""
    if any(_CLASSES.get(a.op) is None and not a.own for a in atomics):
        why = "atomic_cas/atomic_exch away from the thread's own element"
    elif atomics and kinds != {"atomic"}:
        why = "atomics at other elements mixed with reads or stores"
    elif len(classes) > 1:
        why = f"atomics of more than one class ({', '.join(sorted(c or 'cas/exch' for c in classes))})"
    elif any(a.result_used for a in atomics):
        why = "an atomic's returned old value is used"
    else:
        why = "written, and read or written away from the thread's own element"
    seen = sorted({a.describe() for a in accesses})
    return "violation", f"{why}: {'; '.join(seen[:6])}{' ...' if len(seen) > 6 else ''}"


def check_races(mod: Module) -> RaceReport:
    checker = _Checker(mod)
    env = _Env(mod.kernel)
    for a in params(mod.kernel):
        if (ndim := array_ndim(a.annotation)) is not None:
            env.arrays[a.arg] = (a.arg, ndim)
        elif (struct := mod.struct_of(a.annotation)) is not None:
            env.structs[a.arg] = (a.arg, struct)
    checker.prepare(env, launch=True)
    checker.scan(env, 0)
    roles: dict[str, str] = {}
    violations: list[RaceViolation] = []
    for key, accesses in sorted(checker.accesses.items()):
        roles[key], why = _role(accesses)
        if why:
            violations.append(RaceViolation(key, why))
    return RaceReport(roles, tuple(violations), {k: tuple(v) for k, v in checker.accesses.items()})
