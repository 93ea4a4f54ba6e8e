"""Type-level mutation operators of the variants source (issue 15): the rank of one array
parameter of a kernel (``array_rank``) and the launch dimensions of a kernel (``launch_dim``);
``synth.variants.rewidth`` has the third, the width of a module's vectors. Same contract as
``synth.variants.mutations``: pure AST edits in AST order, a one-line description, or None when the
module has no site.

A type change must hold everywhere the type flows: each operator first proves the module is
written so that the change is well defined (every use of the array is an index of its full
rank, every index stays in bounds of the launch, no vector component is lost ...) and returns None
whenever it cannot tell: ``synth.variants.source`` still judges every result, but Warp's codegen
cannot catch a kernel that is valid and silently means something else.

Launches follow ``synth.validate.examples``: as many launch dimensions as the highest array rank,
every array of the launch shape. The array and launch edits keep that true (a kernel's
``wp.tid()`` names and its arrays' ranks move together), so a variant stays in bounds when
executed. Tile kernels keep their launch: a block size is not in the source (the record id
would be the parent's), and 329 of 340 real tile kernels built at another size get the same
CPU and CUDA kernel text but for ``#define WP_TILE_BLOCK_DIM``: no new sample to learn from.
"""

from __future__ import annotations

import ast
import copy
import random

from synth.quality.modinfo import decorator_name, wp_call
from synth.variants.mutations import Site, call_name, functions, parent_map

_ARRAY_RANKS = {"array": 1, "array1d": 1, "array2d": 2, "array3d": 3, "array4d": 4}
# Atomics: wp.atomic_<op>(array, *indices, value) (atomic_cas also takes the compared value).
_ATOMIC_TAIL = {"atomic_add": 1, "atomic_sub": 1, "atomic_min": 1, "atomic_max": 1, "atomic_exch": 1,
                "atomic_and": 1, "atomic_or": 1, "atomic_xor": 1, "atomic_cas": 2}
_NEW_NAMES = ("j", "k", "l", "m", "batch", "lane")


