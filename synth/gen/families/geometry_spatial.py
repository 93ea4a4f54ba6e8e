"""BVH, hash-grid and thread-block (tile) kernel shapes of the geometry family.

- ``bvh``: AABB, ray, sphere and capsule queries on a ``wp.Bvh`` of boxes, or on a mesh's
  own BVH (``mesh_get_bvh``, whose items are faces), optionally from a group root;
- ``neighbours``: SPH-style neighbour search on a ``wp.HashGrid``, one thread per point in
  the grid's cell-sorted order (``hash_grid_point_id``), optionally within a point group;
- ``tiled``: a whole thread block traverses one BVH or mesh query cooperatively
  (``tile_bvh_query_*``, ``tile_mesh_query_aabb*`` and their ``*_tiled`` aliases), launched
  with ``wp.launch_tiled`` and a block size.

Candidates come back in an order that depends on the tree (and, for tiles, on the lanes),
so they are only folded with counts, integer sums, min and max, or scattered with one
commutative atomic class into an accumulator.
"""

from __future__ import annotations

from synth.gen.families.geometry_objects import BVH_ITEMS, GRID_POINTS, MAX_FACES


def _query_point(k) -> str:
    pts = k.array("vec3f", k.dim, "points", "centers", "queries")
    p = k.name("p", "center", "x")
    k.emit(1, f"{p} = {pts}[{k.own}]")
    return p


def bvh(k) -> None:
    k.dim = (k.pick((8, 16)),)
    k.tid(1)
    on_mesh = k.chance(0.3)
    if on_mesh:
        mesh = k.obj("mesh", "mesh", "mesh_id")
        tree = k.name("bvh", "tree")
        k.emit(1, f"{tree} = wp.mesh_get_bvh({mesh})")
        items = MAX_FACES
    else:
        tree = k.obj("bvh", "bvh", "bvh_id", "tree")
        items = BVH_ITEMS
    p = _query_point(k)
    root = None
    if k.chance(0.35):
        root = k.name("root")
        group = k.value_param("int32", "group", "world") if k.chance(0.4) else str(k.rng.randint(0, 2))
        if on_mesh:
            k.grouped(mesh)
            k.emit(1, f"{root} = wp.mesh_get_group_root({mesh}, {group})")
        else:
            k.emit(1, f"{root} = wp.bvh_get_group_root({tree}, {group})")
    root_arg = f", {root}" if root else (", -1" if k.chance(0.2) else "")
    mode = k.pick(("aabb", "aabb", "ray", "sphere", "capsule"))
    q = k.name("query", "q")
    max_t = ""
    if mode == "aabb":
        half = k.vlit(0.2, 1.0) if k.chance(0.5) else f"wp.vec3({k.lit(0.2, 1.0)})"
        lo, hi = k.name("lower", "lo"), k.name("upper", "hi")
        k.emit(1, f"{lo} = {p} - {half}")
        k.emit(1, f"{hi} = {p} + {half}")
        k.emit(1, f"{q} = wp.bvh_query_aabb({tree}, {lo}, {hi}{root_arg})")
    elif mode == "ray":
        d = k.name("dir", "d")
        k.emit(1, f"{d} = wp.normalize({k.vlit(-1.0, 1.0)} + wp.vec3(0.001, 0.002, 0.003))")
        k.emit(1, f"{q} = wp.bvh_query_ray({tree}, {p}, {d}{root_arg})")
        max_t = f", {k.lit(1.0, 6.0, 1)}" if k.chance(0.5) else ""
    elif mode == "sphere":
        k.emit(1, f"{q} = wp.bvh_query_sphere({tree}, {p}, {k.lit(0.2, 1.2)}{root_arg or ', -1'})")
    else:
        end = k.name("end", "p1")
        k.emit(1, f"{end} = {p} + {k.vlit(-1.0, 1.0)}")
        k.emit(1, f"{q} = wp.bvh_query_capsule({tree}, {p}, {end} - {p}, {k.lit(0.05, 0.5)}{root_arg or ', -1'})")
        max_t = ", 1.0"
    item = k.name("item", "bounds_nr", "index")
    folds = k.rng.sample(("count", "first", "last", "hist", "weight", "mask"), k.rng.randint(1, 3))
    if on_mesh and k.chance(0.5):
        folds = [f for f in folds if f != "weight"] + ["facing"]
    names = {x: k.name({"count": "count", "first": "first", "last": "last", "weight": "heaviest",
                        "mask": "mask", "facing": "facing"}[x]) for x in folds if x != "hist"}
    init = {"count": ("int32", "int(0)"), "first": ("int32", f"int({items})"), "last": ("int32", "int(-1)"),
            "weight": ("float32", "float(-1.0e6)"), "mask": ("int32", "int(0)"),
            "facing": ("float32", "float(-2.0)")}
    for x in folds:
        if x != "hist":
            k.emit(1, f"{names[x]} = {init[x][1]}")
    k.emit(1, f"{item} = int(0)")
    k.emit(1, f"while wp.bvh_query_next({q}, {item}{max_t}):")
    for x in folds:
        if x == "count":
            k.emit(2, f"{names[x]} += 1")
        elif x == "first":
            k.emit(2, f"{names[x]} = wp.min({names[x]}, {item})")
        elif x == "last":
            k.emit(2, f"{names[x]} = wp.max({names[x]}, {item})")
        elif x == "mask":
            k.emit(2, f"{names[x]} = {names[x]} | (1 << ({item} % 30))")
        elif x == "weight":
            w = k.array("float32", (items,), "weights", "mass")
            k.emit(2, f"{names[x]} = wp.max({names[x]}, {w}[{item}])")
        elif x == "facing":
            k.emit(2, f"{names[x]} = wp.max({names[x]}, wp.mesh_eval_face_normal({mesh}, {item})[2])")
        else:
            hist = k.array("int32", (items,), "hits", "overlaps")
            k.emit(2, f"wp.atomic_add({hist}, {item}, 1)")
    for x in folds:
        if x != "hist":
            k.result(names[x], init[x][0])
    k.out_names = ["counts", "out", "result"]


