"""Statements and ``@wp.func`` helpers for the kernel generator.

Every statement keeps the invariants the execution tier relies on (see
``synth.gen.generator``): stores go to the thread's own element, other writes are atomics
at wrapped indices, loops are bounded, and names defined inside a block stay inside it
(Warp needs one type per name, and a value defined in one branch is not defined after).
"""

from __future__ import annotations

import re

from synth.gen.config import GeneratorConfig
from synth.gen.expressions import Arr, ExprBuilder, Scope, Var
from synth.gen.helpers import HelperBuilder
from synth.gen.signatures import TYPES, Signature

_AUG = {"add": "+=", "sub": "-=", "mul": "*=", "div": "/=", "mod": "%=", "floordiv": "//=", "bit_and": "&=",
        "bit_or": "|=", "bit_xor": "^=", "lshift": "<<=", "rshift": ">>="}
# Atomics and the element types CUDA implements them for (NVRTC rejects the rest although
# Warp's codegen accepts them; tests/synth/gen/test_signatures.py compiles every pair with NVRTC).
_ADD_SUB = ("atomic_add", "atomic_sub")
_BIT_ATOMICS = ("atomic_and", "atomic_or", "atomic_xor")
_EXCHANGE = ("atomic_cas", "atomic_exch")
_EXCHANGE_TYPES = ("float32", "float64", "int32", "uint32", "int64")


def atomic_ops(dtype: str) -> tuple[str, ...]:
    """Every atomic Warp's CPU and CUDA backends both compile on arrays of ``dtype``."""
    info = TYPES[dtype]
    if dtype == "float16":
        return _ADD_SUB
    ops = _ADD_SUB if info.kind in ("quat", "transform") else (*_ADD_SUB, "atomic_min", "atomic_max")
    if TYPES[info.scalar].kind in ("int", "uint") and not info.shape:
        ops += _BIT_ATOMICS
    return ops + _EXCHANGE if dtype in _EXCHANGE_TYPES else ops


def accumulator_classes(dtype: str) -> list[tuple[str, ...]]:
    """The atomic classes whose updates commute with each other: an accumulator uses one,
    so its final value does not depend on the order threads run in."""
    ops = atomic_ops(dtype)
    return [_ADD_SUB, *[(op,) for op in ("atomic_min", "atomic_max", *_BIT_ATOMICS) if op in ops]]


# A value that computes nothing: a name, a field, an element, a literal.
_BARE = re.compile(r"^-?[\w.]+(\[[\w ,]+\])?$")


def _is_constant(value: str) -> bool:
    """True for literal-only expressions (no name, call or attribute), which Warp treats
    as compile-time constants and then refuses to let a dynamic loop mutate."""
    return re.search(r"[A-Za-z_]", value.replace("True", "").replace("False", "")) is None


# Multi-value builtins Warp's registry cannot type (no value_func): written by hand.
_EXTRA_MULTI = (Signature("transform_decompose", "transformation", (("m", "mat44f"),), "tuple[vec3f,quatf,vec3f]"),)


