"""Statement-level mutation operators of the variants source (issue 15): ``delete_statement``
(delete a statement and repair its data flow) here, with what the three new operators share
(purity, places between statements, free names); ``synth.variants.outline`` moves code into a new
``@wp.func``, ``synth.variants.splicing`` grafts statements of other real kernels.

Same contract as ``synth.variants.mutations``: pure AST edits, sites in AST order and choices from the
seeded ``random.Random`` only, None when there is no site; ``synth.variants.source`` judges every
result. Types come from ``synth.variants.localtypes`` (only what is certain); the deletion operator also
runs the quality check on its candidates, because most deletions orphan something (a local
only the deleted statement read), and a rejected try is a try lost for the seed.
"""

from __future__ import annotations

import ast
import copy
import random

from synth.variants.localtypes import FLOATS, annotation, function_types, scalar_of
from synth.quality.modinfo import (
    EFFECT_BUILTINS,
    MUTATORS,
    decorator_name,
    target_names,
    target_root,
)
from synth.variants.mutations import Site, call_name, functions, parent_map, replace_child

# Calls that never move into a helper or a copy: thread identity, effects, randomness, opaque handles.
IMPURE = ("tid", "tile", "atomic", "rand", "sample", "print", "expect", "mesh", "bvh", "hash_grid", "volume",
          "lower_bound", "static", "address", "view", "len", "noise", "curlnoise", "pnoise", "texture")
PYTHON_CALLS = frozenset({"float", "int", "abs", "min", "max"})
MAX_QUALITY_CHECKS = 8  # deletion candidates checked per call before giving up (each is a quality check)


def pure(expr: ast.AST, helpers_ok: bool = True) -> bool:
    """No effect, no thread identity, no randomness; ``helpers_ok`` False also refuses calls of the
    module's own helpers (what is copied into another module cannot take them along)."""
    for node in ast.walk(expr):
        if isinstance(node, (ast.NamedExpr, ast.Lambda, ast.BoolOp, ast.Starred)):
            return False
        if isinstance(node, ast.Call):
            name = call_name(node)
            if name.startswith(IMPURE) or node.keywords:
                return False
            wp_call = isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "wp"
            if not wp_call and not helpers_ok and name not in PYTHON_CALLS:
                return False
    return True


def positions(fn: ast.FunctionDef) -> list[tuple[list[ast.stmt], int, frozenset[str]]]:
    """Every place between statements of ``fn``: (body, index, names surely bound there), the
    last being the parameters, loop indices and the names assigned earlier in this body and in
    the bodies enclosing it (a name assigned only inside a branch is not sure)."""
    out: list[tuple[list[ast.stmt], int, frozenset[str]]] = []

    def walk(body: list[ast.stmt], before: frozenset[str]) -> None:
        bound = set(before)
        for i, stmt in enumerate(body):
            out.append((body, i, frozenset(bound)))
            inner = frozenset(bound | set(target_names(stmt.target))) if isinstance(stmt, ast.For) \
                else frozenset(bound)
            for name in ("body", "orelse"):
                block = getattr(stmt, name, None)
                if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                    walk(block, inner)
            if isinstance(stmt, ast.Assign):
                bound.update(n for t in stmt.targets for n in target_names(t))
            elif isinstance(stmt, ast.AnnAssign):
                bound.update(target_names(stmt.target))
        out.append((body, len(body), frozenset(bound)))

    walk(fn.body, frozenset(a.arg for a in fn.args.args))
    return out


def _docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def loads(node: ast.AST, name: str) -> list[ast.Name]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]


def bound_in(node: ast.AST) -> set[str]:
    """Names a statement binds anywhere inside it (assignments, loop indices)."""
    found: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For)):
            for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                found.update(target_names(t))
    return found


def only_kernel(tree: ast.Module) -> ast.FunctionDef | None:
    kernels = [f for f in functions(tree) if any(decorator_name(d) == "kernel" for d in f.decorator_list)]
    return kernels[0] if len(kernels) == 1 else None


