"""Guarded arguments: how the generator keeps every builtin call safe to run and
well-posed (``signatures.GUARDS`` names the guard of each parameter). A mixin of
``synth.gen.expressions.ExprBuilder``, whose ``expr``/``leaf``/``num``/``lit`` it uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synth.gen.signatures import TYPES

if TYPE_CHECKING:  # expressions imports this module
    from synth.gen.expressions import Scope


class GuardedArguments:
    expr: Any
    leaf: Any
    num: Any
    lit: Any
    chance: Any
    spell: Any
    rng: Any

    def guarded(self, guard: str, t: str, s: Scope, depth: int, euler: tuple[int, int, int]) -> str:
        e = lambda: self.expr(t, s, depth)  # noqa: E731
        info = TYPES[t]
        if guard.startswith("axis"):
            return str(euler[int(guard[-1])])
        if guard in ("shift", "count", "period"):
            return self.num(t, 1, 5) if info.kind != "vec" else self.lit(t)
        if guard in ("low", "high", "rate"):
            lo = {"low": -6, "high": 7, "rate": 1}[guard]
            return self.num(t, max(lo, 0) if info.kind == "uint" else lo, lo + 5)
        if guard in ("spd", "separated"):
            return self.wellposed(guard, t, s)
        if info.kind != "float":
            if guard == "divisor" and info.kind in ("int", "uint"):
                return self.num(t, 1, 5) if self.chance(0.8) else f"wp.max({e()}, {self.num(t, 1, 1)})"
            if guard == "divisor" and info.scalar not in ("float32", "float64", "float16"):
                return f"{self.spell(t)}({', '.join(str(self.rng.randint(1, 5)) for _ in range(info.shape[0]))})"
            return e()
        c = lambda v: v if t == "float32" else f"{info.spelling}({v})"  # noqa: E731
        if guard == "nonneg":
            return f"wp.abs({e()})"
        if guard == "positive":
            return f"(wp.abs({e()}) + {c('0.5')})" if self.chance(0.3) else f"wp.max({e()}, {c('0.01')})"
        if guard in ("unit", "unit_open", "two_open"):
            lo, hi = {"unit": ("-1.0", "1.0"), "unit_open": ("-0.99", "0.99"), "two_open": ("0.01", "1.99")}[guard]
            return f"wp.clamp({e()}, {c(lo)}, {c(hi)})"
        if guard == "bounded":
            return f"wp.clamp({e()}, {c('-8.0')}, {c('8.0')})" if self.chance(0.5) else f"wp.min({e()}, {c('8.0')})"
        if guard == "divisor":
            return self.num(t, 0.5, 4.0) if self.chance(0.75) else f"(wp.abs({e()}) + {c('1.0')})"
        return e()

    def wellposed(self, guard: str, t: str, s: Scope) -> str:
        """``m @ m^T + I`` (symmetric positive definite, eigenvalues >= 1) or a diagonal with
        eigenvalues 3 apart plus a symmetric part of norm <= 1 (Weyl: they stay apart)."""
        info, m = TYPES[t], self.leaf(t, s)
        n, dtype = info.shape[0], TYPES[info.scalar].spelling
        if guard == "spd":
            return f"({m} @ wp.transpose({m}) + wp.identity(n={n}, dtype={dtype}))"
        vec = f"wp.vec{n}{'d' if info.scalar == 'float64' else ''}"
        one = "1.0" if info.scalar == "float32" else f"{dtype}(1.0)"
        diag = ", ".join(("2.0", "5.0", "8.0")[:n])
        return f"(wp.diag({vec}({diag})) + ({m} + wp.transpose({m})) / (wp.ddot({m}, {m}) + {one}))"

