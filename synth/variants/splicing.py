"""``splice_statement``: statements of one real kernel grafted into another (issue 15).

``portable_statements`` indexes the corpus once per worker: short runs of pure local
assignments (and single accumulations ``s += e``) that read only typed locals or parameters of
their function, call only ``wp.*`` builtins and produce one floating-point value. The operator
picks a place in the target, keeps the portable statements whose inputs the target has there
with the same types, renames the inputs to target names and the locals the statements bind to
fresh ones, and makes the result live: an assigned result is added into a later read of a local
of its type, an accumulation goes into a local of its type that is read afterwards. So the
graft is type-correct by construction (Warp's codegen in the judge checks it still) and
nothing it adds is dead.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field

from synth.variants.blocks import (
    IMPURE,
    PYTHON_CALLS,
    defects,
    free_names,
    loads,
    no_worse,
    only_kernel,
    positions,
    pure,
)
from synth.variants.localtypes import FLOATS, expr_type, function_types, scalar_of
from synth.variants.mutations import Site, call_name, functions, parent_map, replace_child

MAX_POSITIONS = 8  # places tried per call before giving up
_NOT_VALUES = frozenset({"range", "float", "int"})


@dataclass(frozen=True, slots=True)
class Portable:
    text: str  # the statements, as ast.unparse writes them
    needs: tuple[tuple[str, str], ...]  # (name read, its type), in order of first read
    result: str  # the local the last statement binds, or the local an accumulation updates
    type: str  # the result's type
    accumulate: bool
    binds: tuple[str, ...]  # locals the statements bind (fresh names in the target)
    needed: frozenset[str] = field(default_factory=frozenset)  # the types of ``needs``


def _data_type(t: str | None) -> bool:
    """A floating-point scalar, vector or matrix: what ``+`` takes and what a graft may produce."""
    return t is not None and t.startswith(("float", "vec", "mat")) and scalar_of(t) in FLOATS


def _portable(run: list[ast.stmt], fn: ast.FunctionDef, types: dict[str, str]) -> Portable | None:
    if len(run) == 1 and isinstance(run[0], ast.AugAssign):
        stmt = run[0]
        if not (isinstance(stmt.target, ast.Name) and isinstance(stmt.op, (ast.Add, ast.Sub))
                and pure(stmt.value, helpers_ok=False) and _data_type(types.get(stmt.target.id))):
            return None
        free = free_names([stmt.value], fn)
        result, accumulate, binds = stmt.target.id, True, ()
        if result in free:
            return None
    else:
        if not all(isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                   and pure(s.value, helpers_ok=False) for s in run):
            return None
        binds = tuple(dict.fromkeys(s.targets[0].id for s in run))
        # every local but the result is read by a later statement of the run (else it would be dead)
        if any(not any(loads(later, s.targets[0].id) for later in run[k + 1:]) for k, s in enumerate(run[:-1])):
            return None
        free = free_names(run, fn)
        result, accumulate = run[-1].targets[0].id, False
        if set(free) & set(binds) or not _data_type(types.get(result)):
            return None
    if not free or len(free) > 4 or not all(n in types and not types[n].startswith("array:") for n in free):
        return None
    if not any(isinstance(n, (ast.Call, ast.BinOp)) for s in run for n in ast.walk(s)):
        return None  # a copy or a literal: nothing to learn from
    if any(isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Div, ast.FloorDiv, ast.Mod))
           and not isinstance(n.right, ast.Constant) and not _data_type(expr_type(n.right, types))
           for s in run for n in ast.walk(s)):
        return None  # an integer divisor: another kernel's integer may be 0 (a trap on the CPU)
    needs = tuple((n, types[n]) for n in free)
    return Portable("\n".join(ast.unparse(s) for s in run), needs, result, types[result], accumulate, binds,
                    frozenset(t for _, t in needs))


def portable_statements(sources: list[str]) -> tuple[Portable, ...]:
    """The splice index of a corpus: its portable runs of 1-3 statements, each text once, in corpus order."""
    found: dict[tuple[str, bool], Portable] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for fn in functions(tree):
            types = function_types(fn)
            for body, i, _ in positions(fn):
                for end in range(i + 1, min(i + 3, len(body)) + 1):
                    p = _portable(body[i:end], fn, types)
                    if p is not None:
                        found.setdefault((p.text, p.accumulate), p)
    return tuple(found.values())


def _value_reads(stmts: list[ast.stmt], types: dict[str, str], params: set[str]) -> list[ast.Name]:
    """Reads of floating-point locals in the values the statements compute (never in an index,
    a callee, a loop range or a condition, nor in a write to a parameter: a ``wp.ref`` output
    that liveness cannot see read), in AST order."""
    out: list[ast.Name] = []
    for stmt in stmts:
        to_param = isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id in params for t in stmt.targets)
        if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.Return)) and stmt.value is not None and not to_param:
            skip = {id(n) for sub in ast.walk(stmt.value) if isinstance(sub, ast.Subscript) for n in ast.walk(sub.slice)}
            # casts and ranges; queries' and helpers' arguments (they may be outputs the call writes)
            skip |= {id(n) for sub in ast.walk(stmt.value) if isinstance(sub, ast.Call)
                     and (call_name(sub) in _NOT_VALUES or call_name(sub).startswith(IMPURE)
                          or isinstance(sub.func, ast.Name) and sub.func.id not in PYTHON_CALLS)
                     for n in ast.walk(sub)}
            skip |= {id(sub.func) for sub in ast.walk(stmt.value) if isinstance(sub, ast.Call)}
            out += [n for n in ast.walk(stmt.value) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                    and id(n) not in skip and _data_type(types.get(n.id))
                    and not types[n.id].startswith("array:")]
        for name in ("body", "orelse"):
            block = getattr(stmt, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                out += _value_reads(block, types, params)
    return out


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node


def splice_statement(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """Graft a portable statement run of another real kernel (``site.statements``) into a place
    of this module whose surely-bound locals cover its inputs' types (see the module docstring)."""
    if not site.statements:
        return None
    places = []
    for fn in functions(tree):
        types = function_types(fn)
        for body, i, bound in positions(fn):
            if not (body is fn.body and i == 0 and body and isinstance(body[0], ast.Expr)):  # after a docstring
                places.append((fn, types, body, i, bound))
    taken_everywhere = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
        {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    own = {ast.unparse(s) for s in ast.walk(tree) if isinstance(s, (ast.Assign, ast.AugAssign))}  # no self-copies
    kernel, baseline = only_kernel(tree), None
    for _ in range(min(len(places), MAX_POSITIONS)):
        fn, types, body, i, bound = places.pop(rng.randrange(len(places)))
        have = {n: types[n] for n in sorted(bound) if n in types and not types[n].startswith("array:")}
        params = {a.arg for a in fn.args.args}
        reads = _value_reads(body[i:], types, params)
        read_after = {u.id for s in body[i:] for u in ast.walk(s) if isinstance(u, ast.Name)}
        accumulators = {t for n, t in have.items() if n in read_after and n not in params and _data_type(t)}
        read_types = {types[u.id] for u in reads}
        fits = [p for p in site.statements if p.needed <= set(have.values())
                and p.type in (accumulators if p.accumulate else read_types)
                and not any(line in own for line in p.text.splitlines())]
        if not fits:
            continue
        graft = rng.choice(fits)
        into = rng.choice([n for n, t in have.items() if t == graft.type and n in read_after and n not in params]) \
            if graft.accumulate else None
        mapping = _inputs(graft, have, rng, into)
        taken = set(taken_everywhere)
        for name in graft.binds:
            fresh = next(c for c in (name, *(f"{name}_{k}" for k in range(2, 100))) if c not in taken)
            taken.add(fresh)
            mapping[name] = fresh
        if into is not None:
            mapping[graft.result] = into
        stmts = [_Rename(mapping).visit(s) for s in ast.parse(graft.text).body]
        # a graft into code the liveness check finds dead (a write to a wp.ref parameter, an
        # accumulator nothing live reads) would be dead too: undone here rather than by the judge
        if baseline is None:
            baseline = defects(tree, kernel)
        undo = None
        if not graft.accumulate:
            use = rng.choice([u for u in reads if types[u.id] == graft.type])
            enclosing = next(s for s in body[i:] if any(n is use for n in ast.walk(s)))
            up = parent_map(enclosing).get(id(use))
            added = ast.BinOp(ast.Name(use.id, ast.Load()), ast.Add(), ast.Name(mapping[graft.result], ast.Load()))
            replace_child(up, use, added)
            undo = (up, added, use)
        body[i:i] = stmts
        if baseline is None or no_worse(defects(tree, kernel), baseline):
            return f"splice_statement: {ast.unparse(stmts[-1])[:60]}"
        del body[i:i + len(stmts)]
        if undo is not None:
            replace_child(*undo)
    return None


def _inputs(graft: Portable, have: dict[str, str], rng: random.Random, into: str | None) -> dict[str, str]:
    """Donor input -> target local of its type, distinct donor names to distinct locals (and to
    the accumulator ``into``) while the target has enough of the type (``tid % W`` should not
    become ``i % i``)."""
    mapping: dict[str, str] = {}
    for name, want in graft.needs:
        options = [n for n, t in have.items() if t == want]
        unused = [n for n in options if n not in mapping.values() and n != into]
        mapping[name] = rng.choice(unused or [n for n in options if n != into] or options)
    return mapping