def _effect(stmt: ast.stmt, types: dict[str, str]) -> bool:
    """A statement whose point is memory others see: an array store, an atomic, a print, an expect."""
    if isinstance(stmt, (ast.Assign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for t in targets:
            root = target_root(t)
            if t is not root and isinstance(root, ast.Name) and not _value_local(root.id, types):
                return True
    return any(isinstance(n, ast.Call) and EFFECT_BUILTINS.match(call_name(n)) for n in ast.walk(stmt))


def _value_local(name: str, types: dict[str, str]) -> bool:
    return name in types and not types[name].startswith("array:")


def free_names(nodes: list[ast.AST], fn: ast.FunctionDef) -> list[str] | None:
    """Names the nodes read before binding them, in order of first read, if all are locals or
    parameters of ``fn`` (a module constant or helper would be one too many parameters)."""
    bound: set[str] = set()
    free: dict[str, None] = {}
    callees = {id(n.func) for node in nodes for n in ast.walk(node) if isinstance(n, ast.Call)}
    for node in nodes:
        value = node.value if isinstance(node, ast.Assign) else node
        for n in _source_order(value):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in callees \
                    and n.id != "wp" and n.id not in bound:
                free.setdefault(n.id)
        if isinstance(node, ast.Assign):
            bound.update(n for t in node.targets for n in target_names(t))
    return list(free)


def _source_order(node: ast.AST) -> list[ast.AST]:
    """``node`` and its descendants depth first, fields in order: how the source reads them
    (parameters come in the order the code first mentions them)."""
    out = [node]
    for child in ast.iter_child_nodes(node):
        out += _source_order(child)
    return out


# --- delete_statement ---------------------------------------------------------------------------------


def neutral(t: str, one: bool) -> ast.expr | None:
    """A literal or constructor of type ``t``: zero, or one where it multiplies (None: no such value)."""
    scalar = scalar_of(t)
    if scalar is None or scalar == "bool":
        return None
    value: ast.expr = ast.Constant(1.0 if one else 0.0) if scalar in FLOATS else ast.Constant(int(one))
    if t in ("float32", "int32"):
        return value
    if t == scalar:
        return ast.Call(annotation(t), [value], [])
    if not t.startswith(("vec", "mat")):
        return None  # quaternions, transforms: no fill constructor
    name = t[:-1] if t.endswith("f") and not t.endswith(("ui", "ul")) else t
    if scalar not in ("float32", "int32"):
        value = ast.Call(annotation(scalar), [value], [])
    return ast.Call(annotation(name), [value], [])


def _uses_repairable(fn: ast.FunctionDef, name: str, parents: dict[int, ast.AST]) -> list[ast.Name] | None:
    """The reads of ``name`` when each can take a value in its place: none is a component write's
    root or an argument a call may write (``wp.mesh_query_point(..., face, u, v)`` fills its
    locals, measured: 2 of 200 variants failed NVRTC and clang before this check)."""
    uses = loads(fn, name)
    for use in uses:
        node, up = use, parents.get(id(use))
        while isinstance(up, (ast.Attribute, ast.Subscript)) and up.value is node:  # v[1].x: the whole access
            if isinstance(up.ctx, ast.Store):
                return None
            node, up = up, parents.get(id(up))
        if isinstance(up, ast.Call) and (MUTATORS.match(call_name(up)) or call_name(up).startswith(IMPURE)
                                         or isinstance(up.func, ast.Name) and up.func.id not in PYTHON_CALLS):
            return None  # an in-place builtin's state, a query's output argument, a helper's (maybe wp.ref) argument
    return uses


def _deletions(fn: ast.FunctionDef, kernel: ast.FunctionDef | None) -> list[tuple[ast.stmt, str, dict]]:
    """(statement, kind, repair) of every deletion ``fn`` allows; repair maps id(use) -> value."""
    types = function_types(fn)
    parents = parent_map(fn)
    effects = sum(_effect(s, types) for s in ast.walk(fn) if isinstance(s, ast.stmt)) if fn is kernel else 0
    stores: dict[str, int] = {}
    for node in ast.walk(fn):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for n in target_names(t):
                    stores[n] = stores.get(n, 0) + 1
    out: list[tuple[ast.stmt, str, dict]] = []
    for body, i, bound in positions(fn):
        if i == len(body) or sum(not _docstring(s) for s in body) < 2:
            continue
        stmt = body[i]
        if _effect(stmt, types):
            # never the kernel's only effect; helpers' effects are their callers' business
            if fn is kernel and effects >= 2 and not isinstance(stmt, (ast.If, ast.For, ast.While)):
                out.append((stmt, "effect", {}))
            continue
        if isinstance(stmt, (ast.If, ast.For, ast.While)):
            inside = {id(n) for n in ast.walk(stmt)}
            # what the block binds is bound before it, or read nowhere else (its loop index, its temporaries)
            orphans = [n for n in bound_in(stmt) if n not in bound and any(id(u) not in inside for u in loads(fn, n))]
            if not orphans and not any(isinstance(n, (ast.Return, ast.Break, ast.Continue)) or isinstance(n, ast.stmt)
                                       and _effect(n, types) for n in ast.walk(stmt)):
                out.append((stmt, "block", {}))  # a branch or loop that only updates locals
        elif isinstance(stmt, ast.AugAssign) and (isinstance(stmt.target, ast.Name) and stmt.target.id in bound
                                                or _value_local(getattr(target_root(stmt.target), "id", ""), types)):
            out.append((stmt, "update", {}))
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and pure(stmt.value):
            target = stmt.targets[0]
            if not isinstance(target, ast.Name):
                if _value_local(getattr(target_root(target), "id", ""), types):
                    out.append((stmt, "update", {}))  # v[1] = ... on a local vector
                continue
            if target.id in bound:
                out.append((stmt, "redefinition", {}))  # later reads see the previous definition
            elif stores.get(target.id) == 1 and target.id in types:
                uses = _uses_repairable(fn, target.id, parents)
                repair = {}
                for use in uses or ():
                    up = parents.get(id(use))
                    one = isinstance(up, ast.BinOp) and (isinstance(up.op, ast.Mult)
                                                         or isinstance(up.op, ast.Div) and up.right is use)
                    value = neutral(types[target.id], one)
                    if value is None:
                        break
                    repair[id(use)] = value
                if uses and len(repair) == len(uses):
                    out.append((stmt, "neutral", repair))
    return out


def delete_statement(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """Delete a statement and repair its uses: an update (``s += e``, ``v[1] = e``), a
    redefinition, or a branch or loop that only updates locals bound before it goes and later
    reads see the previous value; a local's only definition goes
    and its reads get a neutral value of its type (zero, one where it multiplies); an array
    store, atomic or expect goes only when the kernel keeps another effect. Candidates are
    tried in seeded order until one keeps the module's quality (nothing newly dead or unused)."""
    kernel = only_kernel(tree)
    by_kind: dict[str, list] = {}
    for fn in functions(tree):
        for stmt, kind, repair in _deletions(fn, kernel):
            by_kind.setdefault(kind, []).append((stmt, repair))
    if not by_kind:
        return None
    baseline = defects(tree, kernel)
    for _ in range(MAX_QUALITY_CHECKS):
        # the kind first: a test kernel's many expects would otherwise crowd out the data-flow deletions
        kinds = sorted(k for k, found in by_kind.items() if found)
        if not kinds:
            break
        kind = rng.choice(kinds)
        stmt, repair = by_kind[kind].pop(rng.randrange(len(by_kind[kind])))
        trial, twins = twin(tree)
        _delete(trial, twins, stmt, repair)
        if baseline is None or no_worse(defects(trial, kernel), baseline):
            tree.body[:] = trial.body
            return f"delete_statement: {kind}: {ast.unparse(stmt).splitlines()[0][:60]}"
    return None


def twin(tree: ast.Module) -> tuple[ast.Module, dict[int, ast.AST]]:
    """A copy of ``tree`` to try an edit on, and id(node of ``tree``) -> its twin in the copy."""
    trial = copy.deepcopy(tree)
    return trial, {id(a): b for a, b in zip(ast.walk(tree), ast.walk(trial), strict=True)}


def _delete(trial: ast.Module, twins: dict[int, ast.AST], stmt: ast.stmt, repair: dict[int, ast.expr]) -> None:
    parents = {id(c): p for p in ast.walk(trial) for c in ast.iter_child_nodes(p)}
    for use_id, value in repair.items():
        use = twins[use_id]
        replace_child(parents.get(id(use)), use, copy.deepcopy(value))
    mine = twins[id(stmt)]
    up = parents[id(mine)]
    for name in ("body", "orelse"):
        block = getattr(up, name, None)
        if isinstance(block, list) and any(s is mine for s in block):
            block.remove(mine)


def defects(tree: ast.Module, kernel: ast.FunctionDef | None) -> tuple[int, ...] | None:
    """``synth.variants.source.defect_counts`` of the module as it is now (None: no single kernel to check)."""
    if kernel is None:
        return None
    from synth.quality.realism import safe_check
    from synth.variants.source import defect_counts

    return defect_counts(safe_check(ast.unparse(tree), kernel.name, quiet=True))


def no_worse(got: tuple[int, ...] | None, baseline: tuple[int, ...]) -> bool:
    return got is not None and all(g <= b for g, b in zip(got, baseline, strict=True))