def array_rank(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """One array parameter of a kernel one rank up or down, every access rewritten:

    * up, in a kernel launched over more dimensions than the array has: each index gains the
      next ``wp.tid()`` name (``a[i]`` -> ``a[i, j]`` under ``i, j = wp.tid()``), so a store
      that every ``j`` made to the same element becomes one per thread;
    * down, for an array the kernel only reads: each index loses its last component
      (``w[i, k]`` -> ``w[i]``: one value per row), where that is the same plain name or
      literal in every access (``t[i, 0]`` and ``t[i, 1]`` would collapse into one read)

    Every use of the array must be an index of its full rank, ``len`` or ``.shape[d]``
    (passing it on, views and slices are left alone)."""
    sites = []
    for fn in _kernels(tree):
        tid = _tid(fn)
        names = tid[1] if tid else []
        for arg in fn.args.args:
            typed = array_annotation(arg.annotation)
            uses = _array_uses(fn, arg.arg, typed[1]) if typed else None
            if uses is None:
                continue
            rank = typed[1]
            top = max((t[1] for a in fn.args.args if (t := array_annotation(a.annotation))), default=1)
            if rank < min(len(names), 4) and uses.accesses and all(names[rank] not in _names_in(idx) for idx in uses.indices) \
                    and (rank < top or _indices_follow_the_launch(fn, names)):
                sites.append((fn, arg, uses, +1, names[rank]))
            if rank >= 2 and not uses.stored and uses.accesses and max(uses.shape_dims, default=-1) < rank - 1 \
                    and isinstance(uses.indices[0][-1], (ast.Name, ast.Constant)) \
                    and len({ast.dump(idx[-1]) for idx in uses.indices}) == 1:
                sites.append((fn, arg, uses, -1, ""))
    if not sites:
        return None
    fn, arg, uses, step, name = rng.choice(sites)
    dtype, rank = array_annotation(arg.annotation)
    if step > 0:
        uses.append_index(name)
    else:
        uses.drop_last_index()
    arg.annotation = _rank_annotation(arg.annotation, dtype, rank + step)
    return f"array_rank: {arg.arg} {rank}d -> {rank + step}d"


def launch_dim(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """A kernel's launch one dimension larger or smaller, its arrays following:

    * add: ``i = wp.tid()`` becomes ``i, j = wp.tid()`` and every array parameter one rank
      higher, each index gaining ``j`` (a batch of independent copies of the kernel: each
      thread still owns the elements it wrote, and ``j`` is live in every access);
    * drop: the last ``wp.tid()`` name goes when its only uses are as the last index of
      array parameters indexed that way everywhere (``out[i, j] = a[i, j]``); those arrays
      lose that rank.

    Only kernels whose every array parameter is used as full-rank indices, ``len`` or
    ``.shape`` and that write no other memory (struct fields, locals); never tile kernels,
    whose ``wp.tid()`` counts blocks and whose block size is not in the source."""
    if any(isinstance(n, ast.Call) and call_name(n).startswith("tile") for n in ast.walk(tree)):
        return None
    sites = []
    for fn in _kernels(tree):
        tid = _tid(fn)
        if tid is None:
            continue
        stmt, names = tid
        arrays = {a.arg: array_annotation(a.annotation) for a in fn.args.args
                  if a.annotation is not None and "array" in ast.unparse(a.annotation)}
        if any(t is None for t in arrays.values()) or _writes_elsewhere(fn, set(arrays)) \
                or any(isinstance(a.annotation, ast.Name) and a.annotation.id not in ("float", "int", "bool")
                       for a in fn.args.args):  # a struct parameter: its array fields are memory too
            continue
        uses = {a: _array_uses(fn, a, t[1]) for a, t in arrays.items()}
        if any(u is None for u in uses.values()):
            continue
        taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {a.arg for a in fn.args.args}
        new = next((n for n in _NEW_NAMES if n not in taken), None)
        if len(names) < 4 and new and all(t[1] < 4 for t in arrays.values()) and any(u.stored for u in uses.values()) \
                and _indices_follow_the_launch(fn, names):
            sites.append((fn, stmt, names, arrays, uses, new))
        last = names[-1]
        ending = {a for a, u in uses.items() if u.indices and all(_is_name(idx[-1], last) for idx in u.indices)}
        reads = sum(_is_name(n, last) for n in ast.walk(fn))
        if len(names) >= 2 and ending and all(arrays[a][1] >= 2 and max(uses[a].shape_dims, default=-1) < arrays[a][1] - 1
                                              for a in ending) \
                and reads == 1 + sum(len(uses[a].accesses) for a in ending):
            sites.append((fn, stmt, names, {a: arrays[a] for a in ending}, {a: uses[a] for a in ending}, ""))
    if not sites:
        return None
    fn, stmt, names, arrays, uses, new = rng.choice(sites)
    after = [*names, new] if new else names[:-1]
    stmt.targets = [_tid_target(after)]
    for name, (dtype, rank) in arrays.items():
        if new:
            uses[name].append_index(new)
        else:
            uses[name].drop_last_index()
        arg = next(a for a in fn.args.args if a.arg == name)
        arg.annotation = _rank_annotation(arg.annotation, dtype, rank + (1 if new else -1))
    return f"launch_dim: {len(names)}d -> {len(after)}d ({', '.join(after)} = wp.tid())"


class _ArrayUses:
    """Where a kernel indexes one array parameter: subscripts and atomics, with their indices."""

    def __init__(self) -> None:
        self.accesses: list[tuple[ast.AST, list[ast.expr]]] = []  # (Subscript or atomic Call, its indices)
        self.shape_dims: list[int] = []  # d of every ``a.shape[d]``
        self.stored = False

    @property
    def indices(self) -> list[list[ast.expr]]:
        return [idx for _, idx in self.accesses]

    def append_index(self, name: str) -> None:
        for node, idx in self.accesses:
            self._set(node, [*idx, ast.Name(name, ast.Load())])

    def drop_last_index(self) -> None:
        for node, idx in self.accesses:
            self._set(node, idx[:-1])

    @staticmethod
    def _set(node: ast.AST, idx: list[ast.expr]) -> None:
        if isinstance(node, ast.Subscript):
            node.slice = idx[0] if len(idx) == 1 else ast.Tuple(idx, ast.Load())
        else:  # wp.atomic_*(array, *indices, *operands)
            operands = node.args[len(node.args) - _ATOMIC_TAIL[call_name(node)]:]
            node.args = [node.args[0], *idx, *operands]


def _array_uses(fn: ast.FunctionDef, name: str, rank: int) -> _ArrayUses | None:
    """The accesses of array ``name`` in ``fn``, or None if any use is not a full-rank index
    (``a[i, j]``, ``wp.atomic_add(a, i, j, v)``), ``len(a)`` or ``a.shape[d]``."""
    uses = _ArrayUses()
    parents = parent_map(fn)
    for stmt in fn.body:
        for node in ast.walk(stmt):
            if not isinstance(node, ast.Name) or node.id != name:
                continue
            if not isinstance(node.ctx, ast.Load):
                return None
            up = parents.get(id(node))
            if isinstance(up, ast.Subscript) and up.value is node:
                idx = up.slice.elts if isinstance(up.slice, ast.Tuple) else [up.slice]
                if len(idx) != rank or any(isinstance(i, (ast.Slice, ast.Starred)) for i in idx):
                    return None
                uses.accesses.append((up, list(idx)))
                uses.stored |= not isinstance(up.ctx, ast.Load)
            elif isinstance(up, ast.Call) and wp_call(up) in _ATOMIC_TAIL and up.args and up.args[0] is node:
                if up.keywords or len(up.args) != 1 + rank + _ATOMIC_TAIL[wp_call(up)]:
                    return None
                uses.accesses.append((up, list(up.args[1:1 + rank])))
                uses.stored = True
            elif isinstance(up, ast.Attribute) and up.attr == "shape":
                outer = parents.get(id(up))
                if not (isinstance(outer, ast.Subscript) and isinstance(outer.slice, ast.Constant)
                        and type(outer.slice.value) is int):
                    return None
                uses.shape_dims.append(outer.slice.value)
            elif not (isinstance(up, ast.Call) and isinstance(up.func, ast.Name) and up.func.id == "len"):
                return None
    return uses


def _indices_follow_the_launch(fn: ast.FunctionDef, names: list[str]) -> bool:
    """Whether every index in ``fn`` stays in bounds when the launch gains a dimension (its
    extent per dimension shrinks, ``synth.validate.examples.EXTENT``): each is made of ``wp.tid()``
    names, literals and variables of loops bounded by array extents (``len``, ``.shape``),
    never of a value read from memory or a scalar parameter (example values fit a 1-D launch)."""
    allowed = set(names)
    body = [node for stmt in fn.body for node in ast.walk(stmt)]
    for loop in body:
        if isinstance(loop, ast.For) and isinstance(loop.target, ast.Name) and call_name(loop.iter) == "range" \
                and all(_extent_bound(a) for a in loop.iter.args):
            allowed.add(loop.target.id)
    indices = [n.slice for n in body if isinstance(n, ast.Subscript)
               and not (isinstance(n.value, ast.Attribute) and n.value.attr == "shape")]
    indices += [a for n in body if wp_call(n) in _ATOMIC_TAIL
                for a in n.args[1:len(n.args) - _ATOMIC_TAIL[wp_call(n)]]]
    return not any(isinstance(part, ast.Subscript) or isinstance(part, ast.Name) and part.id not in allowed
                   for index in indices for part in ast.walk(index))


def _extent_bound(expr: ast.expr) -> bool:
    """A loop bound no larger than some array's extent: ``len(a)``, ``a.shape[d]``, a literal 0..2."""
    if isinstance(expr, ast.Constant):
        return type(expr.value) is int and 0 <= expr.value <= 2
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "len":
        return True
    return isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Attribute) and expr.value.attr == "shape"


def _writes_elsewhere(fn: ast.FunctionDef, arrays: set[str]) -> bool:
    """Whether ``fn`` stores into memory other than its array parameters (a struct's array
    field, a local view): a new launch dimension would make every such store a race."""
    for node in ast.walk(fn):
        target = None
        if isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load):
            target = node.value
        elif isinstance(node, ast.Call) and (wp_call(node) or "").startswith(("atomic_", "tile_store")):
            target = node.args[0] if node.args else None
        if target is not None and not (isinstance(target, ast.Name) and target.id in arrays):
            return True
    return False


