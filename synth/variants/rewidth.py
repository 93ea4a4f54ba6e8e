"""The vector-width mutation operator of the variants source (issue 15): every vector of one
width in a module one component wider or narrower. Same contract as ``synth.variants.mutations``; the
other type-level operators (array rank, launch dimensions) are in ``synth.variants.retype``.
"""

from __future__ import annotations

import ast
import copy
import random
import re

from synth.quality.modinfo import PYTHON_BUILTINS
from synth.variants.mutations import Site, functions
from synth.variants.retype import array_annotation, is_wp_attribute, wp_attribute

_VECTOR = re.compile(r"^vec([234])([fdhi]?)$")
# ``wp.*`` names a module may use for its vectors to change width: element-wise or reducing
# builtins, scalar types, decorators. Anything else (cross, quat/transform/mat constructors,
# mesh and noise queries, tiles, wp.vector(length=...)) fixes a dimension, and is not touched.
_WIDTH_AGNOSTIC = frozenset((
    "kernel", "func", "struct", "constant", "tid", "Any", "array", "array1d", "array2d", "array3d", "array4d",
    "float32", "float64", "float16", "int32", "int64", "uint32", "uint64", "int8", "uint8", "int16", "uint16",
    "bool", "dot", "length", "length_sq", "normalize", "abs", "min", "max", "clamp", "sign", "sqrt", "cbrt", "sin",
    "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "exp", "exp2", "log", "log2", "log10",
    "pow", "floor", "ceil", "round", "trunc", "frac", "lerp", "cw_mul", "cw_div", "atomic_add", "atomic_sub",
    "atomic_min", "atomic_max", "select", "where", "mod", "step", "nonzero", "isnan", "isinf", "isfinite",
    "degrees", "radians", "rand_init", "randf", "randi", "print", "printf", "expect_eq", "expect_neq",
    "expect_near", "neg", "add", "sub", "mul", "div"))
_COMPONENTS = ("x", "y", "z", "w")
_SCALAR_ZERO = {"d": "float64", "h": "float16"}


def vector_width(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """Every vector of one width (vec3, vec3f, vec3d, vec3h, vec3i) one component wider or
    narrower, through kernels, helpers, structs and array element types at once; a
    constructor of all components gets one more (zero, or one for a literal point) or loses
    its last (only when that is a literal). Only in modules that index no component by a
    variable (``for k in range(3): v[k]``), narrowed only when no named component is lost
    (``.z``, ``v[2]``), that call no builtin fixing a dimension (``cross``, ``quat_*``,
    ``mat33`` ...), and whose new width is not in use already."""
    reach = _component_reach(tree)
    if reach is None or not _calls_only_known(tree):
        return None
    widths: dict[int, None] = {}
    for node in ast.walk(tree):
        if is_wp_attribute(node):
            found = _VECTOR.match(node.attr)
            if found:
                widths.setdefault(int(found[1]))
            elif node.attr not in _WIDTH_AGNOSTIC:
                return None
        elif isinstance(node, ast.Name) and _VECTOR.match(node.id):
            return None  # an imported or aliased vector type: renaming wp.* alone would miss it
    moves = [(old, new) for old in widths for new in (old - 1, old + 1)
             if 2 <= new <= 4 and new not in widths and (new > old or reach < new)]
    if not moves:
        return None
    old, new = rng.choice(moves)
    constructors = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and is_wp_attribute(n.func)
                    and _width(n.func.attr) == old]
    for call in constructors:
        if call.keywords or any(isinstance(a, ast.Starred) for a in call.args) or len(call.args) not in (0, 1, old):
            return None
        if len(call.args) == old and new < old and any(isinstance(n, ast.Name) and n.id != "wp"
                                                       for n in ast.walk(call.args[-1])):
            return None  # dropping a component that reads a local would change what the kernel computes from it
    for node in ast.walk(tree):
        if is_wp_attribute(node) and _width(node.attr) == old:
            node.attr = f"vec{new}{_VECTOR.match(node.attr)[2]}"
    for call in constructors:
        if len(call.args) != old:
            continue
        if new < old:
            call.args.pop()
        else:
            call.args.append(_zero_like(call.args[-1], _VECTOR.match(call.func.attr)[2], rng))
    return f"vector_width: vec{old} -> vec{new}"


def _component_reach(tree: ast.Module) -> int | None:
    """The highest component any function body names (``v.z``, ``a[i][2]``: 2; -1 for none),
    or None when one is indexed by a variable (``v[k]``): every index into anything but an
    array parameter counts as a component (also a row of a 2-D array: too many, never too few)."""
    reach = -1
    for fn in functions(tree):
        arrays = {a.arg for a in fn.args.args if array_annotation(a.annotation) is not None}
        for stmt in fn.body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Attribute) and node.attr in _COMPONENTS and not is_wp_attribute(node):
                    reach = max(reach, _COMPONENTS.index(node.attr))
                elif isinstance(node, ast.Subscript) and not (isinstance(node.value, ast.Name)
                                                              and node.value.id in arrays):
                    if not (isinstance(node.slice, ast.Constant) and type(node.slice.value) is int):
                        return None
                    reach = max(reach, node.slice.value)
    return reach


def _calls_only_known(tree: ast.Module) -> bool:
    """Whether every call is to ``wp.*``, a Python builtin or a function or struct the module
    defines (an imported helper takes vectors of its own fixed width), without ``*`` unpacking
    (``wp.vec4(*a, *b)`` ties two widths together)."""
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Starred):
            return False
        if isinstance(node, ast.Call) and not is_wp_attribute(node.func) and not (
                isinstance(node.func, ast.Name) and (node.func.id in defined or node.func.id in PYTHON_BUILTINS)):
            return False
    return True


def _zero_like(last: ast.expr, suffix: str, rng: random.Random) -> ast.expr:
    """A new last component of the constructor's type: the last one's literal kind or cast."""
    if isinstance(last, ast.Constant) and isinstance(last.value, (int, float)) and not isinstance(last.value, bool):
        return ast.Constant(type(last.value)(rng.choice((0, 1))))
    if isinstance(last, ast.Call) and is_wp_attribute(last.func) and re.fullmatch(r"u?int\d+|float\d+", last.func.attr):
        return ast.Call(copy.deepcopy(last.func), [ast.Constant(0.0 if "float" in last.func.attr else 0)], [])  # a cast
    if suffix == "i":
        return ast.Constant(0)
    if suffix in _SCALAR_ZERO:
        return ast.Call(wp_attribute(_SCALAR_ZERO[suffix]), [ast.Constant(0.0)], [])
    return ast.Constant(0.0)


def _width(attr: str) -> int | None:
    return int(found[1]) if (found := _VECTOR.match(attr)) else None
