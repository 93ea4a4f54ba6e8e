"""The geometry kernel family: kernels that query meshes, BVHs and hash grids through their
``wp.uint64`` ids, as simulation and rendering code does (closest-point SDFs, ray casting,
AABB/sphere overlap counting, SPH-style neighbour search, mesh attribute evaluation,
triangle-triangle and edge-edge tests, thread-block (tile) BVH and mesh traversals).

A kernel is one *shape* (``geometry_mesh``, ``geometry_pairs``, ``geometry_spatial``) drawn per seed, filled in
with random choices of query form (struct-returning and the older out-argument overloads,
``while ..._next(query, i)`` and ``for i in query`` loops, group roots), features computed
from the results and how they are stored. ``KernelText`` collects parameters, body lines
and the launch; ``finish`` stores every computed value into an owned output, so every
query feeds a result (the liveness contract), and ``synth.gen.prune`` tidies the text.

Race-free and order-independent by construction: each thread stores only its own element;
query loops fold candidates with counts, integer sums, min and max (never a float sum, whose
value would depend on the order a BVH or grid returns candidates in); accumulators take one
commutative atomic class. The objects the execution tier builds for the ids are defined in
``geometry_objects`` (re-exported here as ``OBJECT_KINDS``, as ``synth.validate.objects`` expects).
"""

from __future__ import annotations

import importlib

from synth.gen.config import GeneratorConfig
from synth.gen.expressions import ExprBuilder, Scope, Var
from synth.gen.families.geometry_objects import OBJECT_KINDS  # noqa: F401 - synth.validate.objects reads it here
from synth.gen.generator import GeneratedKernel
from synth.launch import Launch
from synth.gen.prune import prune

_SPELL = {"float32": ("float", "wp.float32"), "vec3f": ("wp.vec3", "wp.vec3f"), "int32": ("int", "wp.int32"),
          "vec3d": ("wp.vec3d",), "transformf": ("wp.transform",)}
# Kernel shapes: (module, function, weight). Weights favour the shapes real code has most.
_SHAPES = (
    ("geometry_mesh", "sdf", 2.0), ("geometry_mesh", "raycast", 2.0), ("geometry_mesh", "overlap", 1.5),
    ("geometry_mesh", "attributes", 1.0), ("geometry_pairs", "tri_tri", 1.0), ("geometry_pairs", "edges", 0.7),
    ("geometry_spatial", "bvh", 1.6), ("geometry_spatial", "neighbours", 1.6), ("geometry_spatial", "tiled", 1.2),
)


