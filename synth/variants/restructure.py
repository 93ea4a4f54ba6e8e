"""Statement-level mutation operators of the variants source (``synth.variants.mutations`` has the
expression-level ones and the helpers both share): edits that move code around while keeping
its data flow: inline a single-assignment local into its uses (deleting the statement), outline
a sub-expression into a new local, inline a one-expression ``@wp.func``, duplicate a branch into
its missing ``else`` and specialise the copy, and splice a closed constructor expression from
another real kernel. Same contract as ``synth.variants.mutations``: pure AST edits in AST order, None when
there is no site; ``synth.variants.source`` judges every result.
"""

from __future__ import annotations

import ast
import copy
import random

from synth.quality.modinfo import MUTATORS, decorator_name
from synth.variants.mutations import (
    PRECISION,
    Site,
    body_nodes,
    call_name,
    functions,
    parent_map,
    replace_child,
)

_NO_EXTRACT = ("tid", "tile", "atomic", "rand", "sample", "print", "expect", "mesh", "bvh", "hash_grid",
               "volume", "lower_bound", "select", "where", "static", "address", "view", "len")


def closed_expressions(sources: list[str]) -> dict[str, tuple[str, ...]]:
    """The splice index of a corpus: every closed constructor expression, by constructor."""
    out: dict[str, dict[str, None]] = {}
    for source in sources:
        for _, node in body_nodes(ast.parse(source)):
            if _closed(node):
                out.setdefault(ast.dump(node.func), {}).setdefault(ast.unparse(node))
    return {head: tuple(exprs) for head, exprs in out.items()}


def _stores(fn: ast.FunctionDef) -> dict[str, int]:
    """Local name -> how many statements bind or update it (component writes included)."""
    counts: dict[str, int] = {a.arg: 1 for a in fn.args.args}
    for node in ast.walk(fn):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
            targets = [node.target]
        for t in targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Name):
                    counts[sub.id] = counts.get(sub.id, 0) + 1
        # in-place builtins (rand state, transform_set_*) update their first argument
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name) \
                and MUTATORS.match(call_name(node)):
            counts[node.args[0].id] = counts.get(node.args[0].id, 0) + 1
    return counts


def _pure(expr: ast.expr) -> bool:
    return not any(isinstance(n, ast.Call) and call_name(n).startswith(_NO_EXTRACT) for n in ast.walk(expr)) \
        and not any(isinstance(n, (ast.NamedExpr, ast.Lambda, ast.IfExp, ast.BoolOp)) for n in ast.walk(expr))


def inline_local(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """Delete a local's only assignment and repair its uses: each read gets the assigned
    expression (which reads only names never rebound, so the value is the same)."""
    sites = []
    for fn in functions(tree):
        stores = _stores(fn)
        for body in _bodies(fn):
            for stmt in body:
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                        and stores.get(stmt.targets[0].id) == 1 and _pure(stmt.value) \
                        and all(stores.get(n.id, 0) <= 1 for n in ast.walk(stmt.value) if isinstance(n, ast.Name)):
                    name = stmt.targets[0].id
                    uses = [n for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id == name
                            and isinstance(n.ctx, ast.Load)]
                    if 1 <= len(uses) <= 3:
                        sites.append((fn, body, stmt, uses))
    if not sites:
        return None
    fn, body, stmt, uses = rng.choice(sites)
    parents = parent_map(fn)
    for use in uses:
        replace_child(parents.get(id(use)), use, copy.deepcopy(stmt.value))
    body.remove(stmt)
    return f"inline_local: {stmt.targets[0].id} = {ast.unparse(stmt.value)[:60]}"


def _bodies(fn: ast.FunctionDef) -> list[list[ast.stmt]]:
    out = [fn.body]
    for node in ast.walk(fn):
        for name in ("body", "orelse"):
            block = getattr(node, name, None)
            if node is not fn and isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                out.append(block)
    return out


def extract_local(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """A sub-expression of a simple statement outlined into a new local just before it."""
    sites = []
    for fn in functions(tree):
        taken = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)} | {a.arg for a in fn.args.args}
        for body in _bodies(fn):
            for stmt in body:
                if not isinstance(stmt, (ast.Assign, ast.AugAssign, ast.Return)) or stmt.value is None:
                    continue
                for node in ast.walk(stmt.value):
                    if node is not stmt.value and isinstance(node, (ast.BinOp, ast.Call)) and _pure(node) \
                            and not call_name(node).startswith(("range", "float", "int")) \
                            and not (isinstance(node, ast.Call) and call_name(node) in _PRECISION_NAMES):
                        sites.append((fn, body, stmt, node, taken))
    if not sites:
        return None
    fn, body, stmt, node, taken = rng.choice(sites)
    name = next(n for n in (*_LOCAL_NAMES, *(f"tmp{i}" for i in range(100))) if n not in taken)
    parents = {id(c): p for p in ast.walk(stmt) for c in ast.iter_child_nodes(p)}
    replace_child(parents.get(id(node)), node, ast.Name(name, ast.Load()))
    body.insert(body.index(stmt), ast.Assign([ast.Name(name, ast.Store())], node, lineno=0))
    return f"extract_local: {name} = {ast.unparse(node)[:60]}"


