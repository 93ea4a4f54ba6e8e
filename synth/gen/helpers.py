"""``@wp.func`` helpers: value helpers (with overloads, default arguments and struct
results) and void helpers that store into the caller's own element of an owned output,
plus the statement that calls a void helper. A mixin of ``synth.gen.statements.StatementBuilder``."""

from __future__ import annotations

from typing import Any

from synth.gen.expressions import Arr, Scope, Var
from synth.gen.signatures import TYPES


class HelperBuilder:
    rng: Any
    cfg: Any
    chance: Any
    spell: Any
    expr: Any
    num: Any
    pick_type: Any
    block: Any
    define: Any
    add_struct_fields: Any
    st_assign: Any
    structs: Any
    helpers: Any
    void_helpers: Any
    called: Any
    unread: Any

    def st_helper(self, s: Scope, ind: int, depth: int) -> list[str]:
        order = self.rng.sample(self.void_helpers, len(self.void_helpers))
        order.sort(key=lambda h: h[0] in self.called)  # helpers nothing calls yet first
        for name, params, _ in order:
            arr_t = params[0][1]
            own = [a for a in s.arrays if a.role == "owned" and a.own is not None and arr_t == self.array_spelling(a)]
            if own:
                a = self.rng.choice(own)
                values = [self.expr(pt, s, 1) for _, pt, _ in params[1 + a.ndim:]]
                self.called.add(name)
                return [f"{'    ' * ind}{name}({', '.join([a.name, a.own, *values])})"]
        return self.st_assign(s, ind, depth)

    def array_spelling(self, a: Arr) -> str:
        return f"wp.array(dtype={self.spell(a.dtype)}, ndim={a.ndim})"

    def helper_source(self, index: int) -> list[str]:
        name = f"helper{index}"
        if self.chance(0.2):
            return self.array_helper(name)
        struct = next(iter(self.structs), None)
        returns = struct if struct and self.chance(0.15) else self.pick_type(0.3)
        params = [(f"a{k}", self.pick_type(0.3), None) for k in range(self.rng.randint(1, 3))]
        if struct and self.chance(0.3):
            params[-1] = (params[-1][0], struct, None)
        last = params[-1]
        if last[1] in TYPES and TYPES[last[1]].kind in ("float", "int", "uint", "vec") and self.chance(0.3):
            # Defaults are evaluated by Python at definition time: plain literals only.
            params[-1] = (last[0], last[1], self.num(last[1]) if not TYPES[last[1]].shape else
                          f"{self.spell(last[1])}({self.num(TYPES[last[1]].scalar)})")
        out = self.func_source(name, params, returns)
        if params[0][1] in TYPES and self.chance(0.3):  # an overload: same name, another first type
            other = self.pick_type()
            if other != params[0][1] and all(other != p[1] for p in params[1:]):
                out += self.func_source(name, [(params[0][0], other, None), *params[1:]], returns)
        return out

    def func_source(self, name: str, params: list[tuple[str, str, str | None]], returns: str) -> list[str]:
        scope = Scope(returns=returns)
        for p, t, _ in params:
            self.unread[p] = None  # a helper's result should depend on its arguments
            if t in self.structs:
                self.add_struct_fields(p, t, scope, mutable=False)
            else:
                scope.vars.append(Var(p, t, mutable=False))
        n = self.rng.randint(1, self.cfg.helper_statements)
        body = self.block(scope, 1, 1, n)
        if returns in self.structs:
            r, _ = self.define(scope, returns, "x", "r")
            body += [f"    {r} = {returns}()"]
            self.add_struct_fields(r, returns, scope, mutable=True)
            body += [f"    {v.name} = {self.expr(v.type, scope, 1, v.name)}" for v in scope.vars
                     if v.name.startswith(r + ".") and v.type in TYPES][:2]
            body.append(f"    return {r}")
        else:
            body.append(f"    return {self.expr(returns, scope, 0)}")
        sig = ", ".join(f"{p}: {self.spell(t)}" + (f" = {d}" if d else "") for p, t, d in params)
        self.helpers.append((name, params, returns))
        return ["@wp.func", f"def {name}({sig}) -> {self.spell(returns)}:", *body, "", ""]

    def array_helper(self, name: str) -> list[str]:
        """A void helper that writes one element (given by the caller's own index)."""
        dtype = self.rng.choice([t for t in ("float32", "vec3f", "int32", "float64") if t in self.types])
        ndim = self.rng.choice((1, 1, 2, 3)) if self.cfg.max_launch_dims > 1 else 1
        arr_t = f"wp.array(dtype={self.spell(dtype)}, ndim={ndim})"
        idx = [f"i{k}" for k in range(ndim)]
        params = [("arr", arr_t, None), *[(i, "int32", None) for i in idx], ("value", dtype, None)]
        scope = Scope(returns="None", vars=[Var("value", dtype, mutable=False)], ints=list(idx))
        scope.arrays.append(Arr("arr", dtype, ndim, "owned", ", ".join(idx)))
        body = self.block(scope, 1, 1, self.rng.randint(1, self.cfg.helper_statements))
        body.append(f"    arr[{', '.join(idx)}] = {self.expr(dtype, scope, 1)}")
        sig = ", ".join(f"{p}: {t if p == 'arr' else self.spell(t)}" for p, t, _ in params)
        self.void_helpers.append((name, params, "None"))
        return ["@wp.func", f"def {name}({sig}):", *body, "", ""]

