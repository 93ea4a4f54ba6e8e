"""The variants kernel source: seeded mutations of real (ingested) Warp kernels.

``mutate(seed, corpus, cfg, check)`` is the pure step: the seed picks a parent kernel of the
corpus and a number of mutations, then operators (``synth.variants.mutations``, weighted by
``VariantConfig.operators``) are tried one after another on the current text. A result is
accepted only when it parses, its canonical key differs from the current text's and from
every parent's (a variant equal to a real kernel is no new sample), it has no more quality
defects of any kind than the parent (``synth.quality.checks``: race-free roles, live code) and
``check`` passes (in workers: Warp's CPU and CUDA codegen); otherwise it is rejected with its
reason and the next operator is tried. Only ``random.Random(seed)`` drives choices and
candidates come in corpus and AST order, so the text is the same in every process and under
every PYTHONHASHSEED (given the same Warp for the codegen check).

``VariantSource`` is what pool workers hold (it arrives pickled with the worker initialiser,
so the corpus is loaded once per worker): it turns a seed into the kernel the worker builds
a record from, plus the record's provenance (``metadata.origin = "variant"``, the parent's
``metadata.source`` and ``metadata.variant``: parent id, mutations applied, rejections).
"""

from __future__ import annotations

import ast
import functools
import glob
import itertools
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import blake3
import msgspec

from synth.variants import blocks, mutations, outline, restructure, retype, rewidth, splicing
from synth.canonical import canonical_key
from synth.gen.config import VARIANTS_NAME, VARIANTS_VERSION, VariantConfig
from synth.extract import ExtractionError, extract_sources
from synth.launch import Launch
from synth.quality.modinfo import decorator_name
from synth.variants.mutations import FRESH, ONCE, Site, functions, richness
from synth.quality.checks import DEFECTS, KernelQuality
from synth.quality.realism import safe_check
from synth.record import GeneratorInfo, SourceInfo, VariantInfo
from synth.variants.restructure import closed_expressions

# Operator name -> operator, in the order VariantConfig.operators lists them (draws follow it).
OPERATORS: dict[str, Callable[[ast.Module, random.Random, Site], str | None]] = {
    "constant": mutations.constant, "scale": mutations.scale, "binop": mutations.binop,
    "compare": mutations.compare, "builtin": mutations.builtin, "loop_bound": mutations.loop_bound,
    "dtype": mutations.dtype, "inline_local": restructure.inline_local, "extract_local": restructure.extract_local,
    "inline_helper": restructure.inline_helper, "commute": mutations.commute, "splice": restructure.splice,
    "specialise": restructure.specialise,
    "delete_statement": blocks.delete_statement, "outline": outline.outline, "splice_statement": splicing.splice_statement,
    "vector_width": rewidth.vector_width, "array_rank": retype.array_rank, "launch_dim": retype.launch_dim,
}


class NoVariant(Exception):
    """No mutation of the seed's parent was accepted: the seed yields no record."""


@dataclass(frozen=True, slots=True)
class Parent:
    """One real kernel of the corpus, as its record has it (source normalised, see ``normalise``)."""

    id: str
    kernel_name: str
    source: str
    block_dim: int | None = None  # tile kernels: the launch's block size (CUDA codegen needs it)
    provenance: dict = field(default_factory=dict)  # the record's metadata.source
    backward: bool = True  # False: built with enable_backward=False (its record has no adjoint)


@dataclass(frozen=True, slots=True)
class Variant:
    seed: int
    parent: Parent
    source: str
    mutations: tuple[str, ...]  # what each accepted mutation changed, in order
    rejected: tuple[tuple[str, str], ...]  # (operator, reason) of every rejected try, in order


def normalise(source: str) -> str:
    """A parent as the mutator starts from it: ``ast.unparse`` text (every variant is written
    that way, so formatting never makes a difference) without ``module="unique"`` in kernel
    decorators (a variant is its own module anyway, and Warp would hide such a kernel from the
    module it is built in)."""
    tree = ast.parse(source)
    for fn in tree.body:
        for dec in getattr(fn, "decorator_list", []):
            if isinstance(dec, ast.Call):
                dec.keywords = [k for k in dec.keywords if not (k.arg == "module" and isinstance(k.value, ast.Constant))]
    return ast.unparse(tree) + "\n"


