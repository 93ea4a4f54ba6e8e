"""Expression-level mutation operators of the variants source: pure AST edits of a real Warp
module (literals, operators, builtins, loop bounds, precision), and the helpers that
``synth.variants.restructure`` (statement-level operators) shares.

Each operator takes the parsed module (edited in place), a seeded ``random.Random`` and the
``Site`` context, and returns a one-line description of what it changed, or None when the
module has no place it applies. Operators only choose among sites listed in AST order
(``ast.walk`` / body order), never from sets, so the same seed edits the same node in every
process. They aim at edits that stay valid Warp and keep the quality contracts, but they do
not have to be right: ``synth.variants.source`` checks every result (canonical key, quality
contracts, Warp codegen) and rejects what fails.
"""

from __future__ import annotations

import ast
import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from synth.quality.modinfo import decorator_name

# Builtins whose calls can trade names: every member takes and returns the same types.
SWAP_CLASSES = (("sin", "cos"), ("asin", "acos"), ("sinh", "cosh"), ("floor", "ceil", "round", "trunc"),
                ("sqrt", "cbrt"), ("log", "log2", "log10"), ("min", "max"), ("length", "length_sq"),
                ("atomic_add", "atomic_sub"), ("atomic_min", "atomic_max"), ("degrees", "radians"),
                ("transform_point", "transform_vector"), ("quat_rotate", "quat_rotate_inv"),
                ("tile_min", "tile_max"), ("exp", "exp2"))
_SWAP = {name: cls for cls in SWAP_CLASSES for name in cls}
_BINOP_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
# Orderings only: ``==``/``!=`` also compare transforms, structs ..., where Warp's codegen accepts
# a swapped operator that the C++ compilers then reject (measured: 2,000 variants, --validate).
_COMPARE_SWAPS = {ast.Lt: (ast.LtE, ast.Gt), ast.LtE: (ast.Lt, ast.GtE), ast.Gt: (ast.GtE, ast.Lt),
                  ast.GtE: (ast.Gt, ast.LtE)}
# Precision families, by position: float32, float64, float16.
PRECISION = (("float32", "float64", "float16"), ("vec2", "vec2d", "vec2h"), ("vec3", "vec3d", "vec3h"),
              ("vec4", "vec4d", "vec4h"), ("vec2f", "vec2d", "vec2h"), ("vec3f", "vec3d", "vec3h"),
              ("vec4f", "vec4d", "vec4h"), ("mat22", "mat22d", "mat22h"), ("mat33", "mat33d", "mat33h"),
              ("mat44", "mat44d", "mat44h"), ("mat22f", "mat22d", "mat22h"), ("mat33f", "mat33d", "mat33h"),
              ("mat44f", "mat44d", "mat44h"), ("quat", "quatd", "quath"), ("quatf", "quatd", "quath"),
              ("transform", "transformd", "transformh"), ("transformf", "transformd", "transformh"),
              ("spatial_vector", "spatial_vectord", "spatial_vectorh"),
              ("spatial_vectorf", "spatial_vectord", "spatial_vectorh"))
# Calls whose integer arguments are shapes, sizes or indices (changing them breaks the kernel).
_SHAPE_CALLS = ("tile", "vec", "mat", "vector", "matrix", "zeros", "array", "constant", "types", "tid")
@dataclass(frozen=True, slots=True)
class Site:
    """What operators may read besides the module: expressions of the other parents."""

    # constructor (``ast.dump`` of the callee) -> closed expressions of the corpus calling it, in corpus order
    closed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # statements of the corpus portable into another kernel (``synth.variants.splicing.Portable``), in corpus order
    statements: tuple = ()


def functions(tree: ast.Module) -> list[ast.FunctionDef]:
    """The ``@wp.kernel`` and ``@wp.func`` definitions, in source order."""
    return [n for n in tree.body if isinstance(n, ast.FunctionDef)
            and any(decorator_name(d) in ("kernel", "func") for d in n.decorator_list)]


def parent_map(fn: ast.FunctionDef) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(fn) for child in ast.iter_child_nodes(node)}


