"""Static types of a Warp function's locals and expressions, read from its source text alone.

The statement-level operators (``synth.variants.blocks``) need types to write annotated ``@wp.func``
parameters, to pick a neutral value for a deleted local and to match statements across
kernels. Warp infers types during codegen; this is the small, conservative part of that
inference the operators can use as pure logic: parameter annotations, constructors and casts,
literals, ``wp.tid()``, full-rank array reads, loop indices, and builtins and arithmetic whose
result type follows from their operands. Whatever is not certain is None (unknown), so an
operator skips it; Warp's codegen in the judge still checks every result.

Types are canonical names (``float32``, ``vec3f``, ``mat33f``, ``int32`` ...: Warp's aliases
``float``, ``vec3``, ``mat33`` ... folded in); arrays are ``array:`` plus their annotation text.
"""

from __future__ import annotations

import ast
import re

from synth.quality.modinfo import array_ndim, index_list, params, target_names

_ALIASES = {"float": "float32", "int": "int32", "bool": "bool", "vec2": "vec2f", "vec3": "vec3f", "vec4": "vec4f",
            "mat22": "mat22f", "mat33": "mat33f", "mat44": "mat44f", "quat": "quatf", "transform": "transformf",
            "spatial_vector": "spatial_vectorf", "spatial_matrix": "spatial_matrixf"}