def parent_from_record(record: dict) -> Parent | None:
    """The corpus entry of a record (a dict as readers give it); None when its source is unusable."""
    try:
        source = normalise(record["python_source"])
    except (SyntaxError, KeyError, TypeError, ValueError):
        return None
    provenance = dict(record.get("metadata", {}).get("source") or {})
    backward = bool((record.get("cpu") or {}).get("backward", "x"))
    return Parent(record["id"], record["kernel_name"], source, provenance.get("block_dim"), provenance, backward)


def corpus_hash(parents: list[Parent]) -> str:
    return blake3.blake3("\n".join(p.id for p in parents).encode()).hexdigest(length=8)


def config_hash(parents: list[Parent], cfg: VariantConfig) -> str:
    """The run's config hash: source version, knobs and the exact parent set (a different
    corpus is a different dataset: it refuses to resume into this one)."""
    payload = f"{VARIANTS_NAME}/{VARIANTS_VERSION}/{corpus_hash(parents)}/{cfg.to_json()}"
    return blake3.blake3(payload.encode()).hexdigest(length=8)


def defect_counts(q: KernelQuality | None) -> tuple[int, ...]:
    """How many of each of ``synth.quality.checks.DEFECTS`` a kernel has (in that order); a kernel the
    checker cannot read has "infinitely many", so nothing counts as no worse than it."""
    if q is None:
        return (1 << 30,) * len(DEFECTS)
    return (len(q.dead_assignments), len(q.unused_kernel_params), len(q.uncalled_helpers), len(q.unused_structs),
            len(q.unused_struct_fields), len(q.constant_conditions), len(q.race_violations),
            len(q.unused_helper_params))


def mutate(seed: int, parents: list[Parent], cfg: VariantConfig, check: Callable[[Parent, str], str | None],
           parent_keys: frozenset[str] = frozenset(), site: Site | None = None,
           usable: Callable[[Parent], bool] = lambda p: True, weights: list[int] | None = None) -> Variant:
    """The variant of ``seed`` (see the module docstring); raises ``NoVariant``.

    ``check(parent, source)`` returns None when the text is acceptable, else the reason (the
    worker's Warp codegen); ``usable(parent)`` says whether a parent builds on its own.
    ``parent_keys`` (canonical keys of the corpus) and ``site`` (its splice index) are derived
    and ``weights`` (``parent_weights``) are derived from ``parents``; callers pass them to avoid
    recomputing them per seed."""
    if not parents:
        raise NoVariant("empty parent corpus")
    rng = random.Random(seed)
    keys = parent_keys or frozenset(canonical_key(p.source) for p in parents)
    site = site if site is not None else Site()
    cum = list(itertools.accumulate(weights if weights is not None else parent_weights(parents)))
    wanted = rng.randint(cfg.min_mutations, cfg.max_mutations)
    rejected: list[tuple[str, str]] = []
    unusable = 0
    for _ in range(cfg.parent_tries):
        # A parent that does not build alone, or that no operator could change, makes way for
        # the next draw (its rejections stay in the list: they are part of the variant's story).
        parent = rng.choices(parents, cum_weights=cum)[0]
        if not usable(parent):
            unusable += 1
            continue
        text, applied = _mutations(parent, wanted, rng, cfg, check, keys, site, rejected)
        if applied:
            return Variant(seed, parent, text, tuple(applied), tuple(rejected))
    tried = ", ".join(f"{op}: {why}" for op, why in rejected[-4:])
    raise NoVariant(f"unchanged: no mutation accepted for {cfg.parent_tries} drawn parents "
                    f"({unusable} not buildable alone){'; last: ' + tried if tried else ''}")


def parent_weights(parents: list[Parent]) -> list[int]:
    """Draw weights: ``synth.variants.mutations.richness`` (a parent with no place to edit but its precision
    is not drawn: it could only give the same one or two variants again), all 1 if none has any."""
    weights = [richness(p.source) for p in parents]
    return weights if any(weights) else [1] * len(parents)


