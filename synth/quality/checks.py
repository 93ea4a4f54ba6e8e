"""Kernel quality, measured from a module's source text alone (issue 19).

``check_kernel(source, kernel_name)`` reads any Warp module, generated or real, and says what
in it a model could not learn anything from, or would learn something wrong from:

- dead local assignments (``synth.quality.liveness``: flow-sensitive, strong liveness over the
  kernel and every ``@wp.func``),
- kernel parameters never referenced (and, as a figure of its own, parameters of reachable
  helpers never referenced), ``@wp.func`` helpers the kernel never reaches (directly
  or through other helpers), ``@wp.struct`` classes nothing reachable mentions (kernel and
  reachable helpers, including annotations, and fields of reachable structs), fields of the
  reachable structs never accessed as an attribute anywhere (matched by name),
- constant conditions: ``if``/``elif``/``while`` tests, ternaries and the condition of
  ``wp.where``/``wp.select`` that read no local or parameter of their function (only
  literals, ``wp.*`` constructors and builtins, module-level constants); ``while True`` is
  the idiom for a loop left by ``break`` and is not counted,
- race-contract violations (``synth.quality.races``).

It imports nothing of the generator on purpose: it is the independent check of it.
``QualityTotals`` sums results over a corpus for ``jitsynth report``.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from synth.quality.liveness import Assignment, assignments
from synth.quality.modinfo import Module, bound_names, params, parse_module, wp_call
from synth.quality.races import RaceViolation, check_races

DEFECTS = ("dead_assignment", "unused_param", "uncalled_helper", "unused_struct", "unused_struct_field",
           "constant_condition", "race_violation", "unused_helper_param")


@dataclass(frozen=True, slots=True)
class KernelQuality:
    kernel: str
    assignments: int  # counted local assignments, kernel and every @wp.func
    dead_assignments: tuple[Assignment, ...]
    kernel_params: tuple[str, ...]
    unused_kernel_params: tuple[str, ...]
    helpers: tuple[str, ...]
    uncalled_helpers: tuple[str, ...]
    structs: tuple[str, ...]
    unused_structs: tuple[str, ...]
    unused_struct_fields: tuple[str, ...]  # "Struct.field", reachable structs only
    constant_conditions: tuple[str, ...]  # "function:line: condition"
    race_violations: tuple[RaceViolation, ...]
    array_roles: dict[str, str] = field(default_factory=dict)  # array -> input | owned | accumulator | violation
    unused_helper_params: tuple[str, ...] = ()  # "helper.param" of reachable helpers, never referenced

    @property
    def defects(self) -> tuple[str, ...]:
        """The DEFECTS this kernel has (each at most once)."""
        present = (self.dead_assignments, self.unused_kernel_params, self.uncalled_helpers, self.unused_structs,
                   self.unused_struct_fields, self.constant_conditions, self.race_violations,
                   self.unused_helper_params)
        return tuple(name for name, items in zip(DEFECTS, present, strict=True) if items)


def _mentions(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _reachable_helpers(mod: Module) -> set[str]:
    seen: set[str] = set()
    todo = [mod.kernel]
    while todo:
        for name in _mentions(todo.pop()) & mod.funcs.keys() - seen:
            seen.add(name)
            todo.extend(mod.funcs[name])
    return seen


def _used_structs(mod: Module, helpers: set[str]) -> set[str]:
    used = _mentions(mod.kernel) & mod.structs.keys()
    for name in helpers:
        for fn in mod.funcs[name]:
            used |= _mentions(fn) & mod.structs.keys()
    todo = list(used)
    while todo:  # a reachable struct's fields make their struct types reachable
        for ann in mod.structs[todo.pop()].fields.values():
            for name in (_mentions(ann) if ann is not None else set()) & mod.structs.keys() - used:
                used.add(name)
                todo.append(name)
    return used


def _constant_conditions(fn: ast.FunctionDef) -> list[str]:
    local = bound_names(fn)
    # wp.static(...) is evaluated at codegen time by design (a function or value picked
    # from module constants): its conditions are meant to be constant.
    static = {id(n) for call in ast.walk(fn) if wp_call(call) == "static" for n in ast.walk(call)}
    found = []
    for node in ast.walk(fn):
        if id(node) in static:
            continue
        test: ast.expr | None = None
        if isinstance(node, (ast.If, ast.IfExp)):
            test = node.test
        elif isinstance(node, ast.While):
            is_true = isinstance(node.test, ast.Constant) and node.test.value in (True, 1)
            test = None if is_true else node.test
        elif wp_call(node) in ("where", "select") and isinstance(node, ast.Call) and node.args:
            test = node.args[0]
        if test is not None and not {n.id for n in ast.walk(test) if isinstance(n, ast.Name)} & local:
            found.append(f"{fn.name}:{test.lineno}: {ast.unparse(test)}")
    return found


def _unused_params(fn: ast.FunctionDef) -> list[str]:
    used = {n.id for stmt in fn.body for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    return [a.arg for a in params(fn) if a.arg not in used]


def check_module(mod: Module) -> KernelQuality:
    kernel = mod.kernel
    functions = [kernel, *mod.all_funcs()]
    counted = [a for fn in functions for a in assignments(mod, fn)]
    kernel_params = tuple(a.arg for a in params(kernel))
    helpers = _reachable_helpers(mod)
    structs = _used_structs(mod, helpers)
    attrs = {n.attr for n in ast.walk(mod.tree) if isinstance(n, ast.Attribute)}
    races = check_races(mod)
    return KernelQuality(
        kernel=kernel.name,
        assignments=len(counted),
        dead_assignments=tuple(a for a in counted if a.dead),
        kernel_params=kernel_params,
        unused_kernel_params=tuple(_unused_params(kernel)),
        helpers=tuple(mod.funcs),
        uncalled_helpers=tuple(sorted(mod.funcs.keys() - helpers)),
        structs=tuple(mod.structs),
        unused_structs=tuple(sorted(mod.structs.keys() - structs)),
        unused_struct_fields=tuple(f"{s}.{f}" for s in sorted(structs) for f in mod.structs[s].fields
                                   if f not in attrs),
        constant_conditions=tuple(c for fn in functions for c in _constant_conditions(fn)),
        race_violations=races.violations,
        array_roles=races.roles,
        unused_helper_params=tuple(f"{fn.name}.{p}" for name in sorted(helpers) for fn in mod.funcs[name]
                                   for p in _unused_params(fn)),
    )


def check_kernel(source: str, kernel_name: str) -> KernelQuality:
    """Quality of ``kernel_name`` in the module ``source``.

    Raises SyntaxError for source that does not parse, LookupError when the kernel is absent.
    """
    return check_module(parse_module(source, kernel_name))


@dataclass(slots=True)
class QualityTotals:
    """Quality summed over a corpus: counts, and the share of kernels with each defect."""

    kernels: int = 0
    unreadable: int = 0  # sources that did not parse or lacked the kernel (not in the other counts)
    assignments: int = 0
    dead_assignments: int = 0
    kernel_params: int = 0
    unused_kernel_params: int = 0
    race_violations: int = 0
    with_defect: Counter[str] = field(default_factory=Counter)

    def add(self, quality: KernelQuality | None) -> None:
        if quality is None:
            self.unreadable += 1
            return
        self.kernels += 1
        self.assignments += quality.assignments
        self.dead_assignments += len(quality.dead_assignments)
        self.kernel_params += len(quality.kernel_params)
        self.unused_kernel_params += len(quality.unused_kernel_params)
        self.race_violations += len(quality.race_violations)
        self.with_defect.update(quality.defects)

    def as_dict(self) -> dict[str, Any]:
        def share(n: int, d: int) -> float:
            return round(n / d, 4) if d else 0.0

        return {
            "kernels": self.kernels, "unreadable": self.unreadable,
            "assignments": self.assignments, "dead_assignments": self.dead_assignments,
            "dead_assignment_share": share(self.dead_assignments, self.assignments),
            "kernel_params": self.kernel_params, "unused_kernel_params": self.unused_kernel_params,
            "unused_kernel_param_share": share(self.unused_kernel_params, self.kernel_params),
            "race_violations": self.race_violations,
            "kernels_with": {d: self.with_defect[d] for d in DEFECTS},
            "kernel_share_with": {d: share(self.with_defect[d], self.kernels) for d in DEFECTS},
        }
