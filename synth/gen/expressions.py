"""Type-directed expressions: to fill a slot of type T, pick a production that yields T.

Productions are builtin calls whose signature (from Warp's registry, see
``synth.gen.signatures``) returns T, operators, helper calls, component reads, casts,
constructors, ``wp.where`` and leaves (variables, array elements, struct fields,
literals). Arguments are filled recursively by their parameter types; the guards in
``signatures.GUARDS`` keep every call safe to run.

Only ``self.rng`` (seeded ``random.Random``) makes choices, and every collection is
iterated in insertion order, so output is a pure function of the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from synth.gen.calibration import builtin_weight
from synth.gen.conditions import Conditions
from synth.gen.config import GeneratorConfig
from synth.gen.guards import GuardedArguments
from synth.gen.signatures import GUARDS, OPERATOR_SYNTAX, TYPES, UNARY_SYNTAX, Signature, prepare, table

# Valid Euler axis sequences for quat_from_euler / quat_to_euler (i != j, j != k).
_EULER = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0),
          (0, 1, 0), (0, 2, 0), (1, 0, 1), (1, 2, 1), (2, 0, 2), (2, 1, 2))
_AXES = "xyzw"
_ROW = {"mat22f": "vec2f", "mat33f": "vec3f", "mat44f": "vec4f", "mat33d": "vec3d"}
_SAME_SIZE = (("float32", "int32", "uint32"), ("float64", "int64", "uint64"), ("float16", "int16", "uint16"))


@dataclass(slots=True)
class Var:
    name: str
    type: str  # a TYPES key or a struct name
    mutable: bool = True


@dataclass(slots=True)
class Arr:
    """A kernel array and its one role (the race-freedom contract, synth.gen.generator):
    ``input`` is only read; ``owned`` is stored and read only at the thread's own
    element ``own``; ``accum`` is only updated by the commutative atomics in ``ops``."""

    name: str
    dtype: str
    ndim: int
    role: str  # "input", "owned" or "accum"
    own: str | None  # this thread's element ("tid", "i, j") when the array has the launch shape
    ops: tuple[str, ...] = ()  # an accumulator's atomic class: ("atomic_add", "atomic_sub"), ("atomic_max",) ...

    @property
    def writable(self) -> bool:
        return self.role != "input"


@dataclass(slots=True)
class Scope:
    vars: list[Var] = field(default_factory=list)
    ints: list[str] = field(default_factory=list)  # index-safe: tid parts and loop counters, all >= 0
    arrays: list[Arr] = field(default_factory=list)
    rng: str | None = None  # the RNG state variable
    loop: str | None = None  # innermost loop kind ("for"/"while"): where break/continue may go
    returns: str | None = None  # in a helper: its return type ("None" if void); None in the kernel

    def child(self, loop: str | None = None) -> Scope:
        return Scope(list(self.vars), list(self.ints), self.arrays, self.rng, loop or self.loop, self.returns)

    def of_type(self, t: str) -> list[Var]:
        return [v for v in self.vars if v.type == t]


class ExprBuilder(GuardedArguments, Conditions):
    def __init__(self, seed: int, cfg: GeneratorConfig) -> None:
        self.rng = random.Random(seed)
        self.cfg = cfg
        self.table = table()
        self.prep = prepare(cfg)
        self.types = self.prep.types
        self.counter = 0
        self.helpers: list[tuple[str, list[tuple[str, str, str | None]], str]] = []  # name, params, returns
        self.structs: dict[str, list[tuple[str, str]]] = {}
        # Values defined but not read yet: leaves prefer them, so what a statement computes
        # flows into a later one instead of being left for the pruner (synth.gen.prune).
        self.unread: dict[str, None] = {}
        self.called: set[str] = set()  # helpers with a call site (expr() seeks out the others)

    # -- small utilities -------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick_type(self, scalar_bias: float = 0.0) -> str:
        if scalar_bias and self.chance(scalar_bias):
            return "float32"
        return self.rng.choices(self.types, self.prep.type_weights)[0]

    def spell(self, t: str) -> str:
        return TYPES[t].spelling if t in TYPES else t

    def raw(self, t: str, lo: float = -4.0, hi: float = 4.0) -> str:
        """The digits of a literal of scalar type ``t`` (``num`` adds the type)."""
        kind = TYPES[t].kind
        if kind == "bool":
            return self.rng.choice(("True", "False"))
        if kind == "float":
            return repr(round(self.rng.uniform(lo, hi), self.rng.choice((1, 2, 3))))
        low = max(0, int(lo)) if kind == "uint" else int(lo)
        return str(self.rng.randint(low, max(low + 1, int(hi) + 4)))

    def num(self, t: str, lo: float = -4.0, hi: float = 4.0) -> str:
        """A literal of scalar type ``t``, spelled so Warp infers exactly ``t``."""
        text = self.raw(t, lo, hi)
        return text if t in ("float32", "int32", "bool") else f"{TYPES[t].spelling}({text})"

    def lit(self, t: str) -> str:
        """A constant of any universe type: literals, splats and identity constructors."""
        info, sp = TYPES[t], self.spell(t)
        if not info.shape:
            return self.num(t)
        sc = info.scalar
        comps = lambda n: ", ".join(self.raw(sc) for _ in range(n))  # noqa: E731 - constructor arguments
        if info.kind in ("vec", "svec"):  # spatial vectors have no splat constructor
            return f"{sp}({comps(1)})" if info.kind == "vec" and self.chance(0.3) else f"{sp}({comps(info.shape[0])})"
        if info.kind == "quat":
            dtype = "" if sc == "float32" else f"dtype={TYPES[sc].spelling}"
            return f"wp.quat_identity({dtype})" if self.chance(0.3) else f"{sp}({comps(4)})"
        if info.kind == "transform":
            if sc == "float32" and self.chance(0.5):
                return f"wp.transform(wp.vec3({comps(3)}), wp.quat_identity())"
            return "wp.transform_identity()" if sc == "float32" else "wp.transform_identity(dtype=wp.float64)"
        if info.kind == "mat" and self.chance(0.15):
            return f"wp.identity(n={info.shape[0]}, dtype={TYPES[sc].spelling})"
        if info.kind == "mat" and info.shape[0] <= 3 and self.chance(0.3):
            return f"{sp}({comps(info.shape[0] * info.shape[1])})"
        return f"{sp}({comps(1)})"

    # -- leaves ------------------------------------------------------------------------------
    def index(self, a: Arr, s: Scope) -> str:
        """An in-bounds index: the thread's own element, or tid/loop counters wrapped
        modulo the array's shape (any non-empty shape is safe)."""
        if a.own is not None and (a.role == "owned" or self.chance(0.93 if a.role == "input" else 0.5)):
            return a.own
        parts = []
        for d in range(a.ndim):
            base = self.rng.choice(s.ints) if s.ints else "0"
            if self.chance(0.4):
                base = f"{base} + {self.rng.randint(1, 7)}"
            parts.append(f"({base}) % {a.name}.shape[{d}]")
        return ", ".join(parts)

    def readable_arrays(self, t: str, s: Scope) -> list[Arr]:
        # Owned outputs are read only at this thread's element and accumulators never:
        # no cross-thread races.
        return [a for a in s.arrays if a.dtype == t and a.role in ("input", "owned")]

    def consume(self, options: list[str]) -> str:
        """One of ``options`` (variable names or ``v.x``-style reads), preferring values no
        statement has read yet; recent values are the likeliest operands otherwise."""
        fresh = [o for o in options if o.split(".")[0].split("[")[0] in self.unread]
        if fresh and self.chance(0.8):
            pick = self.rng.choice(fresh)
        else:
            pick = self.rng.choice(options[-3:] if self.chance(0.5) else options)
        self.unread.pop(pick.split(".")[0].split("[")[0], None)
        return pick

    def leaf(self, t: str, s: Scope, avoid: str = "") -> str:
        options = [v.name for v in s.of_type(t) if v.name != avoid]
        if self.chance(0.85) and options:
            return self.consume(options)
        arrays = self.readable_arrays(t, s)
        if arrays and self.chance(0.6):
            a = self.rng.choice(arrays)
            element = f"{a.name}[{self.index(a, s)}]"
            if element != avoid:
                return element
        if not options and self.chance(0.6):
            # Derive the value from data in scope rather than from a literal.
            info = TYPES[t]
            if not info.shape:
                part = self.component(t, s, 1)
                if part and part != avoid:
                    return part
            elif info.kind == "vec":
                scalars = [v.name for v in s.of_type(info.scalar)]
                if scalars:
                    return f"{info.spelling}({self.rng.choice(scalars)})"
        return self.lit(t)

    def expr(self, t: str, s: Scope, depth: int = 0, avoid: str = "") -> str:
        """An expression of type ``t``; ``avoid`` is an assignment's target, which must
        not come back as the whole value (``x = x``)."""
        if t not in TYPES:  # a struct value
            options = [v.name for v in s.of_type(t)]
            return self.rng.choice(options) if options else f"{t}()"
        cfg = self.cfg
        if depth >= cfg.max_depth or self.chance(cfg.leaf_probability + 0.15 * depth):
            return self.leaf(t, s, avoid)
        r = self.rng.random()
        d = depth + 1
        if any(h[2] == t and h[0] not in self.called for h in self.helpers) and self.chance(0.5):
            r = 0.5  # a helper nothing calls yet: call it (the pruner would drop it)
        # Arithmetic dominates real kernels (warp.examples: mul/add in 60% of kernels).
        if r < 0.45 and self.prep.ops.get(t):
            out = self.operator(t, s, d)
        elif r < 0.53:
            out = self.helper_call(t, s, d)
        elif r < 0.60:
            out = self.component(t, s, d)
        elif r < 0.62:
            a, b = self.expr(t, s, d), self.expr(t, s, d)
            if self.chance(0.7):
                out = f"wp.where({self.cond(s, d)}, {a}, {b})"
            else:
                out = f"({a} if {self.cond(s, d)} else {b})"
        elif r < 0.68:
            out = self.convert(t, s, d)
        else:
            out = None
        return out or self.builtin(t, s, d) or self.leaf(t, s, avoid)

    def builtin(self, t: str, s: Scope, depth: int, name: str | None = None) -> str | None:
        names = self.prep.names.get(t) if name is None else [name]
        if not names:
            return None
        sigs = [g for g in self.table.by_return[t][self.pick_name(names)] if self.fits(g, s)]
        if not sigs:
            return None
        sig = self.rng.choices(sigs, [self.sig_weight(g, s) for g in sigs])[0]
        return self.call(sig, s, depth)

    def pick_name(self, names: tuple[str, ...] | list[str]) -> str:
        """A builtin name, as often as real code uses it (synth.gen.calibration)."""
        return self.rng.choices(names, [builtin_weight(n) for n in names])[0]

    def fits(self, sig: Signature, s: Scope) -> bool:
        for t in sig.arg_types:
            if t == "state" and s.rng is None:
                return False
            if t == "array[float32]" and not any(a.dtype == "float32" and a.ndim == 1 and a.role == "input"
                                                 for a in s.arrays):
                return False
            if t not in self.types and t not in ("state", "array[float32]"):
                return False
        return True

    def sig_weight(self, sig: Signature, s: Scope | None = None) -> float:
        """Type weights, raised for arguments the scope holds data of: a call on values
        the kernel has beats one on literals (a constant computation)."""
        held = {v.type for v in s.vars} | {a.dtype for a in s.arrays if a.role != "accum"} if s else set()
        w = 1.0
        for t in sig.arg_types:
            w *= (TYPES[t].weight if t in TYPES else 1.0) * (4.0 if t in held else 1.0)
        return w

    def call(self, sig: Signature, s: Scope, depth: int) -> str:
        euler = self.rng.choice(_EULER)
        args = [self.arg(sig, p, t, s, depth, euler) for p, t in sig.params]
        return f"wp.{sig.name}({', '.join(args)})"

    def arg(self, sig: Signature, param: str, t: str, s: Scope, depth: int, euler: tuple[int, int, int]) -> str:
        if t == "state":
            return s.rng or "0"
        if t == "array[float32]":
            return self.rng.choice([a.name for a in s.arrays if a.dtype == "float32" and a.ndim == 1
                                    and a.role == "input"])
        guard = GUARDS.get(sig.name, {}).get(param)
        if guard is None and TYPES[t].kind in ("int", "uint") and sig.group not in ("operator", "scalar", "utility"):
            guard = "count"  # an int parameter of unknown meaning: a small positive literal
        return self.guarded(guard, t, s, depth, euler) if guard else self.expr(t, s, depth)

    def operator(self, t: str, s: Scope, depth: int) -> str | None:
        name = self.pick_name(self.prep.ops[t])
        sigs = [g for g in self.table.by_return[t][name] if self.fits(g, s)]
        if not sigs:
            return None
        matmul = [g for g in sigs if name == "mul" and TYPES[g.arg_types[0]].kind in ("mat", "smat")]
        if matmul and self.chance(0.4):  # m @ v is how Warp code transforms vectors
            sigs = matmul
        sig = self.rng.choices(sigs, [self.sig_weight(g, s) for g in sigs])[0]
        if self.chance(0.04):  # the function spelling exists too: wp.add(a, b)
            return self.call(sig, s, depth)
        args = [self.arg(sig, p, at, s, depth, (0, 1, 2)) for p, at in sig.params]
        if len(args) == 1:
            return f"({UNARY_SYNTAX[name]}{args[0]})"
        op = OPERATOR_SYNTAX[name]
        if name == "mul" and TYPES[sig.arg_types[0]].kind in ("mat", "smat") and TYPES[sig.arg_types[1]].shape:
            op = "@"
        return f"({args[0]} {op} {args[1]})"

    def helper_call(self, t: str, s: Scope, depth: int) -> str | None:
        fitting = [h for h in self.helpers if h[2] == t]
        if not fitting:
            return None
        uncalled = [h for h in fitting if h[0] not in self.called]
        name, params, _ = self.rng.choice(uncalled or fitting)
        self.called.add(name)
        args = []
        for k, (_, pt, default) in enumerate(params):
            if default is not None and k == len(params) - 1 and self.chance(0.5):
                break  # leave the defaulted parameter out
            if pt.startswith("array"):
                return None  # array helpers are called as statements with an own-element index
            args.append(self.expr(pt, s, depth))
        return f"{name}({', '.join(args)})"

    def component(self, t: str, s: Scope, depth: int) -> str | None:
        """A scalar read out of a composite value (v[1], v.x, m[0, 2], m[1], t.p, t.q)."""
        options: list[str] = []
        for v in s.vars:
            info = TYPES.get(v.type)
            if info is None or not info.shape:
                continue
            if t == info.scalar:
                if info.kind in ("vec", "quat", "svec", "transform"):
                    k = self.rng.randrange(info.shape[0])
                    use_attr = info.kind in ("vec", "quat") and info.shape[0] <= 4 and self.chance(0.4)
                    options.append(f"{v.name}.{_AXES[k]}" if use_attr else f"{v.name}[{k}]")
                elif info.kind in ("mat", "smat"):
                    r, c = self.rng.randrange(info.shape[0]), self.rng.randrange(info.shape[1])
                    options.append(f"{v.name}[{r}, {c}]" if self.chance(0.7) else f"{v.name}[{r}][{c}]")
            elif _ROW.get(v.type) == t:
                options.append(f"{v.name}[{self.rng.randrange(info.shape[0])}]")
            elif info.kind == "transform" and TYPES[t].scalar == info.scalar:
                if TYPES[t].kind == "vec" and TYPES[t].shape == (3,):
                    options.append(f"{v.name}.p")
                elif TYPES[t].kind == "quat":
                    options.append(f"{v.name}.q")
        return self.consume(options) if options else None

    def convert(self, t: str, s: Scope, depth: int) -> str | None:
        info = TYPES[t]
        if info.kind in ("float", "int", "uint"):
            if self.chance(0.15):  # bit reinterpretation between same-size scalars
                for group in _SAME_SIZE:
                    if t in group:
                        src = self.rng.choice([g for g in group if g != t and g in self.types] or [t])
                        return f"wp.cast({self.expr(src, s, depth)}, {info.spelling})"
            if t == "int32" and self.chance(0.2):
                sized = [v.name for v in s.vars if TYPES.get(v.type) and TYPES[v.type].kind == "vec"]
                sized += [a.name for a in s.arrays]
                if sized:
                    return f"len({self.rng.choice(sized)})"
            if s.ints and info.kind != "float" and self.chance(0.3):
                return f"{info.spelling}({self.rng.choice(s.ints)})" if t != "int32" else self.rng.choice(s.ints)
            src = self.rng.choice([x for x in self.types if not TYPES[x].shape and x != "bool"])
            spelling = f"wp.{t}" if t in ("float32", "int32") and self.chance(0.3) else info.spelling
            return f"{spelling}({self.expr(src, s, depth)})"
        if info.kind == "vec":
            n = info.shape[0]
            if self.chance(0.5):
                parts = ", ".join(self.expr(info.scalar, s, depth) for _ in range(n))
                if info.scalar in ("float32", "float64") and self.chance(0.3):
                    return f"wp.vector({parts}, dtype={TYPES[info.scalar].spelling})"
                return f"{info.spelling}({parts})"
            same = [x for x in self.types if TYPES[x].kind == "vec" and TYPES[x].shape == (n,) and x != t]
            if same:
                return f"{info.spelling}({self.expr(self.rng.choice(same), s, depth)})"
        if t == "mat22f" and self.chance(0.3):
            parts = ", ".join(self.expr("float32", s, depth) for _ in range(4))
            return f"wp.matrix({parts}, shape=(2, 2), dtype=float)"
        if info.kind == "mat" and info.shape[0] == info.shape[1] and t in _ROW.keys():
            row = _ROW[t]
            if row in self.types and self.chance(0.5):
                fn = self.rng.choice(("wp.matrix_from_cols", "wp.matrix_from_rows"))
                return f"{fn}({', '.join(self.expr(row, s, depth) for _ in range(info.shape[0]))})"
            if t == "mat44f" and self.chance(0.5) and "quatf" in self.types:
                return (f"wp.transform_compose({self.expr('vec3f', s, depth)}, {self.expr('quatf', s, depth)}, "
                        f"{self.expr('vec3f', s, depth)})")
        return None