_SCALARS = frozenset({"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                      "uint32", "uint64", "bool"})
_COMPOSITE = re.compile(r"^(vec[234]|mat22|mat33|mat44|quat|transform|spatial_vector|spatial_matrix)"
                        r"(f|d|h|i|ui|l|ul|s|us|b|ub)$")
_SUFFIX_SCALAR = {"f": "float32", "d": "float64", "h": "float16", "i": "int32", "ui": "uint32", "l": "int64",
                  "ul": "uint64", "s": "int16", "us": "uint16", "b": "int8", "ub": "uint8"}
FLOATS = frozenset({"float16", "float32", "float64"})
# builtins whose result has the type of their first (or only) operand
_SAME_AS_FIRST = frozenset({"sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "sqrt", "cbrt",
                            "exp", "exp2", "log", "log2", "log10", "abs", "floor", "ceil", "round", "trunc", "frac",
                            "sign", "normalize", "min", "max", "clamp", "lerp", "atan2", "pow", "degrees",
                            "radians", "cross", "neg", "quat_inverse", "transform_inverse", "smoothstep"})
# builtins that return the scalar type of their first operand
_SCALAR_OF_FIRST = frozenset({"length", "length_sq", "dot", "determinant", "trace"})
# builtins that return the type of their second operand (q, v) -> v
_SAME_AS_SECOND = frozenset({"quat_rotate", "quat_rotate_inv", "transform_point", "transform_vector"})


def canonical(name: str) -> str | None:
    """The canonical type a type name (``float``, ``wp.vec3``, ``vec3d`` ...) denotes, else None."""
    name = name.removeprefix("wp.")
    name = _ALIASES.get(name, name)
    return name if name in _SCALARS or _COMPOSITE.match(name) else None


def scalar_of(t: str) -> str | None:
    """``float32`` for ``vec3f``, ``float64`` for ``mat33d``; a scalar is its own."""
    if t in _SCALARS:
        return t
    match = _COMPOSITE.match(t)
    return _SUFFIX_SCALAR.get(match.group(2)) if match else None


def annotation(t: str) -> ast.expr:
    """An annotation for a canonical type: ``float``/``int`` as real code writes them, ``wp.*`` otherwise."""
    if t.startswith("array:"):
        return ast.parse(t.removeprefix("array:"), mode="eval").body
    if t in ("float32", "int32", "bool"):
        return ast.Name({"float32": "float", "int32": "int"}.get(t, t), ast.Load())
    return ast.Attribute(ast.Name("wp", ast.Load()), t, ast.Load())


def _annotation_type(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    if array_ndim(node) is not None:
        return "array:" + ast.unparse(node)
    return canonical(ast.unparse(node))


def _array_dtype(annotation_text: str) -> tuple[str | None, int]:
    """(element type, dimensions) of an ``array:`` type."""
    tree = ast.parse(annotation_text.removeprefix("array:"), mode="eval").body
    ndim = array_ndim(tree) or 1
    dtype: ast.expr | None = None
    if isinstance(tree, ast.Call):
        dtype = next((k.value for k in tree.keywords if k.arg == "dtype"), tree.args[0] if tree.args else None)
    elif isinstance(tree, ast.Subscript):
        dtype = tree.slice
    return (canonical(ast.unparse(dtype)) if dtype is not None else None), ndim


def expr_type(node: ast.expr, env: dict[str, str]) -> str | None:
    """The type of an expression given the types of the names it reads (None: not known)."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            return "bool"
        return "int32" if isinstance(node.value, int) else "float32" if isinstance(node.value, float) else None
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.UnaryOp):
        return "bool" if isinstance(node.op, ast.Not) else expr_type(node.operand, env)
    if isinstance(node, ast.Compare):
        return "bool"
    if isinstance(node, ast.BinOp):
        return _binop_type(node, env)
    if isinstance(node, ast.Subscript):
        return _subscript_type(node, env)
    if isinstance(node, ast.Call):
        return _call_type(node, env)
    if isinstance(node, ast.IfExp):
        body, orelse = expr_type(node.body, env), expr_type(node.orelse, env)
        return body if body == orelse else None
    return None


def _binop_type(node: ast.BinOp, env: dict[str, str]) -> str | None:
    left, right = expr_type(node.left, env), expr_type(node.right, env)
    if left is None or right is None or left.startswith("array:") or right.startswith("array:"):
        return None
    if left == right:
        return left
    if isinstance(node.op, ast.Mult):
        if left in _SCALARS and scalar_of(right) == left:
            return right
        if right in _SCALARS and scalar_of(left) == right:
            return left
        if left.startswith("mat") and right.startswith("vec") and scalar_of(left) == scalar_of(right) \
                and left[3] == right[3]:
            return right  # mat33 * vec3
    if isinstance(node.op, ast.Div) and right in _SCALARS and scalar_of(left) == right:
        return left
    return None


def _subscript_type(node: ast.Subscript, env: dict[str, str]) -> str | None:
    base = expr_type(node.value, env)
    if base is None:
        return None
    indices = index_list(node)
    if base.startswith("array:"):
        dtype, ndim = _array_dtype(base)
        return dtype if len(indices) == ndim and not any(isinstance(i, ast.Slice) for i in indices) else None
    if any(isinstance(i, ast.Slice) for i in indices):
        return None
    if base.startswith("vec") and len(indices) == 1:
        return scalar_of(base)
    if base.startswith("mat") and len(indices) == 2:
        return scalar_of(base)
    return None


def _call_type(node: ast.Call, env: dict[str, str]) -> str | None:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
        and func.value.id == "wp" else func.id if isinstance(func, ast.Name) and func.id in ("float", "int") else None
    if name is None:
        return None
    if canonical(name) is not None and name not in ("bool",):
        return canonical(name)
    if name == "tid" and not node.args:
        return "int32"
    if name in ("quat_identity", "transform_identity") and not node.args and not node.keywords:
        return canonical(name.split("_")[0])
    if not node.args:
        return None
    first = expr_type(node.args[0], env)
    if name in _SAME_AS_FIRST:
        return first if first is not None and not first.startswith("array:") else None
    if name in _SCALAR_OF_FIRST:
        return scalar_of(first) if first is not None else None
    if name in _SAME_AS_SECOND and len(node.args) == 2:
        return expr_type(node.args[1], env)
    return None


def function_types(fn: ast.FunctionDef) -> dict[str, str]:
    """Name -> type for the parameters and the locals of ``fn`` whose every definition agrees
    (a local with one unknown definition is still typed by the others: Warp keeps a local's type)."""
    env = {a.arg: t for a in params(fn) if (t := _annotation_type(a.annotation)) is not None}
    fixed = set(env)
    conflicting: set[str] = set()
    typed: list[tuple[str, ast.expr | None, str | None]] = []  # (local, value to type, or its known type)
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            typed.append((node.targets[0].id, node.value, None))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            typed.append((node.target.id, None, _annotation_type(node.annotation)))
        elif isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(node.iter, ast.Call) \
                and isinstance(node.iter.func, ast.Name) and node.iter.func.id == "range":
            typed.append((node.target.id, None, "int32"))
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple) \
                and isinstance(node.value, ast.Call) and ast.unparse(node.value) == "wp.tid()":
            typed += [(n, None, "int32") for n in target_names(node.targets[0])]  # i, j = wp.tid()
        elif isinstance(node, (ast.Assign, ast.For)):  # other tuple targets, other loops: not typed here
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                conflicting.update(n for n in target_names(t) if n not in fixed)
    for _ in range(4):  # locals typed from locals: a few rounds reach the fixpoint of real kernels
        changed = False
        for name, value, known in typed:
            t = known if value is None else expr_type(value, env)
            if name in fixed or name in conflicting or t is None:
                continue
            if env.get(name, t) != t:
                conflicting.add(name)
                env.pop(name, None)
            elif name not in env:
                env[name] = t
                changed = True
        if not changed:
            break
    return env