_LOCAL_NAMES = ("t", "s", "d", "v", "a", "b", "w", "r", "val", "tmp")


_PRECISION_NAMES = frozenset(n for fam in PRECISION for n in fam)


def inline_helper(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """A call of a one-expression ``@wp.func`` replaced by that expression with the call's
    arguments substituted; the helper goes when nothing calls it any more."""
    helpers = {}
    for fn in functions(tree):
        names = [d for d in fn.decorator_list if decorator_name(d) == "func"]
        body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        if names and len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None \
                and not fn.args.defaults and not fn.args.vararg and sum(f.name == fn.name for f in functions(tree)) == 1:
            helpers[fn.name] = (fn, body[0].value)
    sites = []
    for fn in functions(tree):
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers \
                    and node.func.id != fn.name and not node.keywords:
                helper, expr = helpers[node.func.id]
                if len(node.args) == len(helper.args.args) and all(
                        isinstance(a, (ast.Name, ast.Constant)) or _uses(expr, p.arg) <= 1
                        for a, p in zip(node.args, helper.args.args, strict=True)):
                    sites.append((fn, node))
    if not sites:
        return None
    fn, call = rng.choice(sites)
    helper, expr = helpers[call.func.id]
    mapping = {p.arg: a for p, a in zip(helper.args.args, call.args, strict=True)}
    inlined = _Substitute(mapping).visit(copy.deepcopy(expr))
    replace_child(parent_map(fn).get(id(call)), call, inlined)
    if not any(isinstance(n, ast.Name) and n.id == helper.name for n in ast.walk(tree)):
        tree.body.remove(helper)
    return f"inline_helper: {helper.name}"


def _uses(expr: ast.AST, name: str) -> int:
    return sum(isinstance(n, ast.Name) and n.id == name for n in ast.walk(expr))


class _Substitute(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, ast.expr]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.mapping:
            return copy.deepcopy(self.mapping[node.id])
        return node


def specialise(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """A branch duplicated into its missing ``else`` and the copy specialised: one float
    literal of it scaled, or one ``+``/``-`` of it traded (both branches stay well formed in
    the same scope, so the duplicate is as valid and as race-free as the original)."""
    sites = [n for _, n in body_nodes(tree) if isinstance(n, ast.If) and not n.orelse
             and not any(isinstance(m, (ast.Return, ast.Break, ast.Continue)) for m in ast.walk(n))]
    if not sites:
        return None
    branch = rng.choice(sites)
    copy_body = copy.deepcopy(branch.body)
    literals = [m for st in copy_body for m in ast.walk(st) if isinstance(m, ast.Constant)
                and isinstance(m.value, float) and not isinstance(m.value, bool)]
    ops = [m for st in copy_body for m in ast.walk(st) if isinstance(m, ast.BinOp) and isinstance(m.op, (ast.Add, ast.Sub))]
    if literals:
        lit = rng.choice(literals)
        lit.value = float(f"{lit.value * 2.0 ** rng.uniform(-2.0, 2.0):.3g}") if lit.value else 0.5
    elif ops:
        op = rng.choice(ops)
        op.op = ast.Sub() if isinstance(op.op, ast.Add) else ast.Add()
    else:
        return None
    branch.orelse = copy_body
    return f"specialise: else branch of `if {ast.unparse(branch.test)[:40]}`"


def _closed(node: ast.AST) -> bool:
    """A ``wp.*`` constructor call of literals only (no locals): meaningful in any kernel."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.keywords and all(
        isinstance(n, (ast.Constant, ast.UnaryOp, ast.unaryop, ast.Call, ast.Attribute, ast.Load, ast.expr_context))
        or isinstance(n, ast.Name) and n.id == "wp" for n in ast.walk(node)) and bool(node.args)


def splice(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """A closed constructor expression (``wp.vec3(0.0, 1.0, 0.0)``) replaced by one of the same
    constructor from another real kernel (so of the same type)."""
    targets = [n for _, n in body_nodes(tree) if _closed(n)]
    if not targets:
        return None
    target = rng.choice(targets)
    mine = ast.unparse(target)
    found = [e for e in site.closed.get(ast.dump(target.func), ()) if e != mine]
    found = [e for e in found if len(ast.parse(e, mode="eval").body.args) == len(target.args)]
    if not found:
        return None
    target.args = ast.parse(rng.choice(found), mode="eval").body.args
    return f"splice: {mine[:40]} -> {ast.unparse(target)[:40]}"