class StatementBuilder(HelperBuilder, ExprBuilder):
    def __init__(self, seed: int, cfg: GeneratorConfig) -> None:
        super().__init__(seed, cfg)
        self.stored: set[str] = set()  # owned outputs stored so far (kernel scope)
        self.void_helpers: list[tuple[str, list[tuple[str, str, str | None]], str]] = []

    def block(self, s: Scope, ind: int, depth: int, n: int, top: bool = False) -> list[str]:
        cfg = self.cfg
        kinds = list(cfg.statement_weights)
        weights = [cfg.statement_weights[k] for k in kinds]
        lines: list[str] = []
        for _ in range(n):
            kind = self.rng.choices(kinds, weights)[0]
            if kind in ("for", "while", "if") and depth >= cfg.max_block_depth:
                kind = "assign"
            if kind == "return" and not (top or s.returns is not None):
                kind = "assign"
            lines += getattr(self, "st_" + kind)(s, ind, depth)
        if s.loop and self.chance(0.25):
            jump = "break" if s.loop == "while" or self.chance(0.5) else "continue"
            lines += [f"{'    ' * ind}if {self.cond(s)}:", f"{'    ' * (ind + 1)}{jump}"]
        return lines or [f"{'    ' * ind}pass"]

    def define(self, s: Scope, t: str, value: str, prefix: str = "v") -> tuple[str, str]:
        name = self.fresh(prefix)
        s.vars.append(Var(name, t))
        self.unread[name] = None
        return name, self.dynamic(t, value)

    def dynamic(self, t: str, value: str) -> str:
        """Binding a name to a literal makes it a Warp constant, which a dynamic loop may
        not mutate afterwards: wrap it in its type (``float(0.5)``) as Warp asks. The
        length of a vector (``len(v)``) is a compile-time constant too."""
        if t in TYPES and not TYPES[t].shape and (_is_constant(value) or value.startswith("len(")):
            return f"{self.spell(t)}({value})"
        return value

    # -- assignments ---------------------------------------------------------------------
    def st_assign(self, s: Scope, ind: int, depth: int) -> list[str]:
        pad = "    " * ind
        if self.chance(0.55):  # builtin first: spreads coverage over every group evenly
            sig = self.pick_signature(s)
            if sig is not None and sig.returns.startswith("tuple["):
                return self.multi(sig, s, ind)
            if sig is not None and sig.returns == "None":
                return self.inplace(sig, s, ind)
            if sig is not None:
                name, value = self.define(s, sig.returns, self.call(sig, s, 1))
                return [f"{pad}{name} = {value}"]
        t = self.pick_type()
        name, value = self.define(s, t, self.expr(t, s, 0))
        return [f"{pad}{name} = {value}"]

    def pick_signature(self, s: Scope) -> Signature | None:
        by_name = self.prep.all_names
        if not by_name:
            return None
        for _ in range(3):  # a name whose instances all need what this scope lacks: try another
            sigs = [g for g in by_name[self.pick_name(self.prep.all_names_order)] if self.fits(g, s)]
            if sigs:
                return self.rng.choices(sigs, [self.sig_weight(g, s) for g in sigs])[0]
        return None

    def st_multi(self, s: Scope, ind: int, depth: int) -> list[str]:
        sigs = [g for g in (*self.table.multi, *_EXTRA_MULTI)
                if self.fits(g, s) and all(t in self.types for t in g.tuple_types)]
        if not sigs:
            return self.st_assign(s, ind, depth)
        return self.multi(self.rng.choice(sigs), s, ind)

    def multi(self, sig: Signature, s: Scope, ind: int) -> list[str]:
        value = self.call(sig, s, 1)
        names = []
        for t in sig.tuple_types:
            names.append(self.fresh("u"))
            s.vars.append(Var(names[-1], t))
            self.unread[names[-1]] = None
        return [f"{'    ' * ind}{', '.join(names)} = {value}"]

    def st_inplace(self, s: Scope, ind: int, depth: int) -> list[str]:
        sigs = [g for g in self.table.void if self.fits(g, s)]
        return self.inplace(self.rng.choice(sigs), s, ind) if sigs else self.st_assign(s, ind, depth)

    def inplace(self, sig: Signature, s: Scope, ind: int) -> list[str]:
        pad, target_t = "    " * ind, sig.arg_types[0]
        lines = []
        targets = [v for v in s.of_type(target_t) if v.mutable]
        if targets:
            target = self.rng.choice(targets).name
        else:
            target, value = self.define(s, target_t, self.expr(target_t, s, 1), "t")
            lines.append(f"{pad}{target} = {value}")
        args = [target] + [self.expr(t, s, 1) for t in sig.arg_types[1:]]
        return lines + [f"{pad}wp.{sig.name}({', '.join(args)})"]

    def st_reassign(self, s: Scope, ind: int, depth: int) -> list[str]:
        targets = [v for v in s.vars if v.mutable and v.type in TYPES]
        if not targets:
            return self.st_assign(s, ind, depth)
        v = self.rng.choice(targets)
        return [f"{'    ' * ind}{v.name} = {self.dynamic(v.type, self.expr(v.type, s, 0, v.name))}"]

    def st_augassign(self, s: Scope, ind: int, depth: int) -> list[str]:
        targets = [v for v in s.vars if v.mutable and v.type in TYPES and v.type != "bool"]
        if not targets:
            return self.st_assign(s, ind, depth)
        v = self.rng.choice(targets)
        return [f"{'    ' * ind}{self.aug(v.name, v.type, s)}"]

    def aug(self, target: str, t: str, s: Scope) -> str:
        """``target op= value`` for an operator Warp defines on (t, t) or (t, scalar)."""
        ops = []
        for name in _AUG:
            for sig in self.table.by_return[t].get(name, ()):
                if sig.arg_types[0] == t and sig.arg_types[1] in self.types:
                    ops.append(sig)
        if not ops:
            return f"{target} = {self.dynamic(t, self.expr(t, s, 1, target))}"
        name = self.pick_name(sorted({g.name for g in ops}))
        sig = self.rng.choice([g for g in ops if g.name == name])
        value = self.arg(sig, sig.params[1][0], sig.arg_types[1], s, 1, (0, 1, 2))
        if sig.name == "mul" and TYPES[t].kind in ("mat", "smat") and TYPES[sig.arg_types[1]].shape:
            return f"{target} @= {value}"
        return f"{target} {_AUG[sig.name]} {value}"

    def st_component(self, s: Scope, ind: int, depth: int) -> list[str]:
        pad = "    " * ind
        options = []
        for v in s.vars:
            info = TYPES.get(v.type)
            # Warp rejects writes into a component of a struct field (s.xform.p = ...).
            if not v.mutable or info is None or not info.shape or "." in v.name:
                continue
            if info.kind in ("vec", "quat", "svec", "transform"):
                k = self.rng.randrange(info.shape[0])
                attr = info.kind in ("vec", "quat") and self.chance(0.4)
                options.append((f"{v.name}.{'xyzw'[k]}" if attr else f"{v.name}[{k}]", info.scalar))
                if info.kind == "transform":
                    vec = "vec3f" if info.scalar == "float32" else "vec3d"
                    options.append((f"{v.name}.p", vec))
            elif info.kind in ("mat", "smat"):
                r, c = self.rng.randrange(info.shape[0]), self.rng.randrange(info.shape[1])
                options.append((f"{v.name}[{r}, {c}]", info.scalar))
        if not options:
            return self.st_assign(s, ind, depth)
        target, t = self.rng.choice(options)
        if t in self.types and self.chance(0.4) and t != "bool":
            return [f"{pad}{self.aug(target, t, s)}"]
        return [f"{pad}{target} = {self.expr(t, s, 1, target)}"]

    # -- arrays ----------------------------------------------------------------------------
    def st_store(self, s: Scope, ind: int, depth: int) -> list[str]:
        own = [a for a in s.arrays if a.role == "owned" and a.own is not None]
        if not own:
            return self.st_atomic(s, ind, depth)
        a = self.rng.choice(own)
        return [f"{'    ' * ind}{self.store(a, s)}"]

    def store(self, a: Arr, s: Scope) -> str:
        """``out[own] = value``, or ``out[own] op= value`` once the element holds a value,
        so a later store builds on an earlier one instead of overwriting it."""
        target = f"{a.name}[{a.own}]"
        stored = a.name in self.stored
        self.stored.add(a.name)
        if self.chance(0.6 if stored else 0.1):
            return self.aug(target, a.dtype, s)
        value = self.expr(a.dtype, s, 0, target)
        if _BARE.match(value) or not self.reads_data(value):  # a store computes something from data
            value = self.operator(a.dtype, s, 1) or self.builtin(a.dtype, s, 1) or value
        return f"{target} = {value}"

    def st_atomic(self, s: Scope, ind: int, depth: int) -> list[str]:
        """An atomic on an accumulator (its class, any element, result unused) or on the
        thread's own element of an owned output (any op; the old value may be used)."""
        writable = [a for a in s.arrays if a.role == "accum" or (a.role == "owned" and a.own is not None)]
        if not writable:
            return self.st_assign(s, ind, depth)
        a = self.rng.choice(writable)
        if a.role == "accum":
            op, idx = self.pick_name(a.ops), self.index(a, s)
        else:
            op, idx = self.pick_name(atomic_ops(a.dtype)), a.own
        values = [self.expr(a.dtype, s, 1) for _ in range(2 if op == "atomic_cas" else 1)]
        call = f"wp.{op}({a.name}, {idx}, {', '.join(values)})"
        if a.role == "owned" and self.chance(0.25):
            name, _ = self.define(s, a.dtype, call, "old")
            return [f"{'    ' * ind}{name} = {call}"]
        return [f"{'    ' * ind}{call}"]

    def st_zeros(self, s: Scope, ind: int, depth: int) -> list[str]:
        pad, n = "    " * ind, self.rng.randint(2, 6)
        t = self.rng.choice([t for t in ("float32", "vec3f", "int32") if t in self.types])
        buf, it = self.fresh("buf"), self.fresh("i")
        inner = s.child("for")
        inner.ints.append(it)
        value = self.expr(t, inner, 1)
        name, _ = self.define(s, t, "x", "v")
        return [f"{pad}{buf} = wp.zeros(shape={n}, dtype={self.spell(t)})", f"{pad}for {it} in range({n}):",
                f"{pad}    {buf}[{it}] = {value}", f"{pad}{name} = {buf}[{self.rng.randrange(n)}]"]

    # -- control flow --------------------------------------------------------------------
    def st_for(self, s: Scope, ind: int, depth: int) -> list[str]:
        pad, var, trip = "    " * ind, self.fresh("i"), self.rng.randint(1, self.cfg.max_loop_trip)
        r = self.rng.random()
        # Literal bounds are unrolled by Warp (codegen cost x trip); the others stay loops.
        if r < 0.35:
            rng = f"range({trip})"
        elif r < 0.41:
            start = self.rng.randint(0, 2)
            rng = f"range({start}, {start + trip * 2}, {self.rng.randint(1, 3)})"
        elif r < 0.46:
            rng = f"range({trip + 1}, 0, -{self.rng.randint(1, 2)})"
        elif r < 0.6 and s.ints:
            rng = f"range({self.rng.choice(s.ints)} % {self.rng.randint(2, 6)} + {self.rng.randint(0, 2)})"
        elif r < 0.8 and s.arrays:
            rng = f"range(wp.min({self.rng.choice(s.arrays).name}.shape[0], {trip + 2}))"
        else:
            bound = next((v.name for v in s.vars if v.type == "int32" and not v.mutable), None)
            if bound:  # a kernel int parameter, clamped: inputs are random
                rng = f"range(wp.clamp({bound}, 0, {trip + 2}))"
            else:
                rng = f"range({trip} + {s.ints[0] if s.ints else 0} % 3)"
        if self.chance(0.1):
            rng = f"reversed({rng})"
        inner = s.child("for")
        inner.ints.append(var)
        body = self.block(inner, ind + 1, depth + 1, self.rng.randint(1, 3))
        return [f"{pad}for {var} in {rng}:", *body]

    def st_while(self, s: Scope, ind: int, depth: int) -> list[str]:
        pad, var = "    " * ind, self.fresh("w")
        inner = s.child("while")
        inner.ints.append(var)
        bound = f"{var} < {self.rng.randint(1, self.cfg.max_loop_trip + 2)}"
        if self.chance(0.3):
            bound = f"{bound} and {self.cond(s)}"
        body = self.block(inner, ind + 1, depth + 1, self.rng.randint(1, 3))
        # The counter increments before the body's possible break, never skipped.
        return [f"{pad}{var} = int(0)", f"{pad}while {bound}:", f"{pad}    {var} += 1", *body]

    def st_if(self, s: Scope, ind: int, depth: int) -> list[str]:
        pad = "    " * ind
        lines = [f"{pad}if {self.cond(s)}:", *self.block(s.child(), ind + 1, depth + 1, self.rng.randint(1, 3))]
        while self.chance(0.25):
            lines += [f"{pad}elif {self.cond(s)}:", *self.block(s.child(), ind + 1, depth + 1, self.rng.randint(1, 2))]
        if self.chance(0.5):
            lines += [f"{pad}else:", *self.block(s.child(), ind + 1, depth + 1, self.rng.randint(1, 2))]
        return lines

    def st_return(self, s: Scope, ind: int, depth: int) -> list[str]:
        pad = "    " * ind
        value = "" if s.returns in (None, "None") else f" {self.expr(s.returns, s, 1)}"
        return [f"{pad}if {self.cond(s)}:", f"{pad}    return{value}"]

    def st_debug(self, s: Scope, ind: int, depth: int) -> list[str]:
        pad = "    " * ind
        floats = [v.name for v in s.vars if v.type == "float32"]
        if not floats:
            return self.st_assign(s, ind, depth)
        x = self.rng.choice(floats)
        r = self.rng.random()
        if r < 0.4:
            # The message names no variable: renaming a local must not change a string.
            action = f'wp.printf("non-finite %f\\n", {x})' if not s.ints else \
                f'wp.printf("thread %d: non-finite %f\\n", {s.ints[0]}, {x})'
        elif r < 0.7:
            action = f"print({x})"
        else:
            action = f"wp.expect_near({x}, {self.lit('float32')}, 1.0e6)"
        return [f"{pad}if {self.rng.choice(('wp.isnan', 'wp.isinf'))}({x}):", f"{pad}    {action}"]

    # -- structs and helpers -------------------------------------------------------------
    def add_struct_fields(self, prefix: str, struct: str, s: Scope, mutable: bool) -> None:
        s.vars.append(Var(prefix, struct, mutable=False))
        for f, t in self.structs[struct]:
            if t in self.structs:
                self.add_struct_fields(f"{prefix}.{f}", t, s, mutable)
            else:
                s.vars.append(Var(f"{prefix}.{f}", t, mutable))

    def st_struct(self, s: Scope, ind: int, depth: int) -> list[str]:
        if not self.structs:
            return self.st_assign(s, ind, depth)
        pad, struct = "    " * ind, self.rng.choice(list(self.structs))
        name = self.fresh("s")
        makers = [h for h in self.helpers if h[2] == struct]
        if makers and self.chance(0.5):
            h = self.rng.choice(makers)
            lines = [f"{pad}{name} = {h[0]}({', '.join(self.expr(pt, s, 1) for _, pt, _ in h[1])})"]
        else:
            lines = [f"{pad}{name} = {struct}()"]
        self.add_struct_fields(name, struct, s, mutable=True)
        fields = [v for v in s.vars if v.name.startswith(name + ".") and v.type in TYPES]
        for v in self.rng.sample(fields, min(len(fields), self.rng.randint(1, 2))):
            lines.append(f"{pad}{v.name} = {self.expr(v.type, s, 1, v.name)}")
        return lines

    def final_store(self, s: Scope) -> list[str]:
        own = [a for a in s.arrays if a.role == "owned" and a.own is not None]
        if own:
            return [f"    {self.store(own[-1], s)}"]
        return self.st_atomic(s, 1, 0)