def _smoothing_kernel(k) -> str:
    """A @wp.func SPH weight, as warp.examples' sph defines them."""
    name = k.pick(("density_kernel", "poly6", "spiky_weight"))
    body = {"density_kernel": ["def density_kernel(r: float, h: float):", "    q = h * h - r * r",
                               "    return q * q * q"],
            "poly6": ["def poly6(r: float, h: float):", "    x = wp.max(h - r, 0.0)", "    return x * x * x / (h * h)"],
            "spiky_weight": ["def spiky_weight(r: float, h: float):", "    x = 1.0 - r / h", "    return x * x"]}
    return k.func(name, body[name])


def neighbours(k) -> None:
    grid = k.obj("hash_grid", "grid", "grid_id", "hash_grid")
    k.dim = (GRID_POINTS,)
    k.tid(1)
    pts = k.array("vec3f", k.dim, "particle_x", "points", "positions")
    k.derived.append((pts, (grid, "points")))  # the particles the grid was built from, as in sph
    if k.chance(0.6):
        k.emit(1, "i = wp.hash_grid_point_id(" + grid + ", tid)")  # visit points in cell order
        k.taken.add("i")
        me = "i"
    else:
        me = "tid"
    x = k.name("x", "p")
    k.emit(1, f"{x} = {pts}[{me}]")
    radius = k.value_param("float32", "radius", "smoothing_length") if k.chance(0.3) else None
    h = k.name("h")
    k.emit(1, f"{h} = {k.lit(0.3, 1.2)}" if radius is None else f"{h} = wp.abs({radius}) + 0.1")
    group = ""
    if k.chance(0.3):
        groups = k.array("int32", k.dim, "groups", "world_ids")
        group = f", {groups}[{me}]"
    q = k.name("query", "neighbors")
    index = k.name("index", "j")
    k.emit(1, f"{q} = wp.hash_grid_query({grid}, {x}, {h}{group})")
    folds = k.rng.sample(("count", "nearest", "weight", "ids", "speed"), k.rng.randint(1, 3))
    names = {f: k.name({"count": "count", "nearest": "nearest", "weight": "w_max", "ids": "id_sum",
                        "speed": "max_rel"}[f]) for f in folds}
    init = {"count": ("int32", "int(0)"), "nearest": ("float32", f"float({k.lit(2.0, 9.0, 1)})"),
            "weight": ("float32", "float(0.0)"), "ids": ("int32", "int(0)"), "speed": ("float32", "float(0.0)")}
    for f in folds:
        k.emit(1, f"{names[f]} = {init[f][1]}")
    if k.chance(0.5):
        k.emit(1, f"for {index} in {q}:")
    else:
        k.emit(1, f"{index} = int(0)")
        k.emit(1, f"while wp.hash_grid_query_next({q}, {index}):")
    k.emit(2, f"if {index} != {me}:")
    r = k.name("r", "dist")
    k.emit(3, f"{r} = wp.length({x} - {pts}[{index}])")
    k.emit(3, f"if {r} < {h}:")
    for f in folds:
        if f == "count":
            k.emit(4, f"{names[f]} += 1")
        elif f == "nearest":
            k.emit(4, f"{names[f]} = wp.min({names[f]}, {r})")
        elif f == "weight":
            k.emit(4, f"{names[f]} = wp.max({names[f]}, {_smoothing_kernel(k)}({r}, {h}))")
        elif f == "ids":
            k.emit(4, f"{names[f]} += {index}")
        else:
            vel = k.array("vec3f", k.dim, "particle_v", "velocities")
            k.emit(4, f"{names[f]} = wp.max({names[f]}, wp.length({vel}[{index}] - {vel}[{me}]))")
    for f in folds:
        k.result(names[f], init[f][0])
    k.out_names = ["particle_rho", "neighbor_count", "out"]


