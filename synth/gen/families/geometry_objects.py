"""Seeded meshes, BVHs and hash grids for the geometry family's ``wp.uint64`` parameters.

Each kind draws its construction data from the execution tier's numpy generator as plain
JSON lists (``make``) and rebuilds the live Warp object from that data (``build``), so a
record replays with nothing but its example. The data is made so that every query has
one well-defined answer:

- ``mesh``: a closed, consistently outward-wound triangle mesh (a radially perturbed
  tetrahedron, box, octahedron or icosahedron: star-shaped about its centre, so never
  self-intersecting and never degenerate), with per-vertex velocities,
  built with winding-number support so every sign mode of ``mesh_query_point`` applies;
  ``mesh_grouped`` is the same with per-face groups, for kernels that traverse from a
  group root (Warp 1.19's winding-number sign is wrong on a grouped mesh: a point at the
  centre of a closed mesh reads as outside, so the plain kind has no groups);
- ``bvh``: ``BVH_ITEMS`` boxes with positive extents and per-item groups;
- ``hash_grid``: ``GRID_POINTS`` points bucketed with ``grid.build(points, radius)``,
  optionally split into point groups.

Sizes that kernels index by (box ids, point ids, face ids) are bounded by the constants
below, which the kernel shapes use for the arrays they index with query results.
"""

from __future__ import annotations

from typing import Any

from synth.validate.objects import ObjectKind

BVH_ITEMS = 16  # boxes in every seeded BVH: arrays indexed by a BVH item id have this length
GRID_POINTS = 16  # points in every seeded hash grid: grid kernels launch one thread per point
MAX_FACES = 20  # the largest base solid (icosahedron): arrays indexed by a face id have this length

_T = 0.5257311121191336  # icosahedron vertex coordinates (1, golden ratio) normalised
_P = 0.85065080835204

_SOLIDS: dict[str, tuple[list[list[float]], list[int]]] = {
    "tetrahedron": ([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]],
                    [0, 1, 2, 0, 3, 1, 0, 2, 3, 1, 3, 2]),
    "box": ([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)],
            [0, 1, 3, 0, 3, 2, 4, 6, 7, 4, 7, 5, 0, 4, 5, 0, 5, 1, 2, 3, 7, 2, 7, 6, 0, 2, 6, 0, 6, 4,
             1, 5, 7, 1, 7, 3]),
    "octahedron": ([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
                   [0, 2, 4, 2, 1, 4, 1, 3, 4, 3, 0, 4, 2, 0, 5, 1, 2, 5, 3, 1, 5, 0, 3, 5]),
    "icosahedron": ([[-_T, _P, 0], [_T, _P, 0], [-_T, -_P, 0], [_T, -_P, 0], [0, -_T, _P], [0, _T, _P],
                     [0, -_T, -_P], [0, _T, -_P], [_P, 0, -_T], [_P, 0, _T], [-_P, 0, -_T], [-_P, 0, _T]],
                    [0, 11, 5, 0, 5, 1, 0, 1, 7, 0, 7, 10, 0, 10, 11, 1, 5, 9, 5, 11, 4, 11, 10, 2, 10, 7, 6,
                     7, 1, 8, 3, 9, 4, 3, 4, 2, 3, 2, 6, 3, 6, 8, 3, 8, 9, 4, 9, 5, 2, 4, 11, 6, 2, 10, 8, 6, 7,
                     9, 8, 1]),
}
_SOLID_NAMES = tuple(_SOLIDS)


