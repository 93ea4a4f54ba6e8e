"""What the quality checks need to know about a Warp module, read from its source text only.

Shared by ``synth.quality.liveness``, ``synth.quality.races`` and ``synth.quality.checks``. Deliberately ignorant of
the generator: it parses any module (generated or ingested real code) and answers structural
questions (which def is the kernel, which are ``@wp.func`` helpers, what the structs declare,
which annotations are arrays) so the checks measure the generator instead of trusting it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

# Array-like parameter types (wp.array(...), wp.array2d[...], wp.indexedarray, wp.fabricarray...).
_ARRAY_TYPE = re.compile(r"^(?:wp\.)?(?:indexed)?(?:fabric)?array(\d)?d?\b")
# Builtins that update their first argument in place (Warp's rand*/sample_* take `uint32& state`;
# transform_set_* mutate the transform): a call is a partial write of that local.
MUTATORS = re.compile(r"^(transform_set_(translation|rotation)|rand[fiun]?|randn|poisson|random_poisson\w*|"
                      r"sample_\w+)$")
# Calls whose result or effect reaches memory other threads (or the user) see.
EFFECT_BUILTINS = re.compile(r"^(atomic_\w+|print|printf|expect_\w+|tile_store|tile_atomic_\w+)$")
PYTHON_BUILTINS = frozenset({"float", "int", "bool", "len", "abs", "min", "max", "print", "range", "reversed",
                             "round", "True", "False", "None"})


def decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def wp_call(node: ast.AST) -> str | None:
    """``name`` for a call ``wp.name(...)`` (or a Python builtin Warp maps), else None."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "wp":
        return func.attr
    if isinstance(func, ast.Name) and func.id in PYTHON_BUILTINS:
        return func.id
    return None


def array_ndim(annotation: ast.expr | None) -> int | None:
    """Dimensions of an array annotation (1 unless it says otherwise); None when not an array."""
    if annotation is None:
        return None
    text = ast.unparse(annotation)
    match = _ARRAY_TYPE.match(text)
    if not match:
        return None
    if match.group(1):
        return int(match.group(1))
    found = re.search(r"ndim\s*=\s*(\d)", text)
    return int(found.group(1)) if found else 1


def names_in(node: ast.AST | None) -> set[str]:
    """Every name read in an expression (``wp`` included; callers ignore what is not local)."""
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def target_names(target: ast.expr) -> list[str]:
    """Plain names bound by an assignment target (tuple targets flattened)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for e in target.elts for n in target_names(e)]
    if isinstance(target, ast.Starred):
        return target_names(target.value)
    return []


def target_root(target: ast.expr) -> ast.expr:
    """``v`` of ``v.x[1]``: the object a component write changes."""
    while isinstance(target, (ast.Attribute, ast.Subscript)):
        target = target.value
    return target


def index_list(node: ast.Subscript) -> list[ast.expr]:
    sl = node.slice
    return list(sl.elts) if isinstance(sl, ast.Tuple) else [sl]


@dataclass(slots=True)
class Struct:
    name: str
    node: ast.ClassDef
    fields: dict[str, ast.expr | None] = field(default_factory=dict)  # name -> annotation


@dataclass(slots=True)
class Module:
    tree: ast.Module
    kernel: ast.FunctionDef
    funcs: dict[str, list[ast.FunctionDef]]  # @wp.func by name (several defs: overloads)
    structs: dict[str, Struct]
    module_names: set[str]  # names bound at module scope (constants, imports, defs)

    def all_funcs(self) -> Iterator[ast.FunctionDef]:
        for defs in self.funcs.values():
            yield from defs

    def struct_of(self, annotation: ast.expr | None) -> str | None:
        """The struct an annotation names (``S`` or ``mod.S``), if any."""
        if isinstance(annotation, ast.Name) and annotation.id in self.structs:
            return annotation.id
        if isinstance(annotation, ast.Attribute) and annotation.attr in self.structs:
            return annotation.attr
        return None

    def takes_array(self, name: str) -> bool:
        return any(array_ndim(a.annotation) is not None for d in self.funcs.get(name, ()) for a in params(d))


def params(fn: ast.FunctionDef) -> list[ast.arg]:
    return [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]


def bound_names(fn: ast.FunctionDef) -> set[str]:
    """Every name a function binds: its parameters and each assignment, augmented or
    annotated assignment and loop target."""
    names = {a.arg for a in params(fn)}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign):
            names.update(n for t in node.targets for n in target_names(t))
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
            names.update(target_names(node.target))
    return names


def parse_module(source: str, kernel_name: str) -> Module:
    """Raises SyntaxError, or LookupError when no def of that name is in the module."""
    tree = ast.parse(source)
    kernel: ast.FunctionDef | None = None
    funcs: dict[str, list[ast.FunctionDef]] = {}
    structs: dict[str, Struct] = {}
    module_names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            module_names.add(node.name)
            decorators = {decorator_name(d) for d in node.decorator_list}
            if node.name == kernel_name and (kernel is None or "kernel" in decorators):
                kernel = node
            elif "func" in decorators:
                funcs.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.ClassDef):
            module_names.add(node.name)
            if "struct" in {decorator_name(d) for d in node.decorator_list}:
                s = Struct(node.name, node)
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        s.fields[item.target.id] = item.annotation
                structs[node.name] = s
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                module_names.update(target_names(t))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module_names.update((a.asname or a.name).split(".")[0] for a in node.names)
    if kernel is None:
        raise LookupError(f"no def {kernel_name!r} in the module")
    return Module(tree, kernel, funcs, structs, module_names)


@dataclass(slots=True)
class Locals:
    """Which names of one function hold (views of) arrays, and which hold structs."""

    arrays: dict[str, int | None]  # name -> dimensions (None: not known, e.g. an alias)
    structs: dict[str, str]  # name -> struct name

    def field_annotation(self, mod: Module, expr: ast.expr) -> ast.expr | None:
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id in self.structs:
            return mod.structs[self.structs[expr.value.id]].fields.get(expr.attr)
        return None

    def is_array(self, mod: Module, expr: ast.expr) -> bool:
        """An array in memory (a parameter, its alias, a struct's array field); wp.zeros locals are not."""
        if isinstance(expr, ast.Name):
            return expr.id in self.arrays
        return array_ndim(self.field_annotation(mod, expr)) is not None


def local_types(mod: Module, fn: ast.FunctionDef) -> Locals:
    found = Locals({a.arg: nd for a in params(fn) if (nd := array_ndim(a.annotation)) is not None},
                   {a.arg: s for a in params(fn) if (s := mod.struct_of(a.annotation))})
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name, value = node.targets[0].id, node.value
        if found.is_array(mod, value):
            found.arrays[name] = found.arrays.get(value.id) if isinstance(value, ast.Name) else None
        elif isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in mod.structs:
            found.structs[name] = value.func.id
    return found


def memory_write(mod: Module, local: Locals, target: ast.expr) -> bool:
    """Whether a component write target (``out[i].x``, ``s.a[i]``) stores into an array in memory."""
    node = target
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Subscript) and local.is_array(mod, node.value):
            return True
        node = node.value
    return False


def component_uses(target: ast.expr) -> set[str]:
    """Names read by the indices of a component write target (``v[i][j]`` reads i and j)."""
    used: set[str] = set()
    node = target
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Subscript):
            used |= names_in(node.slice)
        node = node.value
    return used
