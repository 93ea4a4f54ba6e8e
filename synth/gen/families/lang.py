"""The ``lang`` kernel family: the parts of Warp's language that plain kernels never show.

A lang kernel is a plain kernel (the plain builder's structs, helpers and body, already
pruned) with one to three constructs spliced on top (``synth.gen.families.lang_constructs``):

- ``constants``: module ``wp.constant`` values used in the kernel and in helpers, and
  ``wp.static(...)`` (a loop unrolled over a static range, arithmetic on constants, a
  function picked at codegen time);
- ``custom_grad``: a ``@wp.func`` with a ``@wp.func_grad`` adjoint (``wp.adjoint[x] += ...``)
  (no ``@wp.func_replay``: see ``Constructs.c_custom_grad``), so the backward kernel calls
  the custom adjoint;
- ``generic``: a ``@wp.func`` over ``typing.Any`` called with two types (two overloads);
- ``struct_arrays``: a ``@wp.struct`` holding arrays (an input, an owned output, an
  accumulator) passed to the kernel and to a helper;
- ``slices``: views (``grid[i]``, ``grid[:, j]``) and slices (``x[lo:]``, ``x[::2]``);
- ``nonsquare``: 2x3, 3x2, 2x4 ... matrices (``wp.types.matrix`` aliases, ``wp.outer`` of
  vectors of different lengths, ``matrix_from_rows``, products and transposes);
- ``half``: ``wp.float16`` and ``wp.bfloat16`` arithmetic and float16 arrays;
- ``lower_bound``: binary search in an input array (Warp's "Other" group), feeding a histogram.

Why splice after pruning instead of generating everything in one pass: the pruner
(``synth.gen.prune``) does not know that a ``@wp.func_grad`` function is used through its
decorator, nor that a store into a struct's array field is an effect, and would delete
both. The spliced code is live by construction instead: every local it defines is read,
every parameter, field, constant and helper it adds is used, and everything it computes
flows into an owned output at the thread's own element (the race contract of
``synth.gen.generator``). It reads the plain body's surviving top-level values, so the two
parts are one data flow.

Only ``random.Random(seed)`` (the plain builder's stream) drives choices.
"""

from __future__ import annotations

import ast
import random
import re

from synth.gen.config import GeneratorConfig
from synth.validate.examples import EXTENT
from synth.gen.expressions import Scope, Var
from synth.gen.families.lang_constructs import CONSTRUCTS, Constructs, Piece
from synth.gen.generator import GeneratedKernel, _Builder
from synth.launch import Launch
from synth.gen.prune import prune
from synth.quality.checks import check_kernel
from synth.gen.signatures import TYPES

_SINKS = ("result", "energy", "response", "value", "loss")
_ATTEMPTS = 6  # plain bodies drawn before settling for one