class KernelText:
    """A geometry kernel under construction: parameters, body, helpers, launch and the
    values whose stores make the kernel's results."""

    def __init__(self, seed: int, cfg: GeneratorConfig) -> None:
        self.eb = ExprBuilder(seed, cfg)  # its Random(seed) is the only source of choices
        self.rng = self.eb.rng
        self.params: list[str] = []
        self.objects: list[tuple[str, str]] = []
        self.shapes: list[tuple[str, tuple[int, ...]]] = []
        self.derived: list[tuple[str, tuple[str, str]]] = []  # array -> (object param, data field)
        self.body: list[str] = []
        self.funcs: list[list[str]] = []
        self.helper_names: list[str] = []
        self.values: list[tuple[str, str]] = []  # (local, type) every one of which reaches an output
        self.out_names: list[str] = ["out", "result"]
        self.dim: tuple[int, ...] = (8,)
        self.block_dim: int | None = None
        self.own = "tid"
        self.taken: set[str] = set()

    # -- small utilities ----------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, options: tuple | list):
        return options[self.rng.randrange(len(options))]

    def lit(self, lo: float, hi: float, digits: int = 2) -> str:
        text = repr(round(self.rng.uniform(lo, hi), digits))
        return text if text not in ("0.0", "-0.0") else "0.5"

    def vlit(self, lo: float, hi: float, digits: int = 2) -> str:
        if self.chance(0.15):
            return f"wp.vec3({self.lit(lo, hi, digits)})"
        return f"wp.vec3({', '.join(self.lit(lo, hi, digits) for _ in range(3))})"

    def spell(self, t: str) -> str:
        return self.pick(_SPELL[t])

    def name(self, *options: str) -> str:
        """A fresh name (the first unused option, else the option with a number)."""
        for n in options:
            if n not in self.taken:
                self.taken.add(n)
                return n
        k = 1
        while f"{options[0]}{k}" in self.taken:
            k += 1
        self.taken.add(f"{options[0]}{k}")
        return f"{options[0]}{k}"

    def emit(self, depth: int, text: str) -> None:
        self.body.append("    " * depth + text)

    # -- parameters -------------------------------------------------------------------
    def obj(self, kind: str, *names: str) -> str:
        name = self.name(*names)
        self.params.append(f"{name}: wp.uint64")
        self.objects.append((name, kind))
        return name

    def grouped(self, name: str) -> None:
        """The mesh behind ``name`` has per-face groups (a kernel reads a group root)."""
        self.objects = [(n, "mesh_grouped" if n == name and kind == "mesh" else kind) for n, kind in self.objects]

    def array(self, dtype: str, shape: tuple[int, ...], *names: str) -> str:
        name = self.name(*names)
        sp = self.spell(dtype)
        ann = f"wp.array(dtype={sp})" if len(shape) == 1 else \
            self.pick((f"wp.array{len(shape)}d(dtype={sp})", f"wp.array(dtype={sp}, ndim={len(shape)})"))
        self.params.append(f"{name}: {ann}")
        self.shapes.append((name, shape))
        return name

    def value_param(self, t: str, *names: str) -> str:
        name = self.name(*names)
        self.params.append(f"{name}: {self.spell(t)}")
        return name

    def tid(self, dims: int) -> None:
        names = ["tid"] if dims == 1 else ["i", "j", "k"][:dims]
        self.taken.update(names)
        self.own = ", ".join(names)
        self.emit(1, f"{self.own} = wp.tid()")

    def func(self, name: str, lines: list[str]) -> str:
        if name not in self.helper_names:
            self.helper_names.append(name)
            self.funcs.append(["@wp.func", *lines, "", ""])
        return name

    def result(self, name: str, t: str) -> None:
        self.values.append((name, t))

    # -- the stores -------------------------------------------------------------------
    def as_type(self, value: str, t: str, target: str) -> str:
        if t == target:
            return value
        if target == "float32":
            if t == "vec3f":
                return self.pick((f"wp.length({value})", f"{value}[{self.rng.randrange(3)}]",
                                  f"wp.dot({value}, {self.vlit(-1.0, 1.0)})", f"{value}.{self.pick('xyz')}"))
            if t == "int32":
                return f"float({value})"
            return f"wp.where({value}, {self.lit(0.5, 2.0)}, {self.lit(-1.0, 0.0)})"
        if target == "vec3f":
            if t == "float32":
                return self.pick((f"{self.vlit(-1.0, 1.0)} * {value}", f"wp.vec3({value})"))
            if t == "int32":
                return f"wp.vec3(float({value}))"
            return f"wp.where({value}, {self.vlit(0.0, 1.0)}, {self.vlit(-1.0, 0.0)})"
        return self.pick((f"wp.where({value}, 1, 0)", f"int({value})"))  # bool -> int

    def combine(self, terms: list[str], target: str) -> str:
        text = terms[0]
        for term in terms[1:]:
            if target == "int32":
                text = self.pick((f"{text} + {term}", f"wp.max({text}, {term})", f"{text} * 2 + {term}"))
            elif target == "float32" and self.chance(0.4):
                text = f"{text} {self.pick('+-')} {self.lit(0.1, 2.0)} * {term}"
            else:
                text = f"{text} {self.pick('+-')} {term}"
        return text

    def finish(self) -> None:
        """Store every value: one to three owned outputs, each a combination of a share
        of the values (so nothing computed is dead), sometimes with a term derived from
        them by the plain generator's expression builder."""
        values = list(self.values)
        self.rng.shuffle(values)
        groups: list[list[tuple[str, str]]] = [[v] for v in values[:self.rng.randint(1, min(3, len(values)))]]
        for v in values[len(groups):]:
            self.pick(groups).append(v)
        for group in groups:
            types = [t for _, t in group]
            if all(t in ("int32", "bool") for t in types) and self.chance(0.8):
                target = "int32"
            elif "vec3f" in types and self.chance(0.5):
                target = "vec3f"
            else:
                target = "float32"
            expr = self.combine([self.as_type(v, t, target) for v, t in group], target)
            if target != "int32" and self.chance(0.25):
                scope = Scope(vars=[Var(v, t, mutable=False) for v, t in group if t in ("float32", "vec3f")])
                if scope.vars:
                    expr = f"{expr} + {self.eb.expr(target, scope, depth=1)}"
            first = group[0][0]
            names = ([f"{first}_out"] if first.isidentifier() and len(first) > 2 else []) + self.out_names
            out = self.array(target, self.dim, *names)
            self.emit(1, f"{out}[{self.own}] = {expr}")

    def kernel(self, seed: int, family: str = "geometry") -> GeneratedKernel:
        name = f"kernel_{seed}"
        lines = ["import warp as wp", "", ""]
        for f in self.funcs:
            lines += f
        lines += ["@wp.kernel", f"def {name}({', '.join(self.params)}):", *self.body, ""]
        source = prune("\n".join(lines), name)
        helpers = tuple(h for h in self.helper_names if f"def {h}(" in source)
        launch = Launch(self.dim, block_dim=self.block_dim, shapes=tuple(self.shapes), objects=tuple(self.objects),
                        derived=tuple(self.derived))
        return GeneratedKernel(seed, name, source, helpers, (), launch, family)


def generate(seed: int, cfg: GeneratorConfig) -> GeneratedKernel:
    k = KernelText(seed, cfg)
    module, shape, _ = k.rng.choices(_SHAPES, [w for _, _, w in _SHAPES])[0]
    getattr(importlib.import_module(f"synth.gen.families.{module}"), shape)(k)
    if k.values:
        k.finish()
    return k.kernel(seed)
