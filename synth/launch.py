"""How a generated kernel is launched, as data: the part of a real program's host code
that the execution tier needs and that the kernel's source cannot say.

Plain kernels follow the execution tier's default convention (``synth.validate.examples``): one
launch dimension per rank of the highest-rank array, every array of the launch shape.
Families that need more (tile kernels launched with ``wp.launch_tiled`` and a block size,
arrays whose shape is a multiple of a tile, ``wp.uint64`` ids of meshes, BVHs, hash grids
and volumes) say so with a ``Launch``. It is pure data, produced by the generator with the
source text, and the examples a record keeps repeat it (``dim``, ``block_dim``, object
inputs), so a record replays without it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Launch:
    dim: tuple[int, ...]  # the launch grid; with block_dim, the grid of blocks (wp.launch_tiled)
    block_dim: int | None = None  # set: wp.launch_tiled(..., block_dim=block_dim), CUDA codegen for that size
    # array parameter -> its shape; arrays not listed follow the default convention
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # wp.uint64 parameter -> object kind (synth.validate.objects: "mesh", "bvh", "hash_grid", "volume_f" ...)
    objects: tuple[tuple[str, str], ...] = ()
    # array parameters whose example values are sorted ascending (what wp.lower_bound searches)
    sorted: tuple[str, ...] = ()
    # array parameter -> (object parameter, field of its construction data): the array holds
    # what the object was built from (the points a hash grid bucketed), as a host program passes
    derived: tuple[tuple[str, tuple[str, str]], ...] = ()

    def derived_from(self, param: str) -> tuple[str, str] | None:
        return dict(self.derived).get(param)

    def __post_init__(self) -> None:
        if not self.dim or any(d < 1 for d in self.dim) or len(self.dim) > 4:
            raise ValueError(f"launch dim must be 1-4 positive extents, got {self.dim}")
        if self.block_dim is not None and not 1 <= self.block_dim <= 1024:
            raise ValueError(f"block_dim must be in 1..1024, got {self.block_dim}")
        if self.block_dim is not None and len(self.dim) > 3:
            raise ValueError("wp.launch_tiled takes at most 3 grid dimensions")

    def shape_of(self, param: str) -> tuple[int, ...] | None:
        return dict(self.shapes).get(param)

    def object_of(self, param: str) -> str | None:
        return dict(self.objects).get(param)
