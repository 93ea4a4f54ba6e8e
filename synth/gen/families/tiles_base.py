"""Shared state of one tile kernel being built: constants, parameters, locals, helpers, launch.

Tile code needs compile-time shapes (``shape=(TILE_M, TILE_N)``, never ``TILE_M * 2``), so
every extent is a module-level ``wp.constant`` or an int literal, and the builder keeps the
integer value of each to size arrays so that every load and store is in bounds. A block
owns the tile at ``offset=(i * TILE_M, j * TILE_N)`` of its grid index (the form
``synth.quality.races`` accepts as an own store). Only ``self.rng`` drives choices.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# dtype name -> spellings real code uses for it (one is drawn per kernel)
_SPELL = {"float32": ("float", "wp.float32"), "float64": ("wp.float64",), "int32": ("int", "wp.int32"),
          "vec2f": ("wp.vec2f",), "vec3f": ("wp.vec3", "wp.vec3f"), "vec2d": ("wp.vec2d",), "uint32": ("wp.uint32",)}
FLOATS = ("float32", "float64")


@dataclass(frozen=True, slots=True)
class Tile:
    expr: str  # a local name (or a short expression) holding the tile
    dtype: str
    shape: tuple[int, ...]


class Ctx:
    def __init__(self, rng: random.Random, wide: bool = True, random_ops: bool = True) -> None:
        self.rng = rng
        self.wide = wide  # float64 / vec2d / uint32 allowed (GeneratorConfig.use_wide_scalars)
        self.random = random_ops  # tile_randf / tile_randi allowed (use_random and the "random" group)
        self.consts: dict[str, int] = {}
        self.params: list[str] = []
        self.shapes: list[tuple[str, tuple[int, ...]]] = []
        self.helpers: list[str] = []
        self.helper_names: list[str] = []
        self.body: list[str] = []
        self.used: set[str] = set()
        self.spellings = {d: rng.choice(s) for d, s in sorted(_SPELL.items())}
        self.grid: tuple[int, ...] = (1,)
        self.tids: list[str] = ["i"]
        self.lane: str | None = None
        self.block_dim = 64
        self.indent = 1
        self.rng_state: str | None = None

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- names and text ------------------------------------------------------------------
    def const(self, name: str, value: int) -> str:
        self.consts.setdefault(name, value)
        return name

    def dim(self, n: int) -> str:
        """An extent as source text: the constant holding it, else the literal."""
        for name, value in self.consts.items():
            if value == n:
                return name
        return str(n)

    def shape(self, shape: tuple[int, ...], scalar: bool = False) -> str:
        """``(TILE_M, TILE_N)``; a 1-D shape as a plain int when ``scalar`` (the int overloads)."""
        if len(shape) == 1 and scalar:
            return self.dim(shape[0])
        return "(" + ", ".join(self.dim(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"

    def spell(self, dtype: str) -> str:
        return self.spellings[dtype]

    def lit(self, value: float, dtype: str) -> str:
        if dtype == "float64":
            return f"wp.float64({value})"
        if dtype in ("int32", "uint32"):
            return str(int(value))
        return str(value)

    def fresh(self, stem: str) -> str:
        name, k = stem, 1
        while name in self.used:
            k += 1
            name = f"{stem}{k}"
        self.used.add(name)
        return name

    def emit(self, line: str) -> None:
        self.body.append("    " * self.indent + line)

    def assign(self, stem: str, expr: str, dtype: str, shape: tuple[int, ...]) -> Tile:
        name = self.fresh(stem)
        self.emit(f"{name} = {expr}")
        return Tile(name, dtype, shape)

    # -- arrays and the launch ---------------------------------------------------------------
    def array(self, stem: str, dtype: str, shape: tuple[int, ...]) -> str:
        name = self.fresh(stem)
        sp, nd = self.spell(dtype), len(shape)
        if nd == 1:
            ann = f"wp.array(dtype={sp})"
        elif self.chance(0.6):
            ann = f"wp.array{nd}d(dtype={sp})"
        else:
            ann = f"wp.array(dtype={sp}, ndim={nd})"
        self.params.append(f"{name}: {ann}")
        self.shapes.append((name, shape))
        return name

    def scalar_param(self, stem: str, dtype: str) -> str:
        name = self.fresh(stem)
        self.params.append(f"{name}: {self.spell(dtype)}")
        return name

    def blocked(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of an array tiled by ``shape`` over the grid (one tile per block)."""
        return tuple(n * (self.grid[d] if d < len(self.grid) else 1) for d, n in enumerate(shape))

    def own_offset(self, shape: tuple[int, ...], scalar: bool = False) -> str:
        """The block's own tile of an array tiled by ``shape``: ``(i * TILE_M, j * TILE_N)``
        (a plain int for a 1-D tile when ``scalar``: shape and offset take the same overload)."""
        parts = [f"{self.tids[d]} * {self.dim(n)}" if d < len(self.grid) else "0" for d, n in enumerate(shape)]
        if len(parts) == 1 and scalar:
            return parts[0]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    def load_own(self, stem: str, array_stem: str, dtype: str, shape: tuple[int, ...],
                 shared: bool | None = None) -> Tile:
        """Load the block's own tile of a new input array (``shared``: None draws it)."""
        arr = self.array(array_stem, dtype, self.blocked(shape))
        storage = ', storage="shared"' if shared or (shared is None and self.chance(0.15)) else ""
        scalar = self.chance(0.5)
        return self.assign(stem, f"wp.tile_load({arr}, shape={self.shape(shape, scalar)}, "
                                 f"offset={self.own_offset(shape, scalar)}{storage})", dtype, shape)

    def store_own(self, array_stem: str, tile: Tile) -> None:
        arr = self.array(array_stem, tile.dtype, self.blocked(tile.shape))
        self.emit(f"wp.tile_store({arr}, {tile.expr}, offset={self.own_offset(tile.shape, self.chance(0.5))})")

    def block_index(self) -> str:
        """A flat index of this block (for per-block results)."""
        if len(self.grid) == 1:
            return self.tids[0]
        return f"{self.tids[0]} * {self.grid[1]} + {self.tids[1]}"

    def random_state(self) -> str:
        if self.rng_state is None:
            seed = self.scalar_param("seed", "int32") if self.chance(0.5) else str(self.rng.randint(1, 99999))
            self.rng_state = self.fresh("rng")
            self.emit(f"{self.rng_state} = wp.rand_init({seed}, {self.block_index()})")
        return self.rng_state
