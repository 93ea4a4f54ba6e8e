"""Random, valid, safe-to-run, race-free and live Warp kernel modules: a pure function of
(seed, GeneratorConfig).

A module is ``import warp as wp``, optional ``@wp.struct`` types, ``@wp.func`` helpers
(with overloads, default arguments and early returns) and one ``@wp.kernel`` launched in
1-4 dimensions. Expressions are type-directed (``synth.gen.expressions``) over builtins whose
signatures come from Warp's registry (``synth.gen.signatures``), drawn as often as real Warp
code uses them (``synth.gen.calibration``); statements and helpers live in ``synth.gen.statements``.

Race-free by construction (one answer per run, whatever order threads run in, as
Csmith and YARPGen guarantee for C). Every array has one role per kernel:

- *input* (``x0``): read anywhere, never written;
- *owned output* (``out1``): each thread stores, updates and reads only its own element
  (the names ``wp.tid()`` unpacks, in order); atomics on it, ``atomic_cas`` and
  ``atomic_exch`` included, also touch only that element, and may use the old value;
- *accumulator* (``acc2``): only updated by atomics of one commutative class
  (add/sub, min, max, and, or or xor), at any element; never read, never plainly stored,
  and the value an atomic returns is not used.

Void helpers store into an owned output at the element the caller passes (its own).
``tests/synth/gen/test_generator.py`` checks this contract over thousands of seeds with the static
checker in ``synth.quality.races``, which knows nothing of how the generator works.

Live: a liveness pass (``synth.gen.prune``) removes every assignment, store, loop and branch
whose effect nothing observes, then parameters, helpers, structs and fields nothing
uses; conditions always read data (``ExprBuilder.cond``).

Safe to run with seeded random inputs (the execution tier's convention, synth/validate/examples.py):
the launch rank is the highest array rank, which is also the number of names ``wp.tid()``
unpacks (1-4); every array of that rank has the launch shape and is indexed by the
thread's own element, or by tid/loop counters wrapped modulo its shape; lower-rank arrays
are only indexed modulo their own shape (any non-empty shape works). Loops have small or
clamped trip counts, ``while`` loops a counter, integer division a divisor >= 1, math
that could leave its domain is guarded, and matrix inverses and decompositions get
well-posed inputs.

Only ``random.Random(seed)`` drives choices and nothing iterates a set or depends on
hashing, so the text is byte-identical across processes and PYTHONHASHSEED values.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass

from synth.gen.config import GeneratorConfig
from synth.gen.expressions import Arr, Scope, Var
from synth.launch import Launch
from synth.gen.prune import prune
from synth.gen.signatures import TYPES
from synth.gen.statements import StatementBuilder, accumulator_classes

# Array element types and how often each is picked (float32 dominates, as in real code).
ARRAY_DTYPES = {"float32": 6.0, "vec3f": 2.0, "int32": 1.5, "vec2f": 0.8, "vec4f": 0.4, "float64": 0.5,
                "mat33f": 0.12, "quatf": 0.12, "uint32": 0.3, "int64": 0.2, "transformf": 0.05,
                "spatial_vectorf": 0.04, "float16": 0.1, "vec3d": 0.15}
_PARAM_NAMES = ("scale", "offset", "gain", "bias", "axis", "rot", "weight", "dt", "eps", "shift")
_FIELD_NAMES = ("mass", "scale", "origin", "count", "rot", "gain", "damping", "frame", "twist", "size")


@dataclass(frozen=True, slots=True)
class GeneratedKernel:
    seed: int
    kernel_name: str
    source: str
    helper_names: tuple[str, ...]
    struct_names: tuple[str, ...]
    launch: Launch | None = None  # None: the execution tier's default convention (synth.validate.examples)
    family: str = "plain"


class _Builder(StatementBuilder):
    def size_class(self) -> tuple[int, int, int]:
        """(top-level statements, helpers, max arrays): mostly medium, a small tail of
        tiny kernels and a tail of large ones (LOC > 100), keeping codegen cost moderate."""
        cfg, r = self.cfg, self.rng.random()
        if r < cfg.small_fraction:
            return self.rng.randint(1, 2), 0, min(2, cfg.max_arrays)
        if r > 1.0 - cfg.large_fraction:
            n = self.rng.randint(cfg.max_statements, cfg.max_statements * cfg.large_factor)
            return n, self.rng.randint(min(2, cfg.max_helpers), cfg.max_helpers + 2), cfg.max_arrays + 1
        return self.rng.randint(cfg.min_statements, cfg.max_statements), self.rng.randint(0, cfg.max_helpers), \
            cfg.max_arrays

    def structs_source(self) -> list[str]:
        cfg = self.cfg
        if not cfg.use_structs or not self.chance(0.3):
            return []
        out: list[str] = []
        value_types = [t for t in self.types if t != "bool"]
        for k in reversed(range(self.rng.randint(1, 2))):  # the nested struct is defined first
            name = f"Struct{k}"
            names = self.rng.sample(_FIELD_NAMES, self.rng.randint(2, 4))
            fields = [(f, self.rng.choices(value_types, [TYPES[t].weight for t in value_types])[0]) for f in names]
            if f"Struct{k + 1}" in self.structs and self.chance(0.7):
                fields.append(("inner", f"Struct{k + 1}"))
            self.structs[name] = fields
            out += ["@wp.struct", f"class {name}:", *[f"    {f}: {self.spell(t)}" for f, t in fields], "", ""]
        return out

    def arrays(self, n: int, dims: int, own: str, scope: Scope) -> list[str]:
        dtypes = [t for t in ARRAY_DTYPES if t in self.types]
        weights = [ARRAY_DTYPES[t] for t in dtypes]
        params = []
        for k in range(n):  # the last array has the launch rank and is an owned output
            dtype = self.rng.choices(dtypes, weights)[0]
            role = "owned" if k == n - 1 else "input" if not self.chance(0.25) else "accum"
            ndim = dims if k == n - 1 or self.chance(0.92) else self.rng.randint(1, dims)
            if role == "accum" and ndim == dims and self.chance(0.4):
                role = "owned"  # a second per-thread output
            if self.chance(0.1) and dtype == "float32" and role == "input":
                ndim = 1  # sample_cdf and friends read 1-D float arrays
            ops: tuple[str, ...] = ()
            if role == "accum":
                classes = accumulator_classes(dtype)
                ops = classes[0] if self.chance(0.85) else self.rng.choice(classes)
            name = f"x{k}" if role == "input" else f"out{k}" if role == "owned" else f"acc{k}"
            scope.arrays.append(Arr(name, dtype, ndim, role, own if ndim == dims else None, ops))
            sp = self.spell(dtype)
            if ndim == 1:
                params.append(f"{name}: wp.array(dtype={sp})")
            elif self.chance(0.5):
                params.append(f"{name}: wp.array{ndim}d(dtype={sp})")
            else:
                params.append(f"{name}: wp.array(dtype={sp}, ndim={ndim})")
        return params

    def value_params(self, scope: Scope) -> list[str]:
        params = []
        names = self.rng.sample(_PARAM_NAMES, self.rng.randint(0, 2))
        for name in names:
            t = self.rng.choice(["float32", "float32", "int32", "vec3f", "float64", "quatf", "mat33f"])
            if t not in self.types:
                t = "float32"
            params.append(f"{name}: {self.spell(t)}")
            scope.vars.append(Var(name, t, mutable=False))
            self.unread[name] = None
        if self.structs and self.chance(0.8):
            params.append("params: Struct0")
            self.add_struct_fields("params", "Struct0", scope, mutable=False)
            self.unread["params"] = None
        return params

    def loads(self, scope: Scope) -> list[str]:
        """Most kernels start by reading their inputs into locals (``p = x[tid]``)."""
        lines = []
        for a in [a for a in scope.arrays if a.role == "input"]:
            if self.chance(0.7):
                name, value = self.define(scope, a.dtype, f"{a.name}[{self.index(a, scope)}]")
                lines.append(f"    {name} = {value}")
        return lines

    def kernel_text(self, kernel_name: str, launch_weights: tuple[float, ...] = (0.55, 0.25, 0.14, 0.06),
                    random_chance: float = 0.25, seed_param: bool = True) -> tuple[str, Scope, list[str]]:
        """The module before pruning, the kernel's top-level scope and its tid names (the
        lang family builds on the scope; its own draw weights are the arguments)."""
        cfg = self.cfg
        n_statements, n_helpers, max_arrays = self.size_class()
        out: list[str] = ["import warp as wp", "", ""]
        out += self.structs_source()
        for k in range(n_helpers):
            out += self.helper_source(k)
        # The launch rank is the highest array rank (the execution tier launches that way).
        dims = min(self.rng.choices((1, 2, 3, 4), launch_weights)[0], cfg.max_launch_dims, cfg.max_array_dims)
        tids = ["tid"] if dims == 1 else ["i", "j", "k", "l"][:dims]
        scope = Scope(ints=list(tids))
        n_arrays = self.rng.randint(min(cfg.min_arrays, max_arrays), max_arrays)
        params = self.arrays(n_arrays, dims, ", ".join(tids), scope)
        params += self.value_params(scope)
        body = [f"    {', '.join(tids)} = wp.tid()"]
        if cfg.use_random and "random" in cfg.builtin_groups and self.chance(random_chance):
            scope.rng = "state"
            if seed_param and self.chance(0.5):
                params.append("seed: int")
                body.append(f"    state = wp.rand_init(seed, {tids[0]})")
            else:
                body.append(f"    state = wp.rand_init({self.rng.randint(1, 99999)}, {tids[-1]})")
        body += self.loads(scope)
        body += self.block(scope, 1, 0, n_statements, top=True)
        body += self.final_store(scope)
        out += ["@wp.kernel", f"def {kernel_name}({', '.join(params)}):", *body, ""]
        return "\n".join(out), scope, tids

    def module(self, seed: int) -> GeneratedKernel:
        kernel_name = f"kernel_{seed}"
        source = prune(self.kernel_text(kernel_name)[0], kernel_name)
        helper_names = tuple(h for h in dict.fromkeys(h[0] for h in self.helpers + self.void_helpers)
                             if f"def {h}(" in source)
        struct_names = tuple(s for s in self.structs if f"class {s}:" in source)
        return GeneratedKernel(seed, kernel_name, source, helper_names, struct_names)


# Kernel families besides the plain one: name -> module with ``generate(seed, cfg)``.
FAMILY_MODULES = {
    "tile": "synth.gen.families.tiles",
    "geometry": "synth.gen.families.geometry",
    "volume": "synth.gen.families.volumes",
    "lang": "synth.gen.families.lang",
}


def pick_family(seed: int, cfg: GeneratorConfig) -> str:
    """The family of ``seed``'s kernel, drawn from ``cfg.families`` by its own stream (a
    string seed is hashed with SHA-512, independent of PYTHONHASHSEED), so the plain
    builder's ``Random(seed)`` draws exactly what it would without families."""
    names = [n for n in sorted(cfg.families) if cfg.families[n] > 0]
    if len(names) == 1:
        return names[0]
    return random.Random(f"jitsynth-family/{seed}").choices(names, [cfg.families[n] for n in names])[0]


def generate(seed: int, cfg: GeneratorConfig | None = None, family: str | None = None) -> GeneratedKernel:
    """The kernel module for ``seed``; the same (seed, cfg) always gives the same text.
    ``family`` overrides the draw (tests and the per-family report)."""
    cfg = cfg or GeneratorConfig()
    family = family or pick_family(seed, cfg)
    if family == "plain":
        return _Builder(seed, cfg).module(seed)
    return importlib.import_module(FAMILY_MODULES[family]).generate(seed, cfg)