def _round(values: Any, digits: int) -> list:
    import numpy as np

    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def _outward(points: Any, indices: list[int]) -> list[int]:
    """Indices with every face wound so its normal points away from the centre (the sign
    queries read orientation); the base solids are convex and the perturbation radial."""
    import numpy as np

    out = []
    for f in range(len(indices) // 3):
        a, b, c = indices[3 * f:3 * f + 3]
        normal = np.cross(points[b] - points[a], points[c] - points[a])
        out += [a, b, c] if float(np.dot(normal, points[a] + points[b] + points[c])) > 0.0 else [a, c, b]
    return out


def make_mesh(rng: Any) -> dict:
    import numpy as np

    base, indices = _SOLIDS[_SOLID_NAMES[int(rng.integers(0, len(_SOLID_NAMES)))]]
    unit = np.asarray(base, dtype=np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    radial = rng.uniform(0.85, 1.15, (len(unit), 1))  # star-shaped about the centre: still closed and simple
    scale = rng.uniform(0.8, 1.5, 3)
    points = np.round(unit * radial * scale + rng.uniform(-0.3, 0.3, 3), 3)
    return {
        "points": points.tolist(),
        "indices": _outward(points - points.mean(axis=0), list(indices)),
        "velocities": _round(rng.uniform(-1.0, 1.0, (len(unit), 3)), 2),
    }


def make_grouped_mesh(rng: Any) -> dict:
    data = make_mesh(rng)
    return data | {"groups": rng.integers(0, 2, len(data["indices"]) // 3).tolist()}


def build_mesh(data: dict, device: str) -> Any:
    import numpy as np
    import warp as wp

    groups = data.get("groups")
    return wp.Mesh(points=wp.array(np.asarray(data["points"], dtype=np.float32), dtype=wp.vec3, device=device),
                   indices=wp.array(np.asarray(data["indices"], dtype=np.int32), dtype=wp.int32, device=device),
                   velocities=wp.array(np.asarray(data["velocities"], dtype=np.float32), dtype=wp.vec3,
                                       device=device),
                   groups=None if groups is None else wp.array(np.asarray(groups, dtype=np.int32), dtype=wp.int32,
                                                               device=device),
                   support_winding_number=True)


def make_bvh(rng: Any) -> dict:
    centers = rng.uniform(-1.8, 1.8, (BVH_ITEMS, 3))
    half = rng.uniform(0.1, 0.7, (BVH_ITEMS, 3))
    return {"lowers": _round(centers - half, 2), "uppers": _round(centers + half, 2),
            "groups": rng.integers(0, 3, BVH_ITEMS).tolist()}


def build_bvh(data: dict, device: str) -> Any:
    import numpy as np
    import warp as wp

    def vecs(key: str) -> Any:
        return wp.array(np.asarray(data[key], dtype=np.float32), dtype=wp.vec3, device=device)

    return wp.Bvh(vecs("lowers"), vecs("uppers"),
                  groups=wp.array(np.asarray(data["groups"], dtype=np.int32), dtype=wp.int32, device=device))


def make_hash_grid(rng: Any) -> dict:
    dims = rng.integers(4, 17, 3).tolist()
    data = {"points": _round(rng.uniform(-2.0, 2.0, (GRID_POINTS, 3)), 2),
            "radius": round(float(rng.uniform(0.4, 1.2)), 2), "dims": dims}
    if rng.random() < 0.5:
        data["groups"] = rng.integers(0, 3, GRID_POINTS).tolist()
    return data


def build_hash_grid(data: dict, device: str) -> Any:
    import numpy as np
    import warp as wp

    grid = wp.HashGrid(*data["dims"], device=device)
    points = wp.array(np.asarray(data["points"], dtype=np.float32), dtype=wp.vec3, device=device)
    groups = data.get("groups")
    grid.build(points, data["radius"],
               groups=None if groups is None else wp.array(np.asarray(groups, dtype=np.int32), dtype=wp.int32,
                                                           device=device))
    grid.jitsynth_points = points  # the grid was built from these; keep them alive with it
    return grid


OBJECT_KINDS = {
    "mesh": ObjectKind("mesh", make_mesh, build_mesh),
    "mesh_grouped": ObjectKind("mesh_grouped", make_grouped_mesh, build_mesh),
    "bvh": ObjectKind("bvh", make_bvh, build_bvh),
    "hash_grid": ObjectKind("hash_grid", make_hash_grid, build_hash_grid),
}
