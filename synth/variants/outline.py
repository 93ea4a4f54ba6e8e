"""``outline``: a block of statements or a pure expression of a function moved into a new
``@wp.func`` (issue 15; the reverse of ``synth.variants.restructure.inline_helper``).

Same contract as ``synth.variants.mutations``: a pure AST edit, sites in AST order, choices from the
seeded ``random.Random``. Only code whose inputs all have known types (``synth.variants.localtypes``)
is outlined, because a ``@wp.func`` needs its parameters annotated; helper names are made from
what the code computes and never clash with the module or a Warp builtin or native function.
"""

from __future__ import annotations

import ast
import copy
import random

from synth.variants.blocks import free_names, loads, positions, pure
from synth.variants.localtypes import annotation, function_types
from synth.variants.mutations import Site, call_name, functions, replace_child

_OP_WORDS = {ast.Add: "sum", ast.Sub: "diff", ast.Mult: "scaled", ast.Div: "ratio"}
_CASTS = frozenset({"float", "int"})


def _expression_sites(fn: ast.FunctionDef, types: dict[str, str]) -> list[tuple[ast.stmt, ast.expr, list[str]]]:
    """Pure calls and arithmetic of two operations or more (one call is not worth a helper) in a
    value, outside indices, reading 1-4 typed locals: (statement, expression, inputs)."""
    sites = []
    for stmt in ast.walk(fn):
        if not isinstance(stmt, (ast.Assign, ast.AugAssign, ast.Return)) or stmt.value is None:
            continue
        parents = {id(c): p for p in ast.walk(stmt.value) for c in ast.iter_child_nodes(p)}
        for node in ast.walk(stmt.value):
            if not isinstance(node, (ast.BinOp, ast.Call)) or not pure(node) or _in_index(node, parents):
                continue
            if isinstance(node, ast.Call) and (call_name(node) in _CASTS or not node.args):
                continue
            ops = sum(isinstance(n, (ast.BinOp, ast.Call)) for n in ast.walk(node))
            free = free_names([node], fn)
            if ops >= 2 and free and len(free) <= 4 and all(n in types for n in free):
                sites.append((stmt, node, free))
    return sites


def _in_index(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    child, up = node, parents.get(id(node))
    while up is not None:
        if isinstance(up, ast.Subscript) and child is up.slice or isinstance(up, ast.Call) and child is up.func:
            return True
        child, up = up, parents.get(id(up))
    return False


def _block_sites(fn: ast.FunctionDef, types: dict[str, str]) -> list[tuple[list[ast.stmt], int, int, str, list[str]]]:
    """Runs of 2-4 pure local assignments with exactly one result read after them:
    (body, start, end, result, inputs)."""
    sites = []
    for body, i, _ in positions(fn):
        for end in range(i + 2, min(i + 4, len(body)) + 1):
            run = body[i:end]
            if not all(isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                       and pure(s.value) for s in run):
                break
            defined = [s.targets[0].id for s in run]
            inside = {id(n) for s in run for n in ast.walk(s)}
            outs = [n for n in dict.fromkeys(defined) if any(id(u) not in inside for u in loads(fn, n))]
            free = free_names(run, fn)
            if len(outs) == 1 and free and len(free) <= 4 and not set(free) & set(defined) \
                    and all(n in types for n in free):
                sites.append((body, i, end, outs[0], free))
    return sites


def helper_name(tree: ast.Module, base: str) -> str:
    """``base``, or ``base_2`` ...: a name nothing in the module uses and no Warp builtin has."""
    from synth.variants.source import name_clashes

    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)} \
        | {f.name for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.ClassDef))}
    for k in range(1, 100):
        name = base if k == 1 else f"{base}_{k}"
        probe = f"import warp as wp\n@wp.func\ndef {name}():\n    return 0\n"
        if name not in taken and not name_clashes(probe):
            return name
    raise ValueError("no free helper name")


def _helper(name: str, inputs: list[str], types: dict[str, str], body: list[ast.stmt]) -> ast.FunctionDef:
    args = ast.arguments([], [ast.arg(n, annotation(types[n])) for n in inputs], None, [], [], None, [])
    decorator = ast.Attribute(ast.Name("wp", ast.Load()), "func", ast.Load())
    return ast.FunctionDef(name, args, body, [decorator], None, lineno=0)


def outline(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """Outline a run of local assignments, or a pure expression, into a new ``@wp.func`` (the
    reverse of ``inline_helper``): its parameters are what the code reads, annotated with their
    types (only code whose inputs all have known types is outlined), and it returns the one
    value the rest of the function reads; the helper goes just before the function."""
    sites: list[tuple] = []
    for fn in functions(tree):
        types = function_types(fn)
        sites += [(fn, types, "expr", s) for s in _expression_sites(fn, types)]
        sites += [(fn, types, "block", s) for s in _block_sites(fn, types)]
    if not sites:
        return None
    fn, types, kind, chosen = rng.choice(sites)
    call_args: list[ast.expr]
    if kind == "expr":
        stmt, node, inputs = chosen
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
        if isinstance(target, ast.Name) and node is stmt.value:
            base = f"compute_{target.id}"
        else:
            word = call_name(node) if isinstance(node, ast.Call) else _OP_WORDS.get(type(node.op), "combine")
            base = f"{word}_{'_'.join(inputs[:2])}"
        name = helper_name(tree, base.lstrip("_"))
        helper = _helper(name, inputs, types, [ast.Return(copy.deepcopy(node))])
        call_args = [ast.Name(n, ast.Load()) for n in inputs]
        replace_child({id(c): p for p in ast.walk(stmt) for c in ast.iter_child_nodes(p)}.get(id(node)), node,
                      ast.Call(ast.Name(name, ast.Load()), call_args, []))
        what = ast.unparse(node)[:50]
    else:
        body, start, end, result, inputs = chosen
        name = helper_name(tree, f"compute_{result}".replace("__", "_"))
        run = body[start:end]
        helper = _helper(name, inputs, types, [*copy.deepcopy(run), ast.Return(ast.Name(result, ast.Load()))])
        call = ast.Call(ast.Name(name, ast.Load()), [ast.Name(n, ast.Load()) for n in inputs], [])
        body[start:end] = [ast.Assign([ast.Name(result, ast.Store())], call, lineno=0)]
        what = f"{end - start} statements -> {result}"
    tree.body.insert(tree.body.index(fn), helper)
    return f"outline: {kind}: {name}({', '.join(inputs)}) <- {what}"
