"""Per-record metadata derived from the kernel's Python AST (works for any Warp source,
generated or real): features, builtins, parameter types, size and complexity.

``builtins`` names what Warp lowers the source to, not only the ``wp.*`` calls: an
operator is the builtin Warp calls for it (``a + b`` -> ``add``, ``not c`` -> ``unot``),
and Python builtins Warp maps onto its own (``float``, ``len``, ``abs``, ``print``,
``range``) count as themselves. Type annotations (``wp.array``, ``wp.vec3`` in a
signature) are not calls and are not counted.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from synth.quality.modinfo import decorator_name, wp_call
from synth.gen.signatures import BINOP_BUILTINS, UNARY_BUILTINS, group_of


@dataclass(frozen=True, slots=True)
class SourceFacts:
    loc: int
    n_params: int
    param_types: list[str]
    features: list[str]
    builtins: list[str]
    complexity: int  # cyclomatic-style: 1 + decisions (if/elif/loop/boolean op/where/ternary)


_TYPE_FEATURES = (
    (re.compile(r"^(vec\d\w*|vector|normalize|cross|dot|length\w*)$"), "vectors"),
    (re.compile(r"^(mat\d\d\w*|matrix\w*|identity|outer|transpose|inverse\w*|determinant|svd\d|qr3|eig3)$"),
     "matrices"),
    (re.compile(r"^quat\w*$|^quaternion$"), "quaternions"),
    (re.compile(r"^transform\w*$"), "transforms"),
    (re.compile(r"^spatial_\w+$"), "spatial"),
    (re.compile(r"^(float16|float64|int8|int16|int64|uint8|uint16|uint32|uint64)$"), "wide_scalars"),
    (re.compile(r"^(rand\w*|randn|noise|pnoise|curlnoise|sample_\w+|poisson)$"), "random"),
    (re.compile(r"^atomic_\w+$"), "atomics"),
)
_ANNOTATION_ONLY = re.compile(r"^array(\dd)?$")
_ANY = frozenset({"Any", "typing.Any", "wp.Any"})
# Builtin group (synth.gen.signatures.group_of) -> feature; tile queries of meshes and BVHs
# are geometry as well as tiles.
_GROUP_FEATURES = {"tile": "tiles", "geometry": "geometry", "volume": "volumes", "texture": "textures"}
_NOISE = frozenset({"noise", "pnoise", "curlnoise"})
# Tile builtins whose operands or results Warp keeps in shared memory whatever the storage
# the caller asked for (matrix products, FFTs, factorisations and solves, sorts, scans).
_SHARED_TILE_OPS = re.compile(r"^tile_(matmul|fft|ifft|cholesky\w*|lower_solve\w*|upper_solve\w*|sort|scan_\w+)$")
_LOWERED = frozenset({"kernel", "func", "func_grad", "func_replay"})


class _Walker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.features: set[str] = set()
        self.builtins: set[str] = set()
        self.complexity = 1
        self.funcs: dict[str, int] = {}
        self.in_func = 0  # depth of @wp.kernel / @wp.func bodies being visited

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        decorators = {decorator_name(d) for d in node.decorator_list}
        if decorators & {"func_grad", "func_replay"}:
            self.features.add("custom_grad")
        if "func" in decorators and any(a.annotation is not None and ast.unparse(a.annotation) in _ANY
                                        for a in node.args.args):
            self.features.add("generic")
        if "func" in decorators:
            self.features.add("funcs")
            self.funcs[node.name] = self.funcs.get(node.name, 0) + 1
            if node.args.defaults:
                self.features.add("default_args")
        # Only bodies Warp compiles count: decorators (wp.kernel(enable_backward=False)),
        # annotations and defaults are Python that runs at import, not lowered code.
        lowered = bool(decorators & _LOWERED)
        self.in_func += lowered
        for stmt in node.body:
            self.visit(stmt)
        self.in_func -= lowered

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if "struct" in {decorator_name(d) for d in node.decorator_list}:
            self.features.add("structs")
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self.features.add("loops")
        self.complexity += 1
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        self.features.update(("loops", "while"))
        self.complexity += 1
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        self.features.add("branches")
        self.complexity += 1
        if any(isinstance(n, ast.Return) for n in node.body):
            self.features.add("early_return")
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.complexity += 1
        self.features.add("ternary")
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        self.complexity += len(node.values) - 1
        self.generic_visit(node)

    def visit_Break(self, node: ast.Break) -> None:
        self.features.add("break_continue")

    visit_Continue = visit_Break

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.features.add("augassign")
        self._op(BINOP_BUILTINS.get(type(node.op).__name__))
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        target = node.targets[0]
        if isinstance(target, ast.Tuple):
            value = node.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "tid":
                self.features.add(f"launch_{len(target.elts)}d")
            else:
                self.features.add("multi_assign")
        elif isinstance(target, (ast.Subscript, ast.Attribute)) and not isinstance(target.value, ast.Subscript):
            self.features.add("component_assign" if isinstance(target, ast.Attribute) else "indexed_store")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.MatMult):
            self.features.add("matmul")
        self._op(BINOP_BUILTINS.get(type(node.op).__name__))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if not (isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)):  # -1.5 is a literal
            self._op(UNARY_BUILTINS.get(type(node.op).__name__))
        self.generic_visit(node)

    def _op(self, name: str | None) -> None:
        if name and self.in_func:
            self.builtins.add(name)

    def visit_Call(self, node: ast.Call) -> None:
        name = wp_call(node)
        if name == "constant" and not self.in_func:
            self.features.add("constants")  # a module-level wp.constant
        if name and self.in_func and not _ANNOTATION_ONLY.match(name):
            feature = _GROUP_FEATURES.get(group_of().get(name, ""))
            if feature:
                self.features.add(feature)
            if name.startswith(("tile_bvh_", "tile_mesh_")):
                self.features.add("geometry")
            if name in _NOISE:
                self.features.add("noise")
            if _SHARED_TILE_OPS.match(name) or any(
                    k.arg == "storage" and isinstance(k.value, ast.Constant) and k.value.value == "shared"
                    for k in node.keywords):
                self.features.add("shared_memory")
            self.builtins.add(name)
            if name in ("where", "select"):
                self.complexity += 1
                self.features.add("where")
            if name == "cast" or name in ("float", "int", "bool"):
                self.features.add("casts")
            if name in ("print", "printf", "expect_near"):
                self.features.add("debug_print")
            if name == "zeros":
                self.features.add("local_arrays")
            if name == "tid":
                self.features.add("launch_1d")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id == "wp":
            for pattern, feature in _TYPE_FEATURES:
                if pattern.match(node.attr):
                    self.features.add(feature)
        self.generic_visit(node)


def analyse(source: str, kernel_name: str) -> SourceFacts:
    tree = ast.parse(source)
    walker = _Walker()
    walker.visit(tree)
    features = walker.features
    if {"launch_2d", "launch_3d"} & features:
        features.discard("launch_1d")
    if any(n > 1 for n in walker.funcs.values()):
        features.add("overloads")
    kernel = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == kernel_name), None)
    param_types: list[str] = []
    if kernel is not None:
        param_types = [ast.unparse(a.annotation) if a.annotation else "" for a in kernel.args.args]
        if any(t.startswith("wp.array") for t in param_types):
            features.add("arrays")
        if any(re.search(r"ndim=[2-4]|array[2-4]d", t) for t in param_types):
            features.add("arrays_nd")
    loc = sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))
    return SourceFacts(loc, len(param_types), param_types, sorted(features), sorted(walker.builtins),
                       walker.complexity)
