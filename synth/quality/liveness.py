"""Dead local assignments: backward liveness over the structured AST of one Warp function.

An assignment counts when it binds a local: ``Assign``/``AnnAssign``/``AugAssign`` to a plain
name (a tuple target counts once), a component write ``v.x = ...`` / ``v[1] = ...`` to a
local (not to an array in memory: that is a store, an effect), and an in-place builtin
(``wp.transform_set_rotation(t, q)``, ``wp.randf(state)`` alone) on a local. It is dead
when none of its targets can be read afterwards, on any path.

Liveness is *strong* (faint code is dead too): a dead assignment's right-hand side makes
nothing live, so ``a = x; b = a`` with ``b`` never read leaves both dead. The one exception is
a right-hand side with an effect (an atomic, a print, a helper that takes an array): its
operands stay live because the effect happens, yet the assignment is still dead when its
result is never read (the issue's "a returned old value is not used").

Control flow is followed structurally: both arms of an ``if``; loops iterate to a fixpoint,
so a value read only by a later iteration is live; ``break`` sees what is live after the
loop, ``continue`` what is live at its head; ``return`` ends every path (locals die).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from synth.quality.modinfo import (EFFECT_BUILTINS, MUTATORS, PYTHON_BUILTINS, Locals, Module, component_uses,
                           local_types, memory_write, names_in, target_names, target_root, wp_call)


@dataclass(frozen=True, slots=True)
class Assignment:
    function: str
    line: int
    targets: tuple[str, ...]
    dead: bool


class _Liveness:
    def __init__(self, mod: Module, fn: ast.FunctionDef) -> None:
        self.mod, self.fn = mod, fn
        self.local: Locals = local_types(mod, fn)
        self.live_ever: dict[ast.stmt, bool] = {}
        self.targets: dict[ast.stmt, tuple[str, ...]] = {}
        self.loops: list[tuple[set[str], set[str]]] = []  # (live after the loop, live at its head)

    def run(self) -> list[Assignment]:
        self.block(self.fn.body, set())
        return [Assignment(self.fn.name, node.lineno, self.targets[node], not live)
                for node, live in sorted(self.live_ever.items(), key=lambda kv: (kv[0].lineno, kv[0].col_offset))]

    def record(self, node: ast.stmt, names: tuple[str, ...], live: bool) -> None:
        # Loops revisit statements with growing live sets: once live, always live.
        self.live_ever[node] = self.live_ever.get(node, False) or live
        self.targets[node] = names

    def impure(self, expr: ast.expr | None) -> bool:
        for node in ast.walk(expr) if expr is not None else ():
            if not isinstance(node, ast.Call):
                continue
            name = wp_call(node)
            if name is not None:
                if EFFECT_BUILTINS.match(name):
                    return True
            elif isinstance(node.func, ast.Name) and node.func.id in self.mod.funcs:
                if self.mod.takes_array(node.func.id):
                    return True
            elif not (isinstance(node.func, ast.Name) and (node.func.id in self.mod.structs
                                                            or node.func.id in PYTHON_BUILTINS)):
                return True  # something we cannot see into: assume it has an effect
        return False

    def block(self, stmts: list[ast.stmt], live: set[str]) -> set[str]:
        for stmt in reversed(stmts):
            live = self.stmt(stmt, live)
        return live

    def stmt(self, s: ast.stmt, live: set[str]) -> set[str]:
        if isinstance(s, ast.Assign):
            return self.assign(s, s.targets, s.value, live)
        if isinstance(s, ast.AnnAssign):
            return live if s.value is None else self.assign(s, [s.target], s.value, live)
        if isinstance(s, ast.AugAssign):
            return self.augassign(s, live)
        if isinstance(s, ast.Expr):
            return self.expr(s, live)
        if isinstance(s, ast.If):
            return names_in(s.test) | self.block(s.body, live) | self.block(s.orelse, live)
        if isinstance(s, (ast.For, ast.While)):
            return self.loop(s, live)
        if isinstance(s, ast.Return):
            return names_in(s.value)
        if isinstance(s, ast.Break):
            return set(self.loops[-1][0]) if self.loops else live
        if isinstance(s, ast.Continue):
            return set(self.loops[-1][1]) if self.loops else live
        if isinstance(s, ast.With):
            return self.block(s.body, live) | set().union(*(names_in(i.context_expr) for i in s.items))
        return live | names_in(s)  # anything else: conservatively, it reads what it mentions

    def assign(self, node: ast.stmt, targets: list[ast.expr], value: ast.expr, live: set[str]) -> set[str]:
        kills: set[str] = set()
        partial: set[str] = set()
        uses: set[str] = set()  # read by the targets themselves (indices, stores' operands)
        effect = False
        flat: list[ast.expr] = []
        for t in targets:
            flat.extend(t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])
        for t in flat:
            if isinstance(t, (ast.Name, ast.Starred, ast.Tuple, ast.List)):
                kills.update(target_names(t))
            elif memory_write(self.mod, self.local, t):
                effect = True
                uses |= names_in(t)
            elif isinstance(root := target_root(t), ast.Name):
                partial.add(root.id)  # v.x = ...: v keeps its other components, so it is not killed
                uses |= component_uses(t)
        local = kills | partial
        is_live = effect or bool(local & live)
        if local:
            self.record(node, tuple(sorted(local)), is_live)
        out = live - kills
        if is_live:
            return out | uses | names_in(value)
        return out | names_in(value) if self.impure(value) else out

    def augassign(self, s: ast.AugAssign, live: set[str]) -> set[str]:
        t = s.target
        if isinstance(t, ast.Name):
            name, uses = t.id, {t.id}
        elif memory_write(self.mod, self.local, t):
            return live | names_in(t) | names_in(s.value)
        elif isinstance(root := target_root(t), ast.Name):
            name, uses = root.id, {root.id} | component_uses(t)
        else:
            return live | names_in(t) | names_in(s.value)
        is_live = name in live
        self.record(s, (name,), is_live)
        if is_live:
            return live | uses | names_in(s.value)
        return live | names_in(s.value) if self.impure(s.value) else live

    def expr(self, s: ast.Expr, live: set[str]) -> set[str]:
        call = s.value
        name = wp_call(call)
        if (isinstance(call, ast.Call) and name and MUTATORS.match(name) and call.args
                and isinstance(call.args[0], ast.Name) and call.args[0].id not in self.local.arrays):
            target = call.args[0].id
            self.record(s, (target,), target in live)
            if target in live or self.impure(call):
                return live | names_in(call)
            return live
        return live | names_in(call)

    def loop(self, s: ast.For | ast.While, live: set[str]) -> set[str]:
        exit_live = self.block(s.orelse, live)
        head = exit_live | (names_in(s.test) if isinstance(s, ast.While) else set())
        bound = set(target_names(s.target)) if isinstance(s, ast.For) else set()
        while True:
            self.loops.append((live, head))
            body_in = self.block(s.body, set(head))
            self.loops.pop()
            new = head | (body_in - bound)
            if new == head:
                break
            head = new
        return head | (names_in(s.iter) if isinstance(s, ast.For) else set())


def assignments(mod: Module, fn: ast.FunctionDef) -> list[Assignment]:
    """Every counted local assignment of ``fn`` with whether it is dead, in source order."""
    return _Liveness(mod, fn).run()


def dead_statements(mod: Module, fn: ast.FunctionDef) -> set[ast.stmt]:
    """The dead assignment statements of ``fn`` themselves (the race checker asks whether an
    atomic's result lands in one)."""
    analysis = _Liveness(mod, fn)
    analysis.run()
    return {node for node, live in analysis.live_ever.items() if not live}
