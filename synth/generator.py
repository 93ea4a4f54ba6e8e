"""Random, valid Warp kernel modules: a pure function of (seed, GeneratorConfig).

Expressions are built type-first: to fill a slot of type T the generator picks one of
the productions that yield T (a builtin whose signature returns T, an operator, a
variable, an array load ...) and recursively fills its argument slots. Kernels are
safe to run: every array index is ``tid`` or wrapped modulo the array's length, loop
trip counts are small literals, and math that could trap or overflow is guarded
(``sqrt(abs(x))``, ``x / (abs(y) + 1)``, ``exp(min(x, 4))``).

Only ``random.Random(seed)`` drives choices and nothing iterates a set or depends on
hashing, so the text is byte-identical across processes and PYTHONHASHSEED values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from synth.config import GeneratorConfig

FLOAT, INT, BOOL = "float", "int", "bool"
VEC = {2: "wp.vec2", 3: "wp.vec3", 4: "wp.vec4"}
MAT33, QUAT = "wp.mat33", "wp.quat"
VALUE_TYPES = (FLOAT, VEC[2], VEC[3], VEC[4], MAT33, QUAT)
ARRAY_DTYPES = (FLOAT, FLOAT, VEC[3], VEC[2], VEC[4], INT)


@dataclass(frozen=True, slots=True)
class GeneratedKernel:
    seed: int
    kernel_name: str
    source: str
    helper_names: tuple[str, ...]
    struct_names: tuple[str, ...]


@dataclass(slots=True)
class _Helper:
    name: str
    params: list[tuple[str, str]]
    returns: str


@dataclass(slots=True)
class _Scope:
    vars: list[tuple[str, str]] = field(default_factory=list)  # (name, type), mutable ones
    ints: list[str] = field(default_factory=list)  # read-only int names (tid, loop vars)
    in_arrays: list[tuple[str, str]] = field(default_factory=list)
    out_arrays: list[tuple[str, str]] = field(default_factory=list)
    struct_fields: list[tuple[str, str]] = field(default_factory=list)  # (expr, type)

    def child(self) -> _Scope:
        return _Scope(list(self.vars), list(self.ints), self.in_arrays, self.out_arrays, self.struct_fields)


class _Builder:
    def __init__(self, seed: int, cfg: GeneratorConfig) -> None:
        self.rng = random.Random(seed)
        self.cfg = cfg
        self.counter = 0
        self.helpers: list[_Helper] = []

    # -- small utilities -------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def lit(self, lo: float = -4.0, hi: float = 4.0) -> str:
        return f"{self.rng.uniform(lo, hi):.3f}"

    def pick_type(self) -> str:
        choices = [FLOAT, FLOAT, FLOAT, VEC[3], VEC[3], VEC[2], VEC[4]]
        if self.cfg.use_matrices:
            choices.append(MAT33)
        if self.cfg.use_quaternions:
            choices.append(QUAT)
        return self.rng.choice(choices)

    # -- expressions -------------------------------------------------------------
    def expr(self, t: str, scope: _Scope, depth: int) -> str:
        leaf = depth >= self.cfg.max_depth or self.rng.random() < 0.35
        if leaf:
            return self.leaf(t, scope)
        return getattr(self, "expr_" + t.replace("wp.", "").replace("float", "float_"))(scope, depth + 1)

    def leaf(self, t: str, scope: _Scope) -> str:
        options = [n for n, vt in scope.vars if vt == t]
        options += [f"{a}[{self.index(a, scope)}]" for a, dt in scope.in_arrays if dt == t]
        options += [e for e, ft in scope.struct_fields if ft == t]
        if options and self.rng.random() < 0.8:
            return self.rng.choice(options)
        return self.const(t)

    def const(self, t: str) -> str:
        if t == FLOAT:
            return self.lit()
        if t == INT:
            return str(self.rng.randint(0, 7))
        if t in VEC.values():
            n = int(t[-1])
            if self.rng.random() < 0.3:
                return f"{t}({self.lit()})"
            return f"{t}({', '.join(self.lit() for _ in range(n))})"
        if t == MAT33:
            return "wp.identity(n=3, dtype=float)"
        if t == QUAT:
            return "wp.quat_identity()"
        raise ValueError(t)

    def index(self, array: str, scope: _Scope) -> str:
        # tid is always within the launch bounds (every array has launch length);
        # any other index wraps modulo the array's length.
        if self.rng.random() < 0.7 or not scope.ints:
            return "tid"
        other = self.rng.choice(scope.ints)
        return f"({other} + {self.rng.randint(1, 5)}) % {array}.shape[0]"

    def helper_call(self, t: str, scope: _Scope, depth: int) -> str | None:
        fitting = [h for h in self.helpers if h.returns == t]
        if not fitting:
            return None
        h = self.rng.choice(fitting)
        return f"{h.name}({', '.join(self.expr(pt, scope, depth) for _, pt in h.params)})"

    def expr_float_(self, s: _Scope, d: int) -> str:
        r = self.rng.randrange(16)
        e = lambda t=FLOAT: self.expr(t, s, d)  # noqa: E731
        vt = VEC[self.rng.choice((2, 3, 4))]
        if r == 0:
            return f"({e()} {self.rng.choice('+-*')} {e()})"
        if r == 1:
            return f"({e()} / (wp.abs({e()}) + 1.0))"
        if r == 2:
            return f"wp.{self.rng.choice(('sin', 'cos', 'tanh', 'abs', 'floor', 'ceil', 'round'))}({e()})"
        if r == 3:
            return self.rng.choice((f"wp.sqrt(wp.abs({e()}))", f"wp.log(wp.abs({e()}) + 1.0)",
                                    f"wp.exp(wp.min({e()}, 4.0))", f"wp.atan2({e()}, {e()})"))
        if r == 4:
            return f"wp.{self.rng.choice(('min', 'max'))}({e()}, {e()})"
        if r == 5:
            lo = self.rng.uniform(-3, 0)
            return f"wp.clamp({e()}, {lo:.3f}, {lo + self.rng.uniform(0.5, 3):.3f})"
        if r == 6:
            return f"wp.{self.rng.choice(('length', 'length_sq'))}({e(vt)})"
        if r == 7:
            return f"wp.dot({e(vt)}, {e(vt)})"
        if r == 8:
            return f"({e(vt)})[{self.rng.randrange(int(vt[-1]))}]"
        if r == 9:
            return f"wp.where({self.cond(s, d)}, {e()}, {e()})"
        if r == 10 and s.ints:
            return f"float({self.rng.choice(s.ints)})"
        if r == 11:
            call = self.helper_call(FLOAT, s, d)
            if call:
                return call
        if r == 12 and self.cfg.use_matrices:
            return f"wp.{self.rng.choice(('determinant', 'trace'))}({e(MAT33)})"
        if r == 13:
            return f"wp.lerp({e()}, {e()}, {self.rng.uniform(0, 1):.3f})"
        if r == 14:
            return f"(-{e()})"
        return f"({e()} {self.rng.choice('+-*')} {self.lit()})"

    def expr_vec(self, n: int, s: _Scope, d: int) -> str:
        t = VEC[n]
        e = lambda tt=t: self.expr(tt, s, d)  # noqa: E731
        r = self.rng.randrange(11)
        if r == 0:
            return f"{t}({', '.join(self.expr(FLOAT, s, d) for _ in range(n))})"
        if r == 1:
            return f"({e()} {self.rng.choice('+-')} {e()})"
        if r == 2:
            return f"({e()} * {self.expr(FLOAT, s, d)})"
        if r == 3:
            return f"wp.normalize({e()})"
        if r == 4:
            return f"wp.{self.rng.choice(('cw_mul', 'min', 'max'))}({e()}, {e()})"
        if r == 5 and n == 3:
            return f"wp.cross({e()}, {e()})"
        if r == 6 and n == 3 and self.cfg.use_matrices:
            return f"({self.expr(MAT33, s, d)} @ {e()})"
        if r == 7 and n == 3 and self.cfg.use_quaternions:
            return f"wp.{self.rng.choice(('quat_rotate', 'quat_rotate_inv'))}({self.expr(QUAT, s, d)}, {e()})"
        if r == 8:
            call = self.helper_call(t, s, d)
            if call:
                return call
        if r == 9:
            return f"wp.where({self.cond(s, d)}, {e()}, {e()})"
        return f"({self.expr(FLOAT, s, d)} * {e()})"

    def expr_vec2(self, s: _Scope, d: int) -> str:
        return self.expr_vec(2, s, d)

    def expr_vec3(self, s: _Scope, d: int) -> str:
        return self.expr_vec(3, s, d)

    def expr_vec4(self, s: _Scope, d: int) -> str:
        return self.expr_vec(4, s, d)

    def expr_mat33(self, s: _Scope, d: int) -> str:
        e = lambda t=MAT33: self.expr(t, s, d)  # noqa: E731
        r = self.rng.randrange(6)
        if r == 0:
            return f"wp.outer({e(VEC[3])}, {e(VEC[3])})"
        if r == 1:
            return f"({e()} + {e()})"
        if r == 2:
            return f"({e()} * {e(FLOAT)})"
        if r == 3:
            return f"wp.transpose({e()})"
        if r == 4 and self.cfg.use_quaternions:
            return f"wp.quat_to_matrix({e(QUAT)})"
        return f"({e()} @ {e()})"

    def expr_quat(self, s: _Scope, d: int) -> str:
        e = lambda t=QUAT: self.expr(t, s, d)  # noqa: E731
        r = self.rng.randrange(4)
        if r == 0:
            axis = f"wp.normalize({self.expr(VEC[3], s, d)} + wp.vec3(1.0, 0.0, 0.0))"
            return f"wp.quat_from_axis_angle({axis}, {self.expr(FLOAT, s, d)})"
        if r == 1:
            return f"({e()} * {e()})"
        if r == 2:
            return f"wp.normalize({e()})"
        return f"wp.quat_inverse({e()})"

    def expr_int(self, s: _Scope, d: int) -> str:
        if s.ints and self.rng.random() < 0.6:
            return f"({self.rng.choice(s.ints)} {self.rng.choice('+*')} {self.rng.randint(1, 5)})"
        return str(self.rng.randint(0, 9))

    def cond(self, s: _Scope, d: int) -> str:
        r = self.rng.randrange(5)
        if r == 0 and s.ints:
            return f"{self.rng.choice(s.ints)} % {self.rng.randint(2, 4)} == 0"
        c = f"{self.expr(FLOAT, s, d + 1)} {self.rng.choice(('<', '>', '<=', '>='))} {self.expr(FLOAT, s, d + 1)}"
        if r == 1 and d < self.cfg.max_depth:
            return f"{c} {self.rng.choice(('and', 'or'))} {self.cond(s, d + 1)}"
        return c

    # -- statements ----------------------------------------------------------------
    def block(self, s: _Scope, indent: int, depth: int, n: int, loop: bool = False) -> list[str]:
        lines: list[str] = []
        kinds = list(self.cfg.statement_weights)
        weights = [self.cfg.statement_weights[k] for k in kinds]
        for _ in range(n):
            kind = self.rng.choices(kinds, weights)[0]
            if kind in ("for", "while", "if") and depth >= self.cfg.max_block_depth:
                kind = "assign"
            lines += getattr(self, "stmt_" + kind)(s, indent, depth)
        if loop and self.rng.random() < 0.2:
            lines += [f"{'    ' * indent}if {self.cond(s, 1)}:", f"{'    ' * (indent + 1)}{self.rng.choice(('break', 'continue'))}"]
        return lines or [f"{'    ' * indent}pass"]

    def stmt_assign(self, s: _Scope, ind: int, depth: int) -> list[str]:
        t = self.pick_type()
        name = self.fresh("v")
        value = self.expr(t, s, 0)
        if t == FLOAT and value[0] in "-0123456789":
            value = f"float({value})"  # a dynamic variable, so loops may mutate it
        s.vars.append((name, t))
        return [f"{'    ' * ind}{name} = {value}"]

    def stmt_augassign(self, s: _Scope, ind: int, depth: int) -> list[str]:
        mutable = [(n, t) for n, t in s.vars if t in (FLOAT, *VEC.values())]
        if not mutable:
            return self.stmt_assign(s, ind, depth)
        name, t = self.rng.choice(mutable)
        return [f"{'    ' * ind}{name} {self.rng.choice(('+=', '-=', '*=' if t == FLOAT else '+='))} {self.expr(t, s, 1)}"]

    def stmt_store(self, s: _Scope, ind: int, depth: int) -> list[str]:
        if not s.out_arrays:
            return self.stmt_assign(s, ind, depth)
        a, t = self.rng.choice(s.out_arrays)
        value = self.expr(t, s, 0) if t != INT else self.expr_int(s, 1)
        return [f"{'    ' * ind}{a}[tid] = {value}"]

    def stmt_atomic(self, s: _Scope, ind: int, depth: int) -> list[str]:
        targets = [(a, t) for a, t in s.out_arrays if t in (FLOAT, INT, VEC[3])]
        if not targets:
            return self.stmt_store(s, ind, depth)
        a, t = self.rng.choice(targets)
        op = "atomic_add" if t == VEC[3] else self.rng.choice(("atomic_add", "atomic_sub", "atomic_min", "atomic_max"))
        idx = "tid" if self.rng.random() < 0.5 else "0"
        value = self.expr(t, s, 1) if t != INT else self.expr_int(s, 1)
        return [f"{'    ' * ind}wp.{op}({a}, {idx}, {value})"]

    def stmt_for(self, s: _Scope, ind: int, depth: int) -> list[str]:
        var = self.fresh("i")
        trip = self.rng.randint(1, self.cfg.max_loop_trip)
        r = self.rng.random()
        # Literal bounds are unrolled by Warp; a tid-derived bound stays a dynamic loop.
        if r < 0.4:
            rng = f"range({trip})"
        elif r < 0.6:
            rng = f"range({self.rng.randint(0, 2)}, {trip + 2}, {self.rng.randint(1, 3)})"
        else:
            rng = f"range(tid % {self.rng.randint(2, 6)} + {self.rng.randint(0, 2)})"
        inner = s.child()
        inner.ints.append(var)
        body = self.block(inner, ind + 1, depth + 1, self.rng.randint(1, 3), loop=True)
        return [f"{'    ' * ind}for {var} in {rng}:", *body]

    def stmt_while(self, s: _Scope, ind: int, depth: int) -> list[str]:
        var = self.fresh("w")
        inner = s.child()
        inner.ints.append(var)
        body = self.block(inner, ind + 1, depth + 1, self.rng.randint(1, 3))
        pad = "    " * ind
        return [f"{pad}{var} = int(0)", f"{pad}while {var} < {self.rng.randint(1, self.cfg.max_loop_trip)}:",
                *body, f"{pad}    {var} += 1"]

    def stmt_if(self, s: _Scope, ind: int, depth: int) -> list[str]:
        pad = "    " * ind
        lines = [f"{pad}if {self.cond(s, 1)}:", *self.block(s.child(), ind + 1, depth + 1, self.rng.randint(1, 3))]
        if self.rng.random() < 0.3:
            lines += [f"{pad}elif {self.cond(s, 1)}:", *self.block(s.child(), ind + 1, depth + 1, self.rng.randint(1, 2))]
        if self.rng.random() < 0.6:
            lines += [f"{pad}else:", *self.block(s.child(), ind + 1, depth + 1, self.rng.randint(1, 2))]
        return lines

    # -- module --------------------------------------------------------------------------
    def helper(self, index: int) -> list[str]:
        name = f"helper{index}"
        params = [(f"a{k}", self.pick_type()) for k in range(self.rng.randint(1, 3))]
        returns = self.rng.choice([FLOAT, FLOAT, VEC[3], VEC[2], VEC[4]])
        scope = _Scope(vars=[])
        # Parameters are read-only inside the helper; only new locals are assigned.
        body_scope = scope.child()
        body_scope.vars = []
        lines = []
        for _ in range(self.rng.randint(0, 2)):
            t = self.pick_type()
            local = self.fresh("h")
            reads = _Scope(vars=params + body_scope.vars)
            lines.append(f"    {local} = {self.expr(t, reads, 1)}")
            body_scope.vars.append((local, t))
        reads = _Scope(vars=params + body_scope.vars)
        lines.append(f"    return {self.expr(returns, reads, 1)}")
        signature = ", ".join(f"{p}: {t}" for p, t in params)
        self.helpers.append(_Helper(name, params, returns))
        return ["@wp.func", f"def {name}({signature}) -> {returns}:", *lines, "", ""]

    def module(self, seed: int) -> GeneratedKernel:
        cfg = self.cfg
        out: list[str] = ["import warp as wp", "", ""]
        struct_names: list[str] = []
        scope = _Scope(ints=["tid"])
        params: list[str] = []
        if cfg.use_structs and self.rng.random() < 0.3:
            sname = "Params"
            fields = [("scale", FLOAT), ("offset", VEC[3]), ("count", INT)][: self.rng.randint(1, 3)]
            out += ["@wp.struct", f"class {sname}:", *[f"    {f}: {t}" for f, t in fields], "", ""]
            struct_names.append(sname)
            params.append(f"params: {sname}")
            scope.struct_fields = [(f"params.{f}", t) for f, t in fields if t != INT]
        for k in range(self.rng.randint(0, cfg.max_helpers)):
            out += self.helper(k)
        n_arrays = self.rng.randint(cfg.min_arrays, cfg.max_arrays)
        for k in range(n_arrays):
            dtype = self.rng.choice(ARRAY_DTYPES)
            is_out = k == n_arrays - 1 or self.rng.random() < 0.3
            name = f"out{k}" if is_out else f"x{k}"
            (scope.out_arrays if is_out else scope.in_arrays).append((name, dtype))
            params.append(f"{name}: wp.array(dtype={dtype})")
        if self.rng.random() < 0.3:
            scope.struct_fields = [*scope.struct_fields, ("alpha", FLOAT)]
            params.append("alpha: float")
        kernel_name = f"kernel_{seed}"
        body = self.block(scope, 1, 0, self.rng.randint(cfg.min_statements, cfg.max_statements))
        a, t = scope.out_arrays[-1]
        final = self.expr(t, scope, 0) if t != INT else self.expr_int(scope, 1)
        out += ["@wp.kernel", f"def {kernel_name}({', '.join(params)}):", "    tid = wp.tid()", *body,
                f"    {a}[tid] = {final}", ""]
        return GeneratedKernel(seed, kernel_name, "\n".join(out),
                               tuple(h.name for h in self.helpers), tuple(struct_names))


def generate(seed: int, cfg: GeneratorConfig | None = None) -> GeneratedKernel:
    """The kernel module for ``seed``; the same (seed, cfg) always gives the same text."""
    return _Builder(seed, cfg or GeneratorConfig()).module(seed)