def _kernels(tree: ast.Module) -> list[ast.FunctionDef]:
    return [f for f in functions(tree) if any(decorator_name(d) == "kernel" for d in f.decorator_list)]


def _tid(fn: ast.FunctionDef) -> tuple[ast.Assign, list[str]] | None:
    """The kernel's one ``names = wp.tid()`` statement (at the top level of its body) and its names."""
    calls = [n for n in ast.walk(fn) if wp_call(n) == "tid"]
    stmt = next((s for s in fn.body if isinstance(s, ast.Assign) and len(s.targets) == 1 and s.value in calls), None)
    if len(calls) != 1 or stmt is None:
        return None
    elts = stmt.targets[0].elts if isinstance(stmt.targets[0], ast.Tuple) else [stmt.targets[0]]
    names = [e.id for e in elts if isinstance(e, ast.Name)]
    rebound = [n for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id in names and not isinstance(n.ctx, ast.Load)]
    return (stmt, names) if len(rebound) == len(names) == len(set(names)) == len(elts) else None


def _tid_target(names: list[str]) -> ast.expr:
    targets = [ast.Name(n, ast.Store()) for n in names]
    return targets[0] if len(targets) == 1 else ast.Tuple(targets, ast.Store())


def array_annotation(annotation: ast.expr | None) -> tuple[ast.expr, int] | None:
    """(element type, rank) of ``wp.array[T]``, ``wp.array2d[T]``, ``wp.array(dtype=T, ndim=2)`` ..."""
    if isinstance(annotation, ast.Subscript) and is_wp_attribute(annotation.value) \
            and annotation.value.attr in _ARRAY_RANKS and not isinstance(annotation.slice, ast.Tuple):
        return annotation.slice, _ARRAY_RANKS[annotation.value.attr]
    if isinstance(annotation, ast.Call) and is_wp_attribute(annotation.func) and annotation.func.attr in _ARRAY_RANKS \
            and not annotation.args:
        keywords = {k.arg: k.value for k in annotation.keywords}
        ndim = keywords.get("ndim", ast.Constant(_ARRAY_RANKS[annotation.func.attr]))
        if set(keywords) <= {"dtype", "ndim"} and "dtype" in keywords and isinstance(ndim, ast.Constant) \
                and type(ndim.value) is int and 1 <= ndim.value <= 4:
            return keywords["dtype"], ndim.value
    return None


def _rank_annotation(old: ast.expr, dtype: ast.expr, rank: int) -> ast.expr:
    """The annotation for ``rank``, written the way the old one was (subscript or call)."""
    name = "array" if rank == 1 else f"array{rank}d"
    if isinstance(old, ast.Subscript):
        return ast.Subscript(wp_attribute(name), copy.deepcopy(dtype), ast.Load())
    return ast.Call(wp_attribute(name), [], [ast.keyword("dtype", copy.deepcopy(dtype))])


def wp_attribute(attr: str) -> ast.Attribute:
    return ast.Attribute(ast.Name("wp", ast.Load()), attr, ast.Load())


def is_wp_attribute(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "wp"


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _names_in(idx: list[ast.expr]) -> set[str]:
    return {n.id for e in idx for n in ast.walk(e) if isinstance(n, ast.Name)}