_TILE_QUERIES = {
    "bvh_aabb": ("bvh", ("wp.tile_bvh_query_aabb", "wp.bvh_query_aabb_tiled"),
                 ("wp.tile_bvh_query_next", "wp.bvh_query_next_tiled")),
    "bvh_ray": ("bvh", ("wp.tile_bvh_query_ray", "wp.bvh_query_ray_tiled"),
                ("wp.tile_bvh_query_next", "wp.bvh_query_next_tiled")),
    "mesh_aabb": ("mesh", ("wp.tile_mesh_query_aabb", "wp.mesh_query_aabb_tiled"),
                  ("wp.tile_mesh_query_aabb_next", "wp.mesh_query_aabb_next_tiled")),
}


def tiled(k) -> None:
    """One query per block, traversed by every lane; results scattered with atomics."""
    mode = k.pick(tuple(_TILE_QUERIES))
    kind, makers, nexts = _TILE_QUERIES[mode]
    alias = 1 if k.chance(0.3) else 0  # the deprecated *_tiled spellings still occur in code
    target = k.obj(kind, kind, f"{kind}_id")
    items = BVH_ITEMS if kind == "bvh" else MAX_FACES
    k.dim = (k.pick((2, 4, 8)),)
    k.block_dim = k.pick((32, 64, 128))
    k.emit(1, "i = wp.tid()")
    k.taken.add("i")
    p = k.name("center", "p")
    centers = k.array("vec3f", k.dim, "centers", "probes")
    k.emit(1, f"{p} = {centers}[i]")
    q = k.name("query", "q")
    if mode == "bvh_ray":
        k.emit(1, f"{q} = {makers[alias]}({target}, {p}, wp.normalize({k.vlit(-1.0, 1.0)} + "
                  f"wp.vec3(0.001, 0.002, 0.003)))")
    else:
        half = k.vlit(0.3, 1.2)
        k.emit(1, f"{q} = {makers[alias]}({target}, {p} - {half}, {p} + {half})")
    k.emit(1, f"while wp.tile_query_valid({q}):")
    item = k.name("item", "face" if kind == "mesh" else "bound")
    k.emit(2, f"{item} = wp.untile({nexts[alias]}({q}))")
    k.emit(2, f"if {item} >= 0:")
    folds = k.rng.sample(("hist", "count", "last", "first", "facing"), k.rng.randint(1, 2))
    if kind != "mesh":
        folds = [f for f in folds if f != "facing"] or ["hist"]
    for f in folds:
        if f == "hist":
            acc = k.array("int32", (items,), "hits", "counts")
            k.emit(3, f"wp.atomic_add({acc}, {item}, 1)")
        elif f == "count":
            acc = k.array("int32", k.dim, "totals", "num_hits")
            k.emit(3, f"wp.atomic_add({acc}, i, 1)")
        elif f in ("last", "first"):
            acc = k.array("int32", k.dim, f"{f}_item", f"{f}_index")
            k.emit(3, f"wp.atomic_{'max' if f == 'last' else 'min'}({acc}, i, {item})")
        else:
            acc = k.array("float32", k.dim, "facing", "max_dot")
            k.emit(3, f"wp.atomic_max({acc}, i, wp.dot(wp.mesh_eval_face_normal({target}, {item}), "
                      f"{k.vlit(-1.0, 1.0)}))")
