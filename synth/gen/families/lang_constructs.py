"""The constructs a lang kernel adds on top of its plain body (``synth.gen.families.lang``).

Each ``c_<name>`` method returns a ``Piece``: module lines (constants, matrix type
aliases), ``@wp.func``/``@wp.struct`` blocks, kernel parameters, kernel lines and float
*terms* the kernel sums into an owned output. A piece is live by construction: each local
it defines is read by a later line or a term, each parameter, field, constant and helper
it declares is used. Arrays keep one race role: inputs are only read, owned outputs are
stored at the thread's own element (``self.own``), accumulators only get ``atomic_add``.
Inputs are expressions over the plain body's surviving values (``self.live``).

Function and type names come from disjoint pools per construct, so pieces never clash with
each other or with the plain builder's names (``x0``, ``out1``, ``v3``, ``helper0``,
``Struct0``, ``state``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from synth.gen.expressions import Scope

CONSTRUCTS = ("constants", "custom_grad", "generic", "struct_arrays", "slices", "nonsquare", "half", "lower_bound")


@dataclass(slots=True)
class Piece:
    module: list[str] = field(default_factory=list)  # module-level lines (after the imports)
    funcs: list[list[str]] = field(default_factory=list)  # @wp.func / @wp.struct blocks, in order
    params: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)  # kernel lines, 4-space indented
    terms: list[str] = field(default_factory=list)  # float32 expressions the kernel's output sums
    helpers: list[str] = field(default_factory=list)  # every function the piece defines
    structs: list[str] = field(default_factory=list)
    shapes: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # Launch array shapes
    sorted: list[str] = field(default_factory=list)  # arrays whose example values are sorted (Launch.sorted)
    needs_any: bool = False


# Custom gradients: (names, params, forward, adjoint lines). Adjoint lines are either plain
# statements or (param, expression) pairs rendered ``wp.adjoint[param] += expression``;
# every adjoint is the true derivative (or a straight-through estimate, for the clamp).
_GRADS = (
    (("soft_sign", "squash"), (("x", "float"),), "x / (1.0 + wp.abs(x))",
     ("d = 1.0 + wp.abs(x)", ("x", "adj_ret / (d * d)"))),
    (("safe_sqrt",), (("x", "float"),), "wp.sqrt(wp.max(x, 0.0))",
     ("if x > 0.0:", ("x", "adj_ret / (2.0 * wp.sqrt(x))"))),
    (("clamp_st", "clip_passthrough"), (("x", "float"), ("lo", "float"), ("hi", "float")), "wp.clamp(x, lo, hi)",
     (("x", "adj_ret"),)),
    (("gauss_bump", "kernel_weight"), (("x", "float"), ("s", "float")), "wp.exp(-x * x * wp.abs(s))",
     ("g = wp.exp(-x * x * wp.abs(s))", ("x", "adj_ret * g * (-2.0 * x * wp.abs(s))"),
      ("s", "adj_ret * g * (-x * x * wp.sign(s))"))),
    (("wave_mul", "blend_sin"), (("x", "float"), ("y", "float")), "x * y + wp.sin(x)",
     (("x", "adj_ret * (y + wp.cos(x))"), ("y", "adj_ret * x"))),
    (("half_sq_norm", "spring_energy"), (("v", "wp.vec3"),), "0.5 * wp.dot(v, v)", (("v", "adj_ret * v"),)),
    (("tanh_act", "activation"), (("x", "float"),), "wp.tanh(x)",
     ("t = wp.tanh(x)", ("x", "adj_ret * (1.0 - t * t)"))),
    (("log_barrier", "log1p_sq"), (("x", "float"),), "wp.log(1.0 + x * x)",
     (("x", "adj_ret * 2.0 * x / (1.0 + x * x)"),)),
)

# Generic functions: (names, params, body, the argument kinds it can be called with).
_GENERICS = (
    (("lerp_any", "mix"), "a: Any, b: Any, t: Any", "a + (b - a) * t", ("f", "v2", "v3", "v4")),
    (("clamp_any", "bounded"), "x: Any, lo: Any, hi: Any", "wp.min(wp.max(x, lo), hi)", ("f", "i", "v3", "v2")),
    (("twice", "doubled"), "x: Any", "x + x", ("f", "i", "v3", "v4")),
    (("sq_norm", "norm2"), "v: Any", "wp.dot(v, v)", ("v2", "v3", "v4")),
    (("abs_diff", "distance_any"), "a: Any, b: Any", "wp.abs(a - b)", ("f", "i", "v3")),
)
_KIND_TYPE = {"f": "float32", "i": "int32", "v2": "vec2f", "v3": "vec3f", "v4": "vec4f"}

# Constants: a float, an int (static trip counts) and a vector, and static-selectable helpers.
_FLOAT_CONSTS = ("GAIN", "DAMPING", "STIFFNESS", "FALLOFF", "DT", "SCALE")
_INT_CONSTS = ("N_TAPS", "N_ITER", "N_SAMPLES", "STEPS")
_VEC_CONSTS = ("GRAVITY", "UP", "AXIS", "WIND")
_SELECTABLE = (("linear_falloff", "wp.max(1.0 - wp.abs(x) * {F}, 0.0)"), ("gauss_falloff", "wp.exp(-x * x * {F})"),
               ("soft_limit", "x / (1.0 + wp.abs(x) * {F})"), ("hard_limit", "wp.clamp(x * {F}, -1.0, 1.0)"))


class Constructs:
    """Mixin over the plain builder (``self.rng``, ``self.expr``, ``self.fresh``); the lang
    builder sets ``self.live`` (readable scope), ``self.own`` and ``self.tids`` first."""

    live: Scope
    own: str
    tids: list[str]

    # -- small utilities ----------------------------------------------------------------
    def value(self, t: str = "float32") -> str:
        return self.expr(t, self.live, 1)

    def local(self, p: Piece, prefix: str, value: str) -> str:
        name = self.fresh(prefix)
        p.body.append(f"    {name} = {value}")
        return name

    def array_type(self, name: str, dtype: str, ndim: int) -> str:
        if ndim == 1:
            return f"wp.array(dtype={dtype})"
        return f"wp.array{ndim}d(dtype={dtype})" if self.chance(0.5) else f"wp.array(dtype={dtype}, ndim={ndim})"

    def to_float(self, name: str, kind: str) -> str:
        if kind == "f":
            return name
        if kind == "i":
            return f"float({name})"
        return f"wp.length({name})" if self.chance(0.5) else f"{name}[{self.rng.randrange(int(kind[1]))}]"

    def arg_of(self, kind: str) -> str:
        return self.value(_KIND_TYPE[kind])

    # -- wp.constant and wp.static -----------------------------------------------------------
    def c_constants(self) -> Piece:
        p, rng = Piece(), self.rng
        f_name = rng.choice(_FLOAT_CONSTS)
        p.module.append(f"{f_name} = wp.constant({round(rng.uniform(0.1, 2.0), 2)})")
        uses = rng.sample(("unroll", "static_arith", "vector", "select"), rng.randint(1, 3))
        if "unroll" in uses:  # wp.static trip count: Warp unrolls the loop
            n_name = rng.choice(_INT_CONSTS)
            p.module.append(f"{n_name} = wp.constant({rng.randint(2, 4)})")
            x = self.local(p, "x", self.value())
            acc = self.local(p, "acc", "float(0.0)")
            t = self.fresh("t")
            step = rng.choice((f"{x} * wp.pow({f_name}, float({t}))", f"wp.sin({x} + float({t}) * {f_name})",
                               f"{x} * float({t} + 1) * {f_name} / wp.static(float({n_name}))"))
            p.body += [f"    for {t} in range(wp.static({n_name})):", f"        {acc} += {step}"]
            p.terms.append(acc)
        if "static_arith" in uses or not uses:
            folded = rng.choice((f"wp.static({f_name} * {f_name})", f"wp.static(1.0 / {f_name})",
                                 f"wp.static(2.0 * {f_name} + 0.5)"))
            p.terms.append(self.local(p, "scaled", f"{self.value()} * {folded}"))
        if "vector" in uses:
            v_name = rng.choice(_VEC_CONSTS)
            comps = ", ".join(str(round(rng.uniform(-1.0, 1.0), 1)) for _ in range(3))
            p.module.append(f"{v_name} = wp.constant(wp.vec3({comps}))")
            moved = self.local(p, "moved", f"{self.value('vec3f')} + {v_name} * {f_name}")
            p.terms.append(f"wp.dot({moved}, {v_name})")
        if "select" in uses:  # one helper picked at codegen time, the other called directly
            mode_name = rng.choice(("MODE", "PROFILE", "VARIANT"))
            mode = rng.randint(0, 1)
            p.module.append(f"{mode_name} = wp.constant({mode})")
            pair = rng.sample(_SELECTABLE, 2)
            for name, body in pair:
                p.funcs.append(["@wp.func", f"def {name}(x: float):", f"    return {body.format(F=f_name)}"])
                p.helpers.append(name)
            picked = self.local(p, "picked",
                                f"wp.static({pair[0][0]} if {mode_name} == 0 else {pair[1][0]})({self.value()})")
            p.terms.append(f"{pair[1 - mode][0]}({picked})")
        return p

    # -- custom gradients -------------------------------------------------------------------
    def c_custom_grad(self) -> Piece:
        p, rng = Piece(), self.rng
        names, params, forward, adjoint = rng.choice(_GRADS)
        name = rng.choice(names)
        sig = ", ".join(f"{n}: {t}" for n, t in params)
        p.funcs.append(["@wp.func", f"def {name}({sig}):", f"    return {forward}"])
        grad = rng.choice((f"adj_{name}", f"{name}_grad"))
        clip = rng.random() < 0.3 and all(t == "float" for _, t in params)  # gradient clipping
        lines = [f"@wp.func_grad({name})", f"def {grad}({sig}, adj_ret: float):"]
        pad = "    "
        for line in adjoint:
            if isinstance(line, str):
                lines.append(pad + line)
                pad = "        " if line.endswith(":") else pad
            else:
                value = f"wp.clamp({line[1]}, -1.0, 1.0)" if clip else line[1]
                lines.append(f"{pad}wp.adjoint[{line[0]}] += {value}")
        # Warp emits the adjoint as adj_<name>: the grad function's own name never reaches
        # the C++ (and listing it would make <name> a prefix of another listed name).
        # No @wp.func_replay: a kernel calling one fails clang in the execute tier's batch
        # module (Warp names the replay replay_<name>_<n> with a per-module counter).
        p.funcs.append(lines)
        p.helpers.append(name)
        if name in ("clamp_st", "clip_passthrough"):
            bound = round(rng.uniform(0.5, 3.0), 1)
            args = [self.value(), f"-{bound}", str(bound)]
        else:
            args = [self.value("vec3f" if t == "wp.vec3" else "float32") for _, t in params]
        p.terms.append(self.local(p, "y", f"{name}({', '.join(args)})"))
        return p

    # -- generic functions ------------------------------------------------------------------
    def c_generic(self) -> Piece:
        p, rng = Piece(needs_any=True), self.rng
        names, sig, body, kinds = rng.choice(_GENERICS)
        name = rng.choice(names)
        p.funcs.append(["@wp.func", f"def {name}({sig}):", f"    return {body}"])
        p.helpers.append(name)
        n_args = sig.count("Any")
        for kind in rng.sample(kinds, 2):  # two argument types: Warp builds two overloads
            if name in ("clamp_any", "bounded"):
                lo, hi = ("0", "7") if kind == "i" else ("-1.0", "1.0")
                if kind.startswith("v"):
                    lo, hi = f"wp.vec{kind[1]}({lo})", f"wp.vec{kind[1]}({hi})"
                args = [self.arg_of(kind), lo, hi]
            else:
                args = [self.arg_of(kind) for _ in range(n_args)]
                if name in ("lerp_any", "mix"):
                    args[2] = self.value() if kind != "i" else args[2]
            r = self.local(p, "g", f"{name}({', '.join(args)})")
            p.terms.append(self.to_float(r, "f" if name in ("sq_norm", "norm2") else kind))
        return p

    # -- arrays inside structs ----------------------------------------------------------------
    def c_struct_arrays(self) -> Piece:
        p, rng, dims = Piece(), self.rng, len(self.tids)
        struct = rng.choice(("Particles", "Buffers", "FieldData", "Bodies"))
        param = rng.choice(("data", "bufs", "particles", "bodies"))
        src, dst = rng.choice((("pos", "cost"), ("src", "dst"), ("values", "density"), ("samples", "energy")))
        dtype = rng.choice(("float", "wp.vec3"))
        src_ndim = dims if rng.random() < 0.6 else 1
        fields = [f"    {src}: {self.array_type(src, dtype, src_ndim)}", f"    {dst}: {self.array_type(dst, 'float', dims)}"]
        gain = rng.choice(("gain", "weight", "scale")) if rng.random() < 0.6 else None
        hits = rng.choice(("hits", "counts")) if rng.random() < 0.5 else None
        if gain:
            fields.append(f"    {gain}: float")
        if hits:
            fields.append(f"    {hits}: wp.array(dtype=wp.int32)")
        p.funcs.append(["@wp.struct", f"class {struct}:", *fields])
        p.structs.append(struct)
        p.params.append(f"{param}: {struct}")
        index = self.own if src_ndim == dims else f"{self.tids[-1]} % {param}.{src}.shape[0]"
        read = f"{param}.{src}[{index}]"
        if src_ndim == 1 and rng.random() < 0.5:  # a helper reads the struct's array
            fetch = rng.choice(("fetch", "load_sample", "gather"))
            ret = f"s.{src}[i] * s.{gain}" if gain and dtype == "float" else f"s.{src}[i]"
            p.funcs.append(["@wp.func", f"def {fetch}(s: {struct}, i: int):", f"    return {ret}"])
            p.helpers.append(fetch)
            read = f"{fetch}({param}, {self.tids[-1]} % {param}.{src}.shape[0])"
        v = self.local(p, "s", read)
        scalar = v if dtype == "float" else self.to_float(v, "v3")
        weight = f"{param}.{gain}" if gain else self.value()
        out = self.local(p, "w", f"{scalar} * {weight} + {self.value()}")
        p.body.append(f"    {param}.{dst}[{self.own}] = {out}")
        if hits:
            p.body.append(f"    wp.atomic_add({param}.{hits}, {self.tids[0]} % {param}.{hits}.shape[0], 1)")
        p.terms.append(out)
        return p

    # -- array views and slices ---------------------------------------------------------------
    def c_slices(self) -> Piece:
        p, rng, dims = Piece(), self.rng, len(self.tids)
        if dims == 1:
            arr = rng.choice(("signal", "series", "weights", "taps"))
            n = rng.choice((8, 12, 16))
            p.params.append(f"{arr}: wp.array(dtype=float)")
            p.shapes.append((arr, (n,)))
            for use in rng.sample(("window", "stride", "head"), rng.randint(1, 2)):
                if use == "window":
                    lo = self.local(p, "lo", f"tid % {arr}.shape[0]")
                    stop = rng.choice(("", f"wp.min({lo} + {rng.randint(2, 5)}, {arr}.shape[0])"))
                    win = self.local(p, "window", f"{arr}[{lo}:{stop}]")
                    total = self.local(p, "total", "float(0.0)")
                    k = self.fresh("k")
                    p.body += [f"    for {k} in range({win}.shape[0]):", f"        {total} += {win}[{k}]"]
                    p.terms.append(total)
                elif use == "stride":
                    part = self.local(p, "strided", f"{arr}[{rng.choice(('', '1'))}::{rng.choice((2, 3))}]")
                    p.terms.append(f"{part}[tid % {part}.shape[0]] * {self.value()}")
                else:
                    part = self.local(p, "head", f"{arr}[:{rng.randint(2, n // 2)}]")
                    p.terms.append(f"{part}[tid % {part}.shape[0]]")
            return p
        arr = rng.choice(("grid", "image", "table", "field"))
        p.params.append(f"{arr}: {self.array_type(arr, 'float', dims)}")
        first, rest = self.tids[0], self.tids[1:]
        uses = ["row"] if rng.random() < 0.5 else []
        uses += rng.sample(("column", "tail"), rng.randint(1, 2))  # at least one slice
        for use in uses:
            if use == "row":  # a[i]: a view of one less dimension
                row = self.local(p, "row", f"{arr}[{first}]")
                p.terms.append(f"{row}[{', '.join(rest)}] * {self.value()}")
            elif use == "column":  # one dimension left open: a 1-D view, summed
                axis = rng.randrange(dims)
                index = ", ".join(":" if d == axis else t for d, t in enumerate(self.tids))
                col = self.local(p, "col", f"{arr}[{index}]")
                total = self.local(p, "total", "float(0.0)")
                k = self.fresh("k")
                p.body += [f"    for {k} in range({col}.shape[0]):", f"        {total} += {col}[{k}]"]
                p.terms.append(f"{total} / float({col}.shape[0])")
            else:  # the last dimension from 1 on
                tail = self.local(p, "tail", f"{arr}[{', '.join(self.tids[:-1])}, 1:]")
                p.terms.append(f"{tail}[{self.tids[-1]} % {tail}.shape[0]]")
        return p

    # -- non-square matrices ----------------------------------------------------------------------
    def c_nonsquare(self) -> Piece:
        p, rng = Piece(), self.rng
        r, c = rng.choice(((2, 3), (3, 2), (2, 4), (4, 2), (3, 4), (4, 3)))
        alias = f"mat{r}{c}"
        p.module.append(f"{alias} = wp.types.matrix(shape=({r}, {c}), dtype=wp.float32)")
        how = rng.choice(("outer", "rows", "cols", "ctor", "param", "array"))
        if how == "outer":
            m = self.local(p, "m", f"wp.outer({self.value(f'vec{r}f')}, {self.value(f'vec{c}f')})")
        elif how == "rows":
            m = self.local(p, "m", f"wp.matrix_from_rows({', '.join(self.value(f'vec{c}f') for _ in range(r))})")
        elif how == "cols":
            m = self.local(p, "m", f"wp.matrix_from_cols({', '.join(self.value(f'vec{r}f') for _ in range(c))})")
        elif how == "ctor":
            comps = [self.value() if rng.random() < 0.3 else str(round(rng.uniform(-2.0, 2.0), 1))
                     for _ in range(r * c)]
            if all(not any(ch.isalpha() for ch in x) for x in comps):
                comps[0] = self.value()
            m = self.local(p, "m", f"{alias}({', '.join(comps)})")
        elif how == "param":
            m = rng.choice(("proj", "jac", "basis"))
            p.params.append(f"{m}: {alias}")
        else:
            arr = rng.choice(("jacobians", "projs"))
            p.params.append(f"{arr}: {self.array_type(arr, alias, len(self.tids))}")
            m = self.local(p, "m", f"{arr}[{self.own}]")
        uses = rng.sample(("apply", "gram", "transpose_apply", "ddot"), rng.randint(1, 3))
        for use in uses:
            if use == "apply":
                y = self.local(p, "y", f"{m} @ {self.value(f'vec{c}f')}")
                p.terms.append(self.to_float(y, f"v{r}"))
            elif use == "gram":  # an r x r (or c x c) square product
                g = self.local(p, "gram", rng.choice((f"{m} @ wp.transpose({m})", f"wp.transpose({m}) @ {m}")))
                p.terms.append(rng.choice((f"wp.trace({g})", f"wp.determinant({g})")))
            elif use == "transpose_apply":
                mt = self.local(p, "mt", f"wp.transpose({m})")
                z = self.local(p, "z", f"{mt} @ {self.value(f'vec{r}f')}")
                p.terms.append(self.to_float(z, f"v{c}"))
            else:
                other = f"wp.outer({self.value(f'vec{r}f')}, {self.value(f'vec{c}f')})"
                p.terms.append(f"wp.ddot({m}, {other} * {round(rng.uniform(0.1, 1.0), 2)})")
        return p

    # -- float16 and bfloat16 ---------------------------------------------------------------------
    def c_half(self) -> Piece:
        p, rng, dims = Piece(), self.rng, len(self.tids)
        uses = rng.sample(("f16", "bf16", "f16_in", "f16_out"), rng.randint(1, 3))
        if not {"f16", "bf16"} & set(uses):
            uses.append(rng.choice(("f16", "bf16")))
        halves: list[str] = []
        for use in [u for u in ("f16", "bf16", "f16_in", "f16_out") if u in uses]:
            if use in ("f16", "bf16"):  # clamped first: float16 overflows past 65504
                t = "wp.float16" if use == "f16" else "wp.bfloat16"
                h = self.local(p, "h" if use == "f16" else "b", f"{t}(wp.clamp({self.value()}, -8.0, 8.0))")
                op = rng.choice((f"{h} * {t}({round(rng.uniform(0.25, 2.0), 2)}) + {t}({round(rng.uniform(-1, 1), 2)})",
                                 f"{h} * {h} - {t}(0.5)", f"wp.max({h}, {t}(0.0)) + wp.abs({h})"))
                h2 = self.local(p, "h" if use == "f16" else "b", op)
                p.terms.append(f"float({h2})")
                if use == "f16":
                    halves.append(h2)
            elif use == "f16_in":
                arr = rng.choice(("half_in", "weights16"))
                p.params.append(f"{arr}: {self.array_type(arr, 'wp.float16', dims)}")
                hv = self.local(p, "hv", f"{arr}[{self.own}] * wp.float16(2.0)")
                halves.append(hv)
                p.terms.append(f"float({hv})")
            else:
                arr = rng.choice(("half_out", "out16"))
                p.params.append(f"{arr}: {self.array_type(arr, 'wp.float16', dims)}")
                value = halves[-1] if halves else f"wp.float16(wp.clamp({self.value()}, -8.0, 8.0))"
                p.body.append(f"    {arr}[{self.own}] = {value}")
        return p

    # -- wp.lower_bound ---------------------------------------------------------------------------------
    def c_lower_bound(self) -> Piece:
        p, rng = Piece(), self.rng
        arr = rng.choice(("edges", "bins", "cdf", "breaks", "knots"))
        n = rng.choice((8, 16))
        ints = rng.random() < 0.3
        p.params.append(f"{arr}: wp.array(dtype={'wp.int32' if ints else 'float'})")
        p.shapes.append((arr, (n,)))
        p.sorted.append(arr)  # a binary search wants sorted breakpoints, as real callers pass
        key = self.local(p, "key", self.value("int32") if ints else self.value())
        if rng.random() < 0.3:
            found = f"wp.lower_bound({arr}, 1, {arr}.shape[0] - 1, {key})"
        else:
            found = f"wp.lower_bound({arr}, {key})"
        b = self.local(p, "bin", found)
        slot = self.local(p, "slot", f"wp.min({b}, {arr}.shape[0] - 1)")
        p.terms.append(f"float({b})")
        if not ints:
            p.terms.append(f"({arr}[{slot}] - {key})")
        else:
            p.terms.append(f"float({arr}[{slot}])")
        if rng.random() < 0.5:  # a histogram of the bins: an accumulator
            hist = rng.choice(("hist", "counts_per_bin"))
            p.params.append(f"{hist}: wp.array(dtype=wp.int32)")
            p.shapes.append((hist, (n,)))
            p.body.append(f"    wp.atomic_add({hist}, {slot}, 1)")
        return p
