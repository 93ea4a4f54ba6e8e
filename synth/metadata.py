"""Per-record metadata derived from the kernel's Python AST (works for any Warp source,
generated or real): features, builtins, parameter types, size and complexity."""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceFacts:
    loc: int
    n_params: int
    param_types: list[str]
    features: list[str]
    builtins: list[str]
    complexity: int  # cyclomatic-style: 1 + decisions (if/loop/boolean op/where)


_TYPE_FEATURES = {
    "vec2": "vectors", "vec3": "vectors", "vec4": "vectors",
    "mat22": "matrices", "mat33": "matrices", "mat44": "matrices", "identity": "matrices", "outer": "matrices",
    "quat": "quaternions", "quat_identity": "quaternions", "quat_from_axis_angle": "quaternions",
    "transform": "transforms", "spatial_vector": "spatial",
}


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def analyse(source: str, kernel_name: str) -> SourceFacts:
    tree = ast.parse(source)
    features: set[str] = set()
    builtins: set[str] = set()
    complexity = 1
    kernel: ast.FunctionDef | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            decorators = {_decorator_name(d) for d in node.decorator_list}
            if "func" in decorators:
                features.add("funcs")
            if node.name == kernel_name:
                kernel = node
        elif isinstance(node, ast.ClassDef) and "struct" in {_decorator_name(d) for d in node.decorator_list}:
            features.add("structs")
        elif isinstance(node, ast.For):
            features.add("loops")
            complexity += 1
        elif isinstance(node, ast.While):
            features.update(("loops", "while"))
            complexity += 1
        elif isinstance(node, ast.If):
            features.add("branches")
            complexity += 1
        elif isinstance(node, ast.BoolOp):
            complexity += len(node.values) - 1
        elif isinstance(node, (ast.Break, ast.Continue)):
            features.add("break_continue")
        elif isinstance(node, ast.AugAssign):
            features.add("augassign")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            features.add("matmul")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            value = node.func.value
            if isinstance(value, ast.Name) and value.id == "wp":
                name = node.func.attr
                if name != "array":  # a type annotation, not a builtin call
                    builtins.add(name)
                if name.startswith("atomic_"):
                    features.add("atomics")
                if name == "where":
                    complexity += 1
                if name.startswith("rand") or name.startswith("noise"):
                    features.add("random")
                feature = _TYPE_FEATURES.get(name)
                if feature:
                    features.add(feature)
    param_types: list[str] = []
    if kernel is not None:
        param_types = [ast.unparse(a.annotation) if a.annotation else "" for a in kernel.args.args]
        if any(t.startswith("wp.array") for t in param_types):
            features.add("arrays")
    loc = sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))
    return SourceFacts(loc, len(param_types), param_types, sorted(features), sorted(builtins), complexity)