class _LangBuilder(Constructs, _Builder):
    def plain_part(self, kernel_name: str) -> tuple[str, Scope, list[str]]:
        """The plain builder's module (pruned), its kernel's top-level scope and tid names,
        drawn with the lang family's own launch-rank and RNG weights."""
        text, scope, tids = self.kernel_text(kernel_name, (0.5, 0.3, 0.14, 0.06), random_chance=0.2, seed_param=False)
        return prune(text, kernel_name), scope, tids

    def survivors(self, source: str, kernel_name: str, scope: Scope) -> Scope:
        """What the spliced code may read: the pruned kernel's array parameters and the
        top-level locals and value parameters still defined (never struct fields, which
        the pruner may have dropped, nor helpers, which it may have deleted)."""
        tree = ast.parse(source)
        kernel = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == kernel_name)
        names = {a.arg for a in kernel.args.args}
        for stmt in kernel.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else \
                [stmt.target] if isinstance(stmt, (ast.AugAssign, ast.AnnAssign)) else []
            for t in targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
        live = Scope(ints=list(scope.ints))
        live.vars = [Var(v.name, v.type, mutable=False) for v in scope.vars
                     if v.name in names and v.type in TYPES and v.type != "bool"]
        live.arrays = [a for a in scope.arrays if a.name in names]
        live.rng = scope.rng if scope.rng in names else None
        # The plain helpers and structs may be gone or trimmed: expressions use neither.
        self.plain_helpers, self.plain_structs = self.helpers + self.void_helpers, list(self.structs)
        self.helpers, self.void_helpers, self.structs = [], [], {}
        self.called = set()
        return live

    def module(self, seed: int, plain: str, scope: Scope, tids: list[str]) -> GeneratedKernel:
        """The lang module: ``plain`` (this builder's pruned plain part) and constructs."""
        kernel_name = f"kernel_{seed}"
        live = self.survivors(plain, kernel_name, scope)
        dims = len(tids)
        self.own = ", ".join(tids)
        self.tids = tids
        self.live = live
        allowed = [c for c in CONSTRUCTS if (c != "half" or self.cfg.use_wide_scalars)
                   and (c != "nonsquare" or self.cfg.use_matrices)]  # the type knobs hold here too
        picked = self.rng.sample(allowed, self.rng.choices((1, 2, 3), (0.35, 0.45, 0.2))[0])
        pieces = [getattr(self, "c_" + name)() for name in CONSTRUCTS if name in picked]
        source = self.splice(plain, kernel_name, pieces, dims)
        helper_names = tuple(h for h in dict.fromkeys(h[0] for h in self.plain_helpers)
                             if f"def {h}(" in plain) + tuple(n for p in pieces for n in p.helpers)
        struct_names = tuple(s for s in self.plain_structs if f"class {s}:" in plain) + \
            tuple(n for p in pieces for n in p.structs)
        shapes = tuple(sh for p in pieces for sh in p.shapes)
        ordered = tuple(a for p in pieces for a in p.sorted)
        launch = Launch((EXTENT[dims],) * dims, shapes=shapes, sorted=ordered) if shapes else None
        return GeneratedKernel(seed, kernel_name, source, helper_names, struct_names, launch, "lang")

    def splice(self, plain: str, kernel_name: str, pieces: list[Piece], dims: int) -> str:
        head, kernel = plain.split("@wp.kernel\n", 1)
        lines = head.rstrip("\n").split("\n")
        assert lines[0] == "import warp as wp"
        imports = ["import warp as wp"]
        if any(p.needs_any for p in pieces):
            imports = ["from typing import Any", "", "import warp as wp"]
        module_lines = [line for p in pieces for line in p.module]
        out = imports + ["", ""]
        if module_lines:
            out += module_lines + ["", ""]
        rest = "\n".join(lines[1:]).strip("\n")
        if rest:
            out += [rest, "", ""]
        for p in pieces:
            for block in p.funcs:
                out += [*block, "", ""]
        header, body = kernel.split("\n", 1)
        match = re.fullmatch(rf"def {kernel_name}\((.*)\):", header)
        assert match is not None, header
        params = [match.group(1)] if match.group(1) else []
        params += [prm for p in pieces for prm in p.params]
        terms = [t for p in pieces for t in p.terms]
        body_lines = body.rstrip("\n").split("\n")
        body_lines += [line for p in pieces for line in p.body]
        body_lines += self.sink(terms, params, dims)
        out += ["@wp.kernel", f"def {kernel_name}({', '.join(params)}):", *body_lines, ""]
        return "\n".join(out)

    def sink(self, terms: list[str], params: list[str], dims: int) -> list[str]:
        """Everything the constructs computed reaches an owned output at the thread's own
        element: a float output of the plain body (``+=``) or one of its own."""
        if not terms:
            return []
        value = " + ".join(terms)
        owned = [a for a in self.live.arrays if a.role == "owned" and a.own == self.own and a.dtype == "float32"]
        if owned and self.chance(0.3):
            return [f"    {owned[-1].name}[{self.own}] += {value}"]
        name = self.rng.choice(_SINKS)
        params.append(f"{name}: {self.array_type(name, 'float', dims)}")
        return [f"    {name}[{self.own}] = {value}"]


def generate(seed: int, cfg: GeneratorConfig) -> GeneratedKernel:
    kernel_name = f"kernel_{seed}"
    builder = _LangBuilder(seed, cfg)
    plain, scope, tids = builder.plain_part(kernel_name)
    for attempt in range(1, _ATTEMPTS):
        # The plain builder leaves a parameter of an overloaded helper unread in a few
        # percent of modules (7% of 300 plain seeds): draw that body again, from a
        # derived stream (a string seed hashes with SHA-512, not PYTHONHASHSEED).
        if not check_kernel(plain, kernel_name).defects:
            break
        builder = _LangBuilder(seed, cfg)
        builder.rng = random.Random(f"jitsynth-lang/{seed}/{attempt}")
        plain, scope, tids = builder.plain_part(kernel_name)
    return builder.module(seed, plain, scope, tids)