def _in_shape_context(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Inside an index, an annotation, a keyword, a shape-taking call or a decorator."""
    child, up = node, parents.get(id(node))
    while up is not None:
        if isinstance(up, ast.Subscript) and child is up.slice or isinstance(up, (ast.keyword, ast.arg)):
            return True
        if isinstance(up, ast.AnnAssign) and child is up.annotation:
            return True
        if isinstance(up, ast.Call) and call_name(up).startswith(_SHAPE_CALLS):
            return True
        if isinstance(up, ast.For) and child is up.iter:
            return True  # loop bounds: their own operator
        child, up = up, parents.get(id(up))
    return False


def call_name(call: ast.AST) -> str:
    f = getattr(call, "func", None)
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def body_nodes(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef, ast.AST]]:
    for fn in functions(tree):
        for stmt in fn.body:
            for node in ast.walk(stmt):
                yield fn, node


def constant(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """A float literal scaled, or an integer operand of arithmetic or a comparison moved by one."""
    sites = []
    for fn in functions(tree):
        parents = parent_map(fn)
        for stmt in fn.body:
            for node in ast.walk(stmt):
                if not isinstance(node, ast.Constant) or isinstance(node.value, bool):
                    continue
                up = parents.get(id(node))
                if isinstance(node.value, float) and not _in_shape_context(node, parents) or isinstance(node.value, int) and isinstance(up, (ast.BinOp, ast.Compare)) \
                        and not _in_shape_context(node, parents):
                    sites.append(node)
    if not sites:
        return None
    node = rng.choice(sites)
    old = node.value
    if isinstance(old, float):
        # a factor from a log-uniform spread of 1/4..4 (3 significant digits): realistic magnitudes,
        # and rarely the same value twice, so two variants of one parent seldom collide
        factor = 2.0 ** rng.uniform(-2.0, 2.0)
        node.value = float(f"{old * factor:.3g}") if old else rng.choice((0.5, 1.0, 0.01, 0.1, 2.0))
    else:
        node.value = max(0, old + rng.choice((-2, -1, 1, 2))) if old > 2 else old + rng.choice((1, 2))
    return f"constant: {old!r} -> {node.value!r}"


def scale(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """The value an array store, a ``wp.tile_store`` or a helper's return writes, scaled by a
    literal gain, as real code applies gains, time steps and weights: an integer gain into an
    integer array, a gain of the array's precision into a float64/float16 one (Warp does not
    mix them)."""
    sites: list[tuple[ast.AST, str]] = []  # (node whose .value, or tile_store call whose 2nd arg, is scaled; array type)
    for fn in functions(tree):
        annotations = {a.arg: ast.unparse(a.annotation) if a.annotation else "" for a in fn.args.args}
        for stmt in fn.body:
            for n in ast.walk(stmt):
                if isinstance(n, ast.Call) and call_name(n) == "tile_store" and len(n.args) >= 2 \
                        and isinstance(n.args[0], ast.Name):
                    sites.append((n, annotations.get(n.args[0].id, "")))
                if not isinstance(n, (ast.Assign, ast.AugAssign, ast.Return)) or n.value is None \
                        or isinstance(n.value, (ast.Constant, ast.Tuple)):
                    continue
                target = n.targets[0] if isinstance(n, ast.Assign) and len(n.targets) == 1 else getattr(n, "target", None)
                if isinstance(n, ast.Return):
                    sites.append((n, ""))
                elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                    sites.append((n, annotations.get(target.value.id, "")))
    if not sites:
        return None
    node, annotation = rng.choice(sites)
    if "int" in annotation:
        gain: ast.expr = ast.Constant(rng.randint(2, 9))
    else:
        gain = ast.Constant(float(f"{2.0 ** rng.uniform(-3.0, 3.0):.3g}"))
        for wide in ("float64", "float16"):
            if wide in annotation:
                gain = ast.Call(ast.Attribute(ast.Name("wp", ast.Load()), wide, ast.Load()), [gain], [])
    if isinstance(node, ast.Call):
        node.args[1] = ast.BinOp(node.args[1], ast.Mult(), gain)
    else:
        node.value = ast.BinOp(node.value, ast.Mult(), gain)
    return f"scale: * {ast.unparse(gain)}"


def binop(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """``+`` and ``-`` traded, or ``*`` and ``/`` when the right operand is a float scale."""
    sites = [n for _, n in body_nodes(tree) if isinstance(n, ast.BinOp) and type(n.op) in _BINOP_SWAPS
             and (isinstance(n.op, (ast.Add, ast.Sub)) or isinstance(n.right, ast.Constant)
                  and isinstance(n.right.value, float) and n.right.value != 0.0)]
    if not sites:
        return None
    node = rng.choice(sites)
    old = type(node.op).__name__
    node.op = _BINOP_SWAPS[type(node.op)]()
    return f"binop: {old} -> {type(node.op).__name__}"


def compare(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """A comparison operator turned into its neighbour (strictness) or its mirror."""
    sites = [n for _, n in body_nodes(tree) if isinstance(n, ast.Compare) and len(n.ops) == 1
             and type(n.ops[0]) in _COMPARE_SWAPS]
    if not sites:
        return None
    node = rng.choice(sites)
    old = type(node.ops[0])
    node.ops = [rng.choice(_COMPARE_SWAPS[old])()]
    return f"compare: {old.__name__} -> {type(node.ops[0]).__name__}"


def builtin(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """A ``wp.*`` builtin call swapped for another of its signature class (sin/cos, min/max ...)."""
    sites = [n for _, n in body_nodes(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and isinstance(n.func.value, ast.Name) and n.func.value.id == "wp" and n.func.attr in _SWAP]
    if not sites:
        return None
    node = rng.choice(sites)
    old = node.func.attr
    node.func.attr = rng.choice([n for n in _SWAP[old] if n != old])
    return f"builtin: wp.{old} -> wp.{node.func.attr}"


def loop_bound(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """A constant ``range`` stop moved: down by one always, up by one only when the loop
    variable indexes nothing (a vector's or matrix's extent bounds an indexing loop)."""
    sites = []
    for _, node in body_nodes(tree):
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Call) and call_name(node.iter) == "range" \
                and node.iter.args and isinstance(node.iter.args[-1 if len(node.iter.args) < 3 else 1], ast.Constant):
            stop = node.iter.args[-1 if len(node.iter.args) < 3 else 1]
            if isinstance(stop.value, int) and not isinstance(stop.value, bool):
                sites.append((node, stop))
    if not sites:
        return None
    loop, stop = rng.choice(sites)
    var = loop.target.id if isinstance(loop.target, ast.Name) else None
    indexes = any(isinstance(n, ast.Subscript) and any(isinstance(m, ast.Name) and m.id == var
                                                       for m in ast.walk(n.slice)) for n in ast.walk(loop))
    old = stop.value
    moves = [m for m in ((-1,) if indexes else (-1, 1)) if old + m >= 1 and (len(loop.iter.args) == 1
                                                                         or old + m > 0)]
    if not moves:
        return None
    stop.value = old + rng.choice(moves)
    return f"loop_bound: range stop {old} -> {stop.value}"


def _precision_names(tree: ast.Module) -> dict[int, int]:
    """How often the module names each precision (0 float32, 1 float64, 2 float16)."""
    found = {0: 0, 1: 0, 2: 0}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "wp":
            for fam in PRECISION:
                if node.attr in fam:
                    found[fam.index(node.attr)] += 1
                    break
        elif isinstance(node, ast.Name) and node.id == "float":
            found[0] += 1
    return found


def dtype(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """The module's floating-point precision changed everywhere at once (kernel, helpers,
    structs, annotations, constructors, ``float``), float literals in arithmetic wrapped in
    the new scalar type as Warp wants for float64/float16; mixed-precision modules are skipped."""
    found = _precision_names(tree)
    used = [p for p in (0, 1, 2) if found[p]]
    if len(used) != 1:
        return None
    old = used[0]
    # float16 too: Warp 1.19 rejects mixed int/half arithmetic at codegen (the judge's check);
    # what its codegen lets through but the C++ compilers reject is ``half_hazards``' business
    new = rng.choice((1, 2)) if old == 0 else 0
    if new == 2 and half_hazards(tree, assume_half=True):
        new = 1
    return retarget(tree, old, new)


_HALF_NAMES = frozenset(fam[2] for fam in PRECISION)


def half_hazards(tree: ast.Module, assume_half: bool = False) -> frozenset[str]:
    """Why a float16 module would pass Warp's codegen and still fail NVRTC or clang (every
    reason found; empty when none).

    Measured on 2,000 variants (``--validate ptx,cpu-compile``): tile loads of half matrices
    (CUDA's coalesced copy needs sizes that are multiples of 4 bytes), ``tile_arange`` in half
    (an ``int * half`` inside Warp's tile library), and a bare float literal kept in a local
    (``eps = 1e-06`` is a float32, and ``half < float`` is ambiguous in C++). All of them, not
    the first: the judge compares a variant's with its real parent's, which compiles with its
    own (a parent with two must not have a variant rejected for the second)."""
    if not assume_half and not any(isinstance(n, ast.Attribute) and n.attr in _HALF_NAMES for n in ast.walk(tree)):
        return frozenset()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "wp" \
                and node.attr.startswith("tile"):
            found.add("float16 tiles")
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) else None
        if isinstance(value, ast.UnaryOp):
            value = value.operand
        if isinstance(value, ast.Constant) and isinstance(value.value, float):
            found.add("float16 module keeps a float32 literal in a local")
    return frozenset(found)


def retarget(tree: ast.Module, old: int, new: int) -> str:
    """``dtype``'s edit: precision ``old`` renamed ``new`` everywhere (indices of ``PRECISION``)."""
    mapping = {fam[old]: fam[new] for fam in PRECISION}
    scalar = PRECISION[0][new]
    parents = {id(c): n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    literals = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "wp" \
                and node.attr in mapping:
            node.attr = mapping[node.attr]
        elif isinstance(node, ast.Name) and node.id == "float":
            node.id = "wp"  # becomes wp.<scalar> below
            literals.append(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, float) and new != 0:
            up = parents.get(id(node))
            if isinstance(up, (ast.BinOp, ast.Compare)) or isinstance(up, ast.UnaryOp) and \
                    isinstance(parents.get(id(up)), (ast.BinOp, ast.Compare)):
                literals.append(node)
    for node in literals:
        up = parents.get(id(node))
        if isinstance(node, ast.Name):
            replacement: ast.expr = ast.Attribute(ast.Name("wp", ast.Load()), scalar, ast.Load())
        else:
            replacement = ast.Call(ast.Attribute(ast.Name("wp", ast.Load()), scalar, ast.Load()), [copy.copy(node)], [])
        replace_child(up, node, replacement)
    return f"dtype: {PRECISION[0][old]} -> {scalar}"


def replace_child(parent: ast.AST | None, old: ast.AST, new: ast.AST) -> None:
    if parent is None:
        return
    for name, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, name, new)
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new
                    return


def commute(tree: ast.Module, rng: random.Random, site: Site) -> str | None:
    """The operands of an addition swapped (addition commutes for every Warp type)."""
    sites = [n for _, n in body_nodes(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add)
             and ast.dump(n.left) != ast.dump(n.right)]
    if not sites:
        return None
    node = rng.choice(sites)
    node.left, node.right = node.right, node.left
    return f"commute: {ast.unparse(node)[:60]}"


ONCE = ("dtype", "vector_width", "launch_dim")  # at most once per variant: a second one mostly undoes the first
FRESH = ("constant", "scale")  # operators that write a new literal (many values, so rarely one seen before)


def richness(source: str) -> int:
    """How many places of a module the operators could edit (literals, arithmetic, comparisons,
    swappable builtins, assignments, constant loops), capped: the weight of a parent in the
    draw, so kernels with one or two editable spots (which could only give the same few
    variants again and again) are drawn less often than kernels with many."""
    count = 0
    for _, node in body_nodes(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, float) or isinstance(node, (ast.BinOp, ast.Compare)) \
                or isinstance(node, ast.Call) and call_name(node) in _SWAP or isinstance(node, (ast.Assign, ast.AugAssign, ast.For)):
            count += 1
    return min(count, RICHNESS_CAP)


RICHNESS_CAP = 8
