"""The tile family: block-cooperative Warp kernels launched with ``wp.launch_tiled``.

Tiles are Warp's shared-memory programming model: a block of threads loads a tile of an
array (``wp.tile_load``), transforms it cooperatively (maps, reductions, matmul, FFT,
Cholesky, sorts, scans, gathers) and stores the block's own tile. This module draws a
kernel kind (``synth.gen.families.tiles_kinds``), assembles the module (``wp.constant`` tile
sizes, ``@wp.func`` helpers, the kernel) and its ``Launch``: the grid of blocks, a block
size, and array shapes of grid x tile so that every load and store is in bounds.
"""

from __future__ import annotations

import random
import re

from synth.gen.config import GeneratorConfig
from synth.gen.families.tiles_base import Ctx
from synth.gen.families.tiles_kinds import KINDS
from synth.gen.generator import GeneratedKernel
from synth.launch import Launch


def _draw_kind(rng: random.Random) -> str:
    names = list(KINDS)
    return rng.choices(names, [KINDS[n][1] for n in names])[0]


def kind_of(seed: int) -> str:
    """The kind (``tiles_kinds.KINDS``) of ``seed``'s kernel: its first draw."""
    return _draw_kind(random.Random(seed))


def build(seed: int, cfg: GeneratorConfig | None = None, kind: str | None = None) -> tuple[str, Ctx]:
    """(source, builder state) of ``seed``'s kernel; ``kind`` forces the kind (the draw still happens).
    Of ``cfg`` the type knobs apply (wide scalars, random builtins); tile kernels have their own
    size rules (compile-time tile shapes that fit a block)."""
    cfg = cfg or GeneratorConfig()
    rng = random.Random(seed)
    drawn = _draw_kind(rng)
    kind = kind or drawn
    ctx = Ctx(rng, cfg.use_wide_scalars, cfg.use_random and "random" in cfg.builtin_groups)
    ctx.block_dim = rng.choice((32, 64, 64, 128, 256))
    KINDS[kind][0](ctx)
    tids = [*ctx.tids[: len(ctx.grid)], *([ctx.lane] if ctx.lane else [])]
    text = "\n".join(ctx.body + ctx.helpers)
    consts = [f"{name} = wp.constant({value})" for name, value in ctx.consts.items()
              if re.search(rf"\b{name}\b", text)]  # a size no shape ended up spelling is not emitted
    out = ["import warp as wp", "", *([*consts, ""] if consts else []), "", *ctx.helpers]
    out += ["@wp.kernel", f"def kernel_{seed}({', '.join(ctx.params)}):", f"    {', '.join(tids)} = wp.tid()",
            *ctx.body, ""]
    return "\n".join(out), ctx


def generate(seed: int, cfg: GeneratorConfig) -> GeneratedKernel:
    """The tile kernel of ``seed`` under ``cfg``'s type knobs (see ``build``)."""
    source, ctx = build(seed, cfg)
    launch = Launch(dim=ctx.grid, block_dim=ctx.block_dim, shapes=tuple(ctx.shapes))
    return GeneratedKernel(seed, f"kernel_{seed}", source, tuple(ctx.helper_names), (), launch, family="tile")