def _mutations(parent: Parent, wanted: int, rng: random.Random, cfg: VariantConfig,
               check: Callable[[Parent, str], str | None], keys: frozenset[str], site: Site,
               rejected: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """Up to ``wanted`` accepted mutations of ``parent`` in ``cfg.max_attempts`` tries: (text, applied).

    An operator with no site in the current text is not drawn again until the text changes
    (and costs no try): small kernels have few places to edit."""
    names = [n for n in OPERATORS if cfg.operators.get(n, 0.0) > 0]
    text, key = parent.source, canonical_key(parent.source)
    defects = defect_counts(safe_check(text, parent.kernel_name, quiet=True))
    # a real float16 parent that has a hazard compiles as it is: its variants may keep it
    inherited = mutations.half_hazards(ast.parse(parent.source))
    applied: list[str] = []
    barren: list[str] = []
    tries = 0
    while tries < cfg.max_attempts:
        # Discrete edits alone (operator swaps, inlining, precision) give a small kernel only a
        # handful of distinct variants; with fresh_literal, a variant also gets a new literal
        # (constant or scale) when its kernel has a place for one.
        fresh = cfg.fresh_literal and not any(a.split(":", 1)[0] in FRESH for a in applied)
        if len(applied) >= wanted and not fresh:
            break
        live = [n for n in names if n not in barren and (len(applied) < wanted or n in FRESH)]
        if not live:
            break
        op = rng.choices(live, [cfg.operators[n] for n in live])[0]
        tree = ast.parse(text)
        try:
            what = OPERATORS[op](tree, rng, site)
        except (ValueError, TypeError, AttributeError, IndexError, RecursionError) as exc:
            # an operator meeting a construct it does not know: a rejection, never the seed's end
            what, reason = None, f"operator: {type(exc).__name__}"
        else:
            reason = "no site"
        if what is None:
            rejected.append((op, reason))
            barren.append(op)
            continue
        tries += 1
        candidate = ast.unparse(tree) + "\n"
        reason, new_key = _judge(candidate, parent, key, keys, defects, inherited, check)
        if reason is not None:
            rejected.append((op, reason))
            continue
        text, key = candidate, new_key
        applied.append(what)
        barren[:] = [n for n in barren if n in ONCE]
        if op in ONCE:  # a second precision change would mostly undo the first
            barren.append(op)
    return text, applied


def _judge(candidate: str, parent: Parent, key: str, keys: frozenset[str], defects: tuple[int, ...],
           inherited: frozenset[str], check: Callable[[Parent, str], str | None]) -> tuple[str | None, str]:
    """(None when ``candidate`` is accepted, else why not (a short category first), its canonical key)."""
    try:
        new_key = canonical_key(candidate)
    except (SyntaxError, ValueError, RecursionError):
        return "syntax", ""
    if new_key == key:
        return "unchanged", new_key
    if new_key in keys:
        return "equals a parent", new_key
    brought = mutations.half_hazards(ast.parse(candidate)) - inherited
    if brought:
        return f"compile: {min(brought)}", new_key
    got = defect_counts(safe_check(candidate, parent.kernel_name, quiet=True))
    worse = [name for name, old, new in zip(DEFECTS, defects, got, strict=True) if new > old]
    if worse:
        return f"quality: {worse[0]}", new_key
    return check(parent, candidate), new_key


def helper_and_struct_names(source: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(``@wp.func`` names, ``@wp.struct`` names) a module defines: Warp suffixes them with hashes."""
    tree = ast.parse(source)
    helpers = tuple(dict.fromkeys(f.name for f in functions(tree)
                                  if any(decorator_name(d) == "func" for d in f.decorator_list)))
    structs = tuple(n.name for n in tree.body if isinstance(n, ast.ClassDef)
                    and any(decorator_name(d) == "struct" for d in n.decorator_list))
    return helpers, structs


def name_clashes(source: str) -> list[str]:
    """Helpers and structs a record's generated code cannot hold: a class defined twice, or a
    ``@wp.func``/``@wp.struct`` named like a Warp builtin (records normalise Warp's suffixed
    names away, so ``add_0`` becomes ``add``, ambiguous with the builtin to clang and NVRTC)."""
    import warp as wp

    helpers, structs = helper_and_struct_names(source)
    tree = ast.parse(source)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    twice = [c for i, c in enumerate(classes) if c in classes[:i]]
    return twice + [n for n in (*helpers, *structs) if hasattr(wp, n) or n in _native_functions()]


@functools.cache
def _native_functions() -> frozenset[str]:
    """Names of the C++ functions in Warp's native headers (what generated code sees besides
    the Python builtins: ``intersect_aabb_aabb`` is one without a ``wp.`` name)."""
    import warp as wp

    native = os.path.join(os.path.dirname(wp.__file__), "native")
    names: set[str] = set()
    for header in sorted(glob.glob(os.path.join(native, "*.h"))):
        with open(header, encoding="utf-8", errors="replace") as f:
            names.update(re.findall(r"\b([A-Za-z_]\w*)\s*\(", f.read()))
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class SourcedKernel:
    """What the worker builds a record from (the fields ``synth.gen.generator.GeneratedKernel`` has)
    plus what the record says about where it came from."""

    seed: int
    kernel_name: str
    source: str
    helper_names: tuple[str, ...]
    struct_names: tuple[str, ...]
    launch: Launch | None
    generator: tuple[str, str, str]  # (name, version, config_hash)
    origin: str
    provenance: dict  # the parent record's metadata.source
    variant: dict  # VariantInfo's fields
    backward: bool = True  # the parent's: False when Warp emits no adjoint for it

    def metadata(self) -> dict:
        """The record metadata fields saying where this kernel came from."""
        out = {"generator": GeneratorInfo(*self.generator), "origin": self.origin,
               "variant": msgspec.convert(self.variant, VariantInfo)}
        if self.provenance:
            out["source"] = msgspec.convert(self.provenance, SourceInfo)
        return out


class VariantSource:
    """A worker's kernel source for ``--source variants:SPEC``: picklable, built in the main
    process from the parent records; the splice index and parent checks are made lazily, once
    per worker process."""

    def __init__(self, parents: list[Parent], cfg: VariantConfig, spec: str) -> None:
        # Corpus order is id order: the same parents give the same variants however they were read.
        self.parents = sorted({p.id: p for p in parents}.values(), key=lambda p: p.id)
        self.cfg = cfg
        self.spec = spec
        self.config_hash = config_hash(self.parents, cfg)
        self._keys: frozenset[str] | None = None
        self._site: Site | None = None
        self._usable: dict[str, bool] = {}
        self._weights: list[int] | None = None
        self._counter = 0

    def __getstate__(self) -> dict:
        return {"parents": self.parents, "cfg": self.cfg, "spec": self.spec, "config_hash": self.config_hash}

    def __setstate__(self, state: dict) -> None:
        self.parents, self.cfg, self.spec = state["parents"], state["cfg"], state["spec"]
        self.config_hash = state["config_hash"]
        self._keys, self._site, self._usable, self._weights, self._counter = None, None, {}, None, 0

    def variant(self, seed: int) -> Variant:
        if self._keys is None:
            self._keys = frozenset(canonical_key(p.source) for p in self.parents)
            self._site = Site(closed_expressions([p.source for p in self.parents]),
                              splicing.portable_statements([p.source for p in self.parents]))
            self._weights = parent_weights(self.parents)
        return mutate(seed, self.parents, self.cfg, self._check, self._keys, self._site, self._builds, self._weights)

    def kernel(self, seed: int) -> SourcedKernel:
        v = self.variant(seed)
        helpers, structs = helper_and_struct_names(v.source)
        launch = Launch((1,), v.parent.block_dim) if v.parent.block_dim else None
        info = {"parent": v.parent.id, "parent_kernel": v.parent.kernel_name, "mutations": list(v.mutations),
                "rejected": [list(r) for r in v.rejected]}
        return SourcedKernel(seed, v.parent.kernel_name, v.source, helpers, structs, launch,
                             (VARIANTS_NAME, VARIANTS_VERSION, self.config_hash), "variant", v.parent.provenance, info,
                             v.parent.backward)

    def _builds(self, parent: Parent) -> bool:
        if parent.id not in self._usable:
            self._usable[parent.id] = not name_clashes(parent.source) and self._check(parent, parent.source) is None
        return self._usable[parent.id]

    def _check(self, parent: Parent, source: str) -> str | None:
        """Warp's CPU and CUDA codegen of ``source`` and the extraction of its forward and
        backward, as the worker will build the record, or why that failed."""
        from synth import warp_adapter

        self._counter += 1
        name = f"jitsynth_variant_{os.getpid()}_{self._counter}"
        try:
            with warp_adapter.KernelModule(source, name, filename=f"{parent.kernel_name}.py") as module:
                sources = module.codegen(block_dim=parent.block_dim)
        except Exception as exc:  # noqa: BLE001 - whatever Warp (or exec) raises rejects the mutation
            return f"codegen: {type(exc).__name__}"
        helpers, structs = helper_and_struct_names(source)
        try:
            extract_sources(sources.cpu, sources.cuda, parent.kernel_name, (parent.kernel_name, *helpers, *structs),
                            parent.backward)
        except ExtractionError:
            return "extract: kernel not found in the generated code"
        return None
