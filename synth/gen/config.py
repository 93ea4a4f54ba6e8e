"""Generator knobs: one frozen object, hashed into every record's ``config_hash``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import blake3

GENERATOR_NAME = "jitsynth.typed"
GENERATOR_VERSION = "4.0.1"  # 4.0.1: no install paths in generated C++/CUDA comments

GROUP_KEYS = ("scalar", "vector", "quaternion", "transformation", "spatial", "random", "operator", "utility")


def _default_weights() -> dict[str, float]:
    # Relative weights of statement kinds; the generator normalises them. Loops and
    # branches are what make codegen expensive (a constant-range loop is unrolled), so
    # they are common but not dominant.
    return {
        "assign": 5.0,  # a new local from a builtin picked by signature
        "reassign": 1.0,
        "augassign": 2.0,
        "component": 1.0,  # v[1] = ..., v.x += ..., m[0, 2] = ..., t.p = ...
        "store": 2.0,  # out[tid] = ... / out[i, j] += ...
        "atomic": 1.0,
        "for": 1.2,
        "while": 0.4,
        "if": 1.5,
        "multi": 0.25,  # U, sigma, V = wp.svd3(m) and other multi-value builtins
        "inplace": 0.2,  # wp.transform_set_translation(t, p) and other in-place builtins
        "helper": 0.5,  # a void @wp.func called as a statement
        "struct": 0.4,  # a local struct instance and its fields
        "zeros": 0.1,  # a fixed-size local array (wp.zeros) filled in a loop
        "debug": 0.05,  # print / printf / expect_near under a rare guard
        "return": 0.15,  # early return
    }


def _default_families() -> dict[str, float]:
    # Relative weights of kernel families (synth.gen.generator.FAMILY_MODULES): plain kernels
    # over the core builtins, tile kernels (shared memory, block cooperation), geometry
    # queries (meshes, BVHs, hash grids), volumes, and the rest of the language (module
    # constants, custom gradients, generic functions, arrays in structs, slices ...).
    # Tiles and geometry near their shares in warp.examples (15% each) and warp.tests (25% /
    # 4%): measured builtin JSD against both corpora, 2,000 seeds: tile weight 0.15 -> 0.136,
    # 0.2 -> 0.127, 0.3 -> 0.115 (jitsynth report --against).
    return {"plain": 1.0, "tile": 0.25, "geometry": 0.1, "volume": 0.04, "lang": 0.08}


FAMILY_KEYS = tuple(_default_families())


def weight_problems(weights: dict[str, float], known: tuple[str, ...], plural: str, singular: str) -> list[str]:
    """What is wrong with a table of relative weights: unknown keys, negative or all-zero weights."""
    problems = []
    unknown = sorted(set(weights) - set(known))
    if unknown:
        problems.append(f"unknown {plural} {unknown}; known: {', '.join(known)}")
    if any(w < 0 for w in weights.values()) or not any(weights.values()):
        problems.append(f"{singular} weights must be >= 0 and not all 0")
    return problems


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    min_statements: int = 4  # top-level statements of a medium kernel (before pruning dead ones)
    max_statements: int = 9
    small_fraction: float = 0.12  # kernels of 1-2 statements, no helpers
    large_fraction: float = 0.05  # kernels of large_factor x statements and more helpers
    large_factor: int = 8
    max_depth: int = 3  # expression nesting
    leaf_probability: float = 0.6  # at depth 0; grows with depth (expression size drives codegen cost)
    max_block_depth: int = 2  # nesting of loops/branches
    max_helpers: int = 3
    helper_statements: int = 3
    min_arrays: int = 2
    max_arrays: int = 5
    max_array_dims: int = 4
    max_launch_dims: int = 4  # the launch rank is the highest array rank (4-D arrays need 4-D launches)
    max_loop_trip: int = 4
    use_structs: bool = True
    use_matrices: bool = True
    use_quaternions: bool = True
    use_transforms: bool = True  # transforms and spatial vectors/matrices
    use_wide_scalars: bool = True  # float64/float16 and 8-64 bit (u)ints besides float32/int32
    use_random: bool = True
    builtin_groups: tuple[str, ...] = GROUP_KEYS
    statement_weights: dict[str, float] = field(default_factory=_default_weights)
    families: dict[str, float] = field(default_factory=_default_families)

    def validate(self) -> None:
        problems = []
        if not 1 <= self.min_statements <= self.max_statements:
            problems.append("need 1 <= min_statements <= max_statements")
        if not 1 <= self.min_arrays <= self.max_arrays:
            problems.append("need 1 <= min_arrays <= max_arrays")
        if self.max_depth < 1 or self.max_block_depth < 0 or self.max_helpers < 0 or self.helper_statements < 1:
            problems.append("max_depth >= 1, max_block_depth >= 0, max_helpers >= 0, helper_statements >= 1")
        if not 1 <= self.max_array_dims <= 4 or not 1 <= self.max_launch_dims <= 4:
            problems.append("max_array_dims and max_launch_dims in 1..4")
        if self.max_loop_trip < 1 or self.large_factor < 1:
            problems.append("max_loop_trip >= 1 and large_factor >= 1")
        fractions = (self.small_fraction, self.large_fraction, self.leaf_probability)
        if not all(0.0 <= f <= 1.0 for f in fractions) or self.small_fraction + self.large_fraction > 1.0:
            problems.append("small_fraction, large_fraction, leaf_probability in [0, 1] and small + large <= 1")
        unknown_groups = sorted(set(self.builtin_groups) - set(GROUP_KEYS))
        if unknown_groups:
            problems.append(f"unknown builtin_groups {unknown_groups}; known: {', '.join(GROUP_KEYS)}")
        problems += weight_problems(self.statement_weights, tuple(_default_weights()), "statement kinds", "statement")
        problems += weight_problems(self.families, FAMILY_KEYS, "families", "family")
        if problems:
            raise ValueError("generator config: " + "; ".join(problems))

    def to_json(self) -> str:
        data = asdict(self)
        data["builtin_groups"] = list(self.builtin_groups)  # a TOML list and a tuple hash alike
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        # The calibrated builtin weights shape the output as much as the knobs do: a new
        # profile is a new generator (a dataset of the old one refuses to resume).
        from synth.gen.calibration import profile_digest

        payload = f"{GENERATOR_NAME}/{GENERATOR_VERSION}/{profile_digest()}/{self.to_json()}"
        return blake3.blake3(payload.encode()).hexdigest(length=8)


VARIANTS_NAME = "jitsynth.variants"
VARIANTS_VERSION = "1.2.2"  # 1.1.0: delete_statement, outline, splice_statement; 1.2.0: vector_width, array_rank, launch_dim; 1.2.1: float16 hazards; 1.2.2: hazard sets


def _default_operators() -> dict[str, float]:
    # Relative weights of the mutation operators (synth.variants.mutations.OPERATORS). Edits that keep
    # the parent's builtin mix (constants, operators, locals) dominate so variants stay as
    # realistic as their parents; type changes and helper inlining are rarer and more often
    # rejected by Warp (float64 through float32-only builtins).
    return {"constant": 3.0, "scale": 1.0, "binop": 1.5, "compare": 1.0, "builtin": 1.5, "loop_bound": 1.0, "dtype": 0.6,
            "inline_local": 1.0, "extract_local": 1.0, "inline_helper": 0.6, "commute": 0.5, "splice": 1.0,
            "specialise": 0.5,
            "delete_statement": 0.8, "outline": 0.6, "splice_statement": 0.8,
            # launch_dim has a site in a third of the parents: at 0.8 it took the 2-D launch share
            # of 1,000 variants from 11.7% to 21.5% (real kernels: 8.5%)
            "vector_width": 1.0, "array_rank": 0.5, "launch_dim": 0.3}


OPERATOR_KEYS = tuple(_default_operators())


@dataclass(frozen=True, slots=True)
class VariantConfig:
    """Knobs of ``--source variants:SPEC`` (the ``[variants]`` table of the config file)."""

    min_mutations: int = 2  # accepted mutations per variant, drawn uniformly in [min, max]
    max_mutations: int = 4
    max_attempts: int = 12  # tries (accepted or rejected) per variant before giving up
    parent_tries: int = 8  # parents drawn per seed until one builds on its own
    # every variant gets a new literal (constant, scale) where its kernel has room: one mutation
    # beyond max_mutations when none of the drawn ones wrote a literal
    fresh_literal: bool = True
    operators: dict[str, float] = field(default_factory=_default_operators)

    def validate(self) -> None:
        problems = []
        if not 1 <= self.min_mutations <= self.max_mutations:
            problems.append("need 1 <= min_mutations <= max_mutations")
        if self.max_attempts < self.max_mutations:
            problems.append("max_attempts must be >= max_mutations")
        if self.parent_tries < 1:
            problems.append("parent_tries must be >= 1")
        problems += weight_problems(self.operators, OPERATOR_KEYS, "operators", "operator")
        if problems:
            raise ValueError("variants config: " + "; ".join(problems))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
