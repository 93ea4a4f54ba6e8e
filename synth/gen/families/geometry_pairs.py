"""Pair-test kernel shapes of the geometry family: triangle-triangle intersection between
two meshes (a BVH broad phase, then ``intersect_tri_tri`` in single or double precision)
and closest points between segments (``closest_point_edge_edge``), against fixed edges or
a mesh's edges. Like every shape they write into a ``KernelText``
(``synth.gen.families.geometry``); candidate loops fold with counts, min and max only.
"""

from __future__ import annotations

from synth.gen.families.geometry_mesh import face_index


def _bounds_helpers(k) -> tuple[str, str]:
    if k.chance(0.5):
        return "wp.min", "wp.max"
    for fn, op in (("cw_min", "min"), ("cw_max", "max")):
        k.func(fn, [f"def {fn}(a: wp.vec3, b: wp.vec3):",
                    f"    return wp.vec3(wp.{op}(a[0], b[0]), wp.{op}(a[1], b[1]), wp.{op}(a[2], b[2]))"])
    return "cw_min", "cw_max"


def tri_tri(k) -> None:
    """Triangle-triangle intersection between two meshes (a broad phase on the other mesh's
    BVH, then ``intersect_tri_tri``), as in warp.examples' mesh intersection."""
    m0 = k.obj("mesh", "mesh_0", "query_mesh")
    m1 = k.obj("mesh", "mesh_1", "target_mesh")
    k.dim = (k.pick((8, 16)),)
    k.tid(1)
    face = face_index(k, m0)
    move = k.pick(("none", "offset", "xform") if k.eb.cfg.use_transforms else ("none", "offset"))
    xform = None
    if move == "xform":  # per-thread placements of the query mesh, as the example batches them
        xforms = k.array("transformf", k.dim, "xforms", "poses")
        xform = k.name("xform", "pose")
        k.emit(1, f"{xform} = {xforms}[{k.own}]")
    offset = k.array("vec3f", k.dim, "offsets", "shift") if move == "offset" else None
    vs = [k.name(n) for n in ("v0", "v1", "v2")]
    fetch = k.chance(0.3)
    for slot, (v, (bu, bv)) in enumerate(zip(vs, (("1.0", "0.0"), ("0.0", "1.0"), ("0.0", "0.0")), strict=True)):
        pos = f"wp.mesh_get_point({m0}, {face} * 3 + {slot})" if fetch else \
            f"wp.mesh_eval_position({m0}, {face}, {bu}, {bv})"
        if xform:
            pos = f"wp.transform_point({xform}, {pos})"
        k.emit(1, f"{v} = {pos} + {offset}[{k.own}]" if offset else f"{v} = {pos}")
    lo_fn, hi_fn = _bounds_helpers(k)
    lo, hi = k.name("lower"), k.name("upper")
    margin = f" - wp.vec3({k.lit(0.01, 0.2)})" if k.chance(0.4) else ""
    k.emit(1, f"{lo} = {lo_fn}({lo_fn}({vs[0]}, {vs[1]}), {vs[2]}){margin}")
    k.emit(1, f"{hi} = {hi_fn}({hi_fn}({vs[0]}, {vs[1]}), {vs[2]}){margin.replace(' - ', ' + ')}")
    q = k.name("query")
    k.emit(1, f"{q} = wp.mesh_query_aabb({m1}, {lo}, {hi})")
    fold = k.pick(("count", "count", "last", "accum"))
    hits = k.name({"count": "hits", "last": "last_hit", "accum": "hits"}[fold])
    if fold != "accum":
        k.emit(1, f"{hits} = int({'0' if fold == 'count' else '-1'})")
    f = k.name("f", "other")
    if k.chance(0.5):
        k.emit(1, f"for {f} in {q}:")
    else:
        k.emit(1, f"{f} = int(0)")
        k.emit(1, f"while wp.{k.pick(('mesh_query_next', 'mesh_query_aabb_next'))}({q}, {f}):")
    us = [k.name(n) for n in ("u0", "u1", "u2")]
    for u, (bu, bv) in zip(us, (("1.0", "0.0"), ("0.0", "1.0"), ("0.0", "0.0")), strict=True):
        k.emit(2, f"{u} = wp.mesh_eval_position({m1}, {f}, {bu}, {bv})")
    args = ", ".join(vs + us)
    if k.eb.cfg.use_wide_scalars and k.chance(0.3):  # the double-precision overload
        args = ", ".join(f"wp.vec3d({x})" for x in vs + us)
    k.emit(2, f"if wp.intersect_tri_tri({args}){k.pick((' == 1', ' > 0', ' != 0'))}:")
    if fold == "accum":
        result = k.array("int32", (1,), "result", "total")
        k.emit(3, f"wp.atomic_add({result}, 0, 1)")
        if k.chance(0.5):
            k.result(face, "int32")
    elif fold == "count":
        k.emit(3, f"{hits} += 1")
        k.result(hits, "int32")
    else:
        k.emit(3, f"{hits} = wp.max({hits}, {f})")
        k.result(hits, "int32")
    k.out_names = ["contacts", "out", "result"]


def edges(k) -> None:
    """Closest points between segments (``closest_point_edge_edge``): per-thread edges
    against fixed or mesh edges, folded with a minimum."""
    k.dim = (k.pick((8, 16)),)
    k.tid(1)
    a, b = k.array("vec3f", k.dim, "p1", "edge_a"), k.array("vec3f", k.dim, "q1", "edge_b")
    p1, q1 = k.name("p", "x0"), k.name("q", "x1")
    k.emit(1, f"{p1} = {a}[{k.own}]")
    k.emit(1, f"{q1} = {b}[{k.own}]")
    eps = k.pick(("1e-6", "1.0e-5", "0.0001"))
    st = k.name("st", "closest")
    if k.chance(0.5):
        mesh = k.obj("mesh", "mesh", "mesh_id")
        nearest, face = k.name("nearest"), k.name("face")
        k.emit(1, f"{nearest} = float({k.lit(10.0, 100.0, 1)})")
        k.emit(1, f"for {face} in range({k.rng.randint(2, 4)}):")
        k.emit(2, f"e0 = wp.mesh_get_point({mesh}, {face} * 3)")
        k.emit(2, f"e1 = wp.mesh_get_point({mesh}, {face} * 3 + 1)")
        k.emit(2, f"{st} = wp.closest_point_edge_edge({p1}, {q1}, e0, e1, {eps})")
        k.emit(2, f"{nearest} = wp.min({nearest}, {st}[2])")
        k.result(nearest, "float32")
        k.out_names = ["dist", "out"]
        return
    p2, q2 = k.vlit(-1.5, 1.5), k.vlit(-1.5, 1.5)
    k.emit(1, f"{st} = wp.closest_point_edge_edge({p1}, {q1}, {p2}, {q2}, {eps})")
    features = k.rng.sample(("dist", "c1", "c2", "mid"), k.rng.randint(1, 2))
    for x in features:
        name = k.name({"dist": "d", "c1": "c1", "c2": "c2", "mid": "mid"}[x])
        c1 = f"{p1} + ({q1} - {p1}) * {st}[0]"
        c2 = f"{p2} + ({q2} - {p2}) * {st}[1]"
        expr = {"dist": f"{st}[2]", "c1": c1, "c2": c2, "mid": f"0.5 * ({c1} + {c2})"}[x]
        k.emit(1, f"{name} = {expr}")
        k.result(name, "float32" if x == "dist" else "vec3f")
    k.out_names = ["dist", "closest_out", "out"]
