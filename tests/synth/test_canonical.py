"""Laws of the dedup key: renaming and formatting do not change it; code changes do."""

from __future__ import annotations

import ast

from hypothesis import given, settings
from hypothesis import strategies as st

from synth.canonical import canonical_key
from synth.gen.generator import generate

BASE = '''import warp as wp

@wp.func
def helper(a: float) -> float:
    return a * 2.0

@wp.kernel
def k(x: wp.array(dtype=float), y: wp.array(dtype=float)):
    tid = wp.tid()
    v = helper(x[tid])
    y[tid] = v + 1.0
'''


def test_renaming_and_formatting_keep_the_key() -> None:
    renamed = (BASE.replace("helper", "other_fn").replace("def k(", "def kern(").replace(" v ", " value ")
               .replace(" v +", " value +").replace("x:", "inp:").replace("x[", "inp["))
    reformatted = BASE.replace("a * 2.0", "a*2.0  # doubled").replace("\n\n@wp.kernel", '\n\n\n@wp.kernel')
    docstring = BASE.replace("    tid = wp.tid()", '    """A docstring."""\n    tid = wp.tid()')
    key = canonical_key(BASE)
    assert canonical_key(renamed) == key
    assert canonical_key(reformatted) == key
    assert canonical_key(docstring) == key
    assert len(key) == 32 and int(key, 16) >= 0


def test_different_code_changes_the_key() -> None:
    assert canonical_key(BASE) != canonical_key(BASE.replace("2.0", "3.0"))
    assert canonical_key(BASE) != canonical_key(BASE.replace("v + 1.0", "1.0 + v"))
    assert canonical_key(BASE) != canonical_key(BASE.replace("wp.array(dtype=float), y", "wp.array(dtype=int), y"))


def _defined_names(source: str) -> list[str]:
    tree = ast.parse(source)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    names |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    names |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return sorted(names)


class _Rename(ast.NodeTransformer):
    """Rename what the module defines, as a person would: names, parameters, functions,
    structs and their fields, and keywords of calls to the module's own functions, but
    never a keyword of a Warp builtin (``wp.tile_randi(..., rng=rng)``: only the value)."""

    def __init__(self, mapping: dict[str, str], functions: set[str]) -> None:
        self.mapping, self.functions = mapping, functions

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self.mapping.get(node.arg, node.arg)
        return self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self.mapping.get(node.name, node.name)
        return self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.mapping.get(node.name, node.name)
        return self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if not (isinstance(node.value, ast.Name) and node.value.id == "wp"):
            node.attr = self.mapping.get(node.attr, node.attr)
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name) and node.func.id in self.functions:
            for kw in node.keywords:
                kw.arg = self.mapping.get(kw.arg, kw.arg) if kw.arg else None
        return self.generic_visit(node)


def _renamed(source: str, salt: int) -> str:
    tree = ast.parse(source)
    functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    mapping = {name: f"zz{salt}_{i}" for i, name in enumerate(_defined_names(source))}
    return ast.unparse(_Rename(mapping, functions).visit(tree))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**40), salt=st.integers(min_value=0, max_value=10**6))
def test_key_invariant_under_renaming_generated_kernels(seed: int, salt: int) -> None:
    source = generate(seed).source
    renamed = _renamed(source, salt)
    assert renamed != source
    assert canonical_key(renamed) == canonical_key(source)
    # Formatting: ast.unparse rewrites spacing and parentheses.
    assert canonical_key(ast.unparse(ast.parse(source))) == canonical_key(source)


