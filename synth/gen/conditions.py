"""Conditions and comparison operands for ``if``/``while``/``wp.where``/ternaries. A
condition always reads data: one the generator could evaluate itself (only literals)
would be a constant branch, dead code in disguise. A mixin of
``synth.gen.expressions.ExprBuilder``, whose expression productions it uses."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from synth.gen.signatures import TYPES

if TYPE_CHECKING:  # expressions imports this module
    from synth.gen.expressions import Scope

# Names in generated code that are not data: the module, Python builtins Warp maps.
_NOT_DATA = frozenset({"wp", "float", "int", "bool", "len", "abs", "min", "max", "range", "reversed", "round"})


class Conditions:
    expr: Any
    builtin: Any
    consume: Any
    readable_arrays: Any
    index: Any
    num: Any
    chance: Any
    rng: Any
    cfg: Any
    types: Any
    structs: Any
    helpers: Any

    def operand(self, t: str, s: Scope, depth: int) -> str:
        """The left side of a comparison: data when there is any, so tests are not
        between two literals."""
        data = [v.name for v in s.of_type(t)] + [f"{a.name}[{self.index(a, s)}]" for a in self.readable_arrays(t, s)]
        if data and self.chance(0.8):
            return self.consume(data)
        return self.expr(t, s, depth)

    # -- expressions -------------------------------------------------------------------------

    def cond(self, s: Scope, depth: int = 1) -> str:
        """A condition that reads data: one the generator could evaluate itself (only
        literals) would be a constant branch, dead code in disguise."""
        for _ in range(4):
            text = self._cond(s, depth)
            if self.reads_data(text):
                return text
        numeric = [v for v in s.vars if v.type in ("float32", "int32")]
        if numeric:
            v = self.rng.choice(numeric)
            return f"{v.name} {self.rng.choice(('<', '>', '<=', '>='))} {self.num(v.type)}"
        if s.ints:
            return f"{self.rng.choice(s.ints)} % {self.rng.randint(2, 5)} == {self.rng.randint(0, 1)}"
        return text

    def reads_data(self, text: str) -> bool:
        names = {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}
        return bool(names - _NOT_DATA - set(self.structs) - {h[0] for h in self.helpers})

    def _cond(self, s: Scope, depth: int) -> str:
        r = self.rng.random()
        if r < 0.05 and s.ints:
            return f"{self.rng.choice(s.ints)} % {self.rng.randint(2, 5)} == {self.rng.randint(0, 1)}"
        if r < 0.13 and depth < self.cfg.max_depth:
            joiner = self.rng.choice((" and ", " or "))
            return f"({self.cond(s, depth + 1)}{joiner}{self.cond(s, depth + 1)})"
        if r < 0.15 and depth < self.cfg.max_depth:
            return f"not ({self.cond(s, depth + 1)})"
        if r < 0.22:
            b = s.of_type("bool")
            if b:
                return self.rng.choice(b).name
            return self.builtin("bool", s, depth) or "True"
        numeric = [x for x in self.types if TYPES[x].kind in ("float", "int")]
        t = "float32" if self.chance(0.7) else self.rng.choice(numeric)
        if self.chance(0.05):  # a range test: lo < x < hi
            return f"{self.num(t, -3, 0)} < {self.operand(t, s, depth)} < {self.num(t, 0.5, 3)}"
        op = self.rng.choice(("<", ">", "<=", ">=", "==", "!="))
        if TYPES[t].kind == "float" and op in ("==", "!="):
            op = "<"
        left = self.operand(t, s, depth)
        return f"{left} {op} {self.expr(t, s, depth, left)}"
