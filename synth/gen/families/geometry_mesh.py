"""Mesh kernel shapes of the geometry family: closest-point (SDF) queries in every sign
mode, ray casting (closest hit, any hit, intersection counts), AABB and sphere overlap
loops and mesh attribute evaluation (pair tests are in ``geometry_pairs``).

Each shape writes into a ``KernelText`` (``synth.gen.families.geometry``): parameters, body
lines, the launch, and the values ``finish`` stores. Values read inside ``if query.result``
are initialised before it, so a miss stores a defined value; loops over query candidates
fold them with counts, min and max only, so the answer does not depend on traversal order.
"""

from __future__ import annotations

from synth.gen.families.geometry_objects import MAX_FACES

_SIGNED = {"point": "", "sign_normal": "epsilon", "sign_parity": "parity", "sign_winding_number": "winding"}
_THIRD = "0.333"


def _point(k, what: str = "p") -> str:
    """The thread's query point: a voxel centre on a 3-D grid, or an input point."""
    p = k.name(what, "x", "pos")
    if len(k.dim) == 3:
        h, o = k.lit(0.4, 1.1), k.lit(-2.0, -0.8)
        k.emit(1, f"{p} = wp.vec3({o}) + wp.vec3(float(i), float(j), float(k)) * {h}")
        return p
    pts = k.array("vec3f", k.dim, "points", "particles", "queries")
    if k.chance(0.25):
        scale = k.value_param("float32", "scale", "spread")
        k.emit(1, f"{p} = {pts}[{k.own}] * {scale}")
    else:
        k.emit(1, f"{p} = {pts}[{k.own}]")
    return p


def _group_root(k, mesh: str) -> str:
    k.grouped(mesh)
    root = k.name("root", "group_root")
    group = k.value_param("int32", "group", "layer") if k.chance(0.4) else str(k.rng.randint(0, 1))
    k.emit(1, f"{root} = wp.mesh_get_group_root({mesh}, {group})")
    return root


def sdf(k) -> None:
    """Closest point on a mesh: signed distance, gradient, normal, surface velocity."""
    mesh = k.obj("mesh", "mesh", "mesh_id", "body")
    if k.chance(0.3):
        k.dim = (4, 4, 4)
        k.tid(3)
    else:
        k.dim = (k.pick((8, 16)),)
        k.tid(1)
    p = _point(k)
    mode = k.pick(("point", "no_sign", "sign_normal", "sign_parity", "sign_winding_number", "no_sign",
                   "furthest_point_no_sign", "point"))
    fn = f"wp.mesh_query_{'point_' if mode != 'furthest_point_no_sign' else ''}{mode}".replace("point_point",
                                                                                               "point")
    bound = k.lit(0.0, 0.5) if mode.startswith("furthest") else k.lit(2.0, 8.0, 1)
    extra = {"sign_normal": [k.pick(("1e-3", "0.0001", "1.0e-4"))],
             "sign_parity": [str(k.pick((1, 3, 5))), k.pick(("1e-3", "0.001", "0.0005"))],
             "sign_winding_number": [k.lit(1.5, 2.5, 1), "0.5"]}.get(mode, [])
    signed = mode in _SIGNED
    legacy = k.chance(0.3)
    if legacy:
        sign, face, u, v = k.name("sign", "inside"), k.name("face"), k.name("u", "bary_u"), k.name("v", "bary_v")
        if signed:
            k.emit(1, f"{sign} = float(0.0)")
        k.emit(1, f"{face} = int(0)")
        k.emit(1, f"{u} = float(0.0)")
        k.emit(1, f"{v} = float(0.0)")
        out_args = ([sign] if signed else []) + [face, u, v]
        call = f"{fn}({mesh}, {p}, {bound}, {', '.join(out_args + extra)})"
        hit = call
        if k.chance(0.4):
            hit = k.name("hit", "found")
            k.emit(1, f"{hit} = {call}")
    else:
        q = k.name("query", "q")
        k.emit(1, f"{q} = {fn}({mesh}, {', '.join([p, bound] + extra)})")
        hit, sign, face, u, v = f"{q}.result", f"{q}.sign", f"{q}.face", f"{q}.u", f"{q}.v"
    features = k.rng.sample(("dist", "grad", "normal", "vel", "face", "closest", "push", "inside"),
                            k.rng.randint(1, 3))
    if not signed:
        features = [f for f in features if f != "inside"] or ["dist"]
    init = {"dist": ("float32", f"float({bound})" if not mode.startswith("furthest") else "float(0.0)"),
            "grad": ("vec3f", "wp.vec3(0.0)"), "normal": ("vec3f", "wp.vec3(0.0, 0.0, 0.0)"),
            "vel": ("vec3f", "wp.vec3()"), "face": ("int32", "int(-1)"), "closest": ("vec3f", p),
            "push": ("vec3f", p), "inside": ("bool", "False")}
    names = {f: k.name({"dist": "d", "grad": "grad", "normal": "n", "vel": "vel", "face": "f", "closest": "cp",
                        "push": "x_new", "inside": "inside_flag"}[f]) for f in features}
    for f in features:
        k.emit(1, f"{names[f]} = {init[f][1]}")
    k.emit(1, f"if {hit}:")
    needs_cp = any(f in features for f in ("dist", "grad", "closest", "push"))
    cp = names.get("closest") or k.name("cp", "closest")
    if needs_cp:
        k.emit(2, f"{cp} = wp.mesh_eval_position({mesh}, {face}, {u}, {v})")
    delta = k.name("delta", "diff")
    if any(f in features for f in ("dist", "grad", "push")):
        k.emit(2, f"{delta} = {p} - {cp}")
    sgn = f" * {sign}" if signed and k.chance(0.8) else ""
    if "dist" in features:
        k.emit(2, f"{names['dist']} = wp.length({delta}){sgn}")
    if "grad" in features:
        k.emit(2, f"{names['grad']} = wp.normalize({delta}){sgn}")
    if "normal" in features:
        k.emit(2, f"{names['normal']} = wp.mesh_eval_face_normal({mesh}, {face})")
    if "vel" in features:
        k.emit(2, f"{names['vel']} = wp.mesh_eval_velocity({mesh}, {face}, {u}, {v})")
    if "face" in features:
        k.emit(2, f"{names['face']} = {face}")
    if "inside" in features:
        k.emit(2, f"{names['inside']} = {sign} < 0.0")
    if "push" in features:
        margin = k.lit(0.05, 0.5)
        k.emit(2, f"if wp.length({delta}) < {margin}:")
        k.emit(3, f"{names['push']} = {cp} + wp.normalize({delta}) * {margin}")
    for f in features:
        k.result(names[f], init[f][0])
    k.out_names = ["sdf", "dist", "out", "field"] if "dist" in features else ["out", "result", "field"]


def _ray(k) -> tuple[str, str]:
    """Ray origin and unit direction: a pinhole camera over a 2-D pixel grid, or per-thread
    origins aimed at a point near the mesh centre (never equal to an origin)."""
    ro, rd = k.name("ro", "origin", "start"), k.name("rd", "dir", "direction")
    if len(k.dim) == 2:
        h, w = k.dim
        cam = f"wp.vec3({k.lit(-0.3, 0.3)}, {k.lit(-0.3, 0.3)}, {k.lit(2.5, 4.0)})"
        sx, sy = k.name("sx", "x"), k.name("sy", "y")
        k.emit(1, f"{sx} = 2.0 * (float(j) + 0.5) / {float(w)} - 1.0")
        k.emit(1, f"{sy} = 2.0 * (float(i) + 0.5) / {float(h)} - 1.0")
        k.emit(1, f"{ro} = {cam}")
        k.emit(1, f"{rd} = wp.normalize(wp.vec3({sx}, {sy}, -{k.lit(1.0, 2.0)}))")
        return ro, rd
    origins = k.array("vec3f", k.dim, "origins", "starts", "rays")
    k.emit(1, f"{ro} = {origins}[{k.own}]")
    target = f"wp.vec3({', '.join(k.lit(-0.2, 0.2, 3) for _ in range(3))})"
    if target.count(".") and not target.replace("-", "").count("0.0,"):
        pass
    k.emit(1, f"{rd} = wp.normalize({target} - {ro})")
    return ro, rd


def raycast(k) -> None:
    """Closest-hit, any-hit and intersection-count ray queries (renderers, visibility,
    inside tests)."""
    mesh = k.obj("mesh", "mesh", "mesh_id", "scene")
    if k.chance(0.45):
        k.dim = k.pick(((4, 4), (4, 8), (8, 8)))
        k.tid(2)
    else:
        k.dim = (k.pick((8, 16)),)
        k.tid(1)
    ro, rd = _ray(k)
    root = _group_root(k, mesh) if k.chance(0.3) else None
    root_arg = f", {root}" if root else ""
    max_t = k.lit(4.0, 20.0, 1)
    mode = k.pick(("closest", "closest", "closest", "anyhit", "count", "occlusion"))
    if mode == "count":
        c = k.name("count", "crossings")
        k.emit(1, f"{c} = wp.mesh_query_ray_count_intersections({mesh}, {ro}, {rd}{root_arg or ', -1'})")
        k.result(c, "int32")
        if k.chance(0.6):
            inside = k.name("inside")
            k.emit(1, f"{inside} = {c} % 2 == 1")
            k.result(inside, "bool")
        k.out_names = ["hits", "count", "out"]
        return
    if mode in ("anyhit", "occlusion"):
        if mode == "anyhit":
            vis = k.name("occluded", "blocked")
            k.emit(1, f"{vis} = wp.mesh_query_ray_anyhit({mesh}, {ro}, {rd}, {max_t}{root_arg})")
            k.result(vis, "bool")
        else:
            occ = k.name("occlusion", "hits")
            n = k.rng.randint(2, 5)
            k.emit(1, f"{occ} = int(0)")
            k.emit(1, f"for s in range({n}):")
            k.emit(2, f"d = wp.normalize({rd} + {k.vlit(-0.3, 0.3)} * float(s))")
            k.emit(2, f"if wp.mesh_query_ray_anyhit({mesh}, {ro}, d, {max_t}{root_arg}):")
            k.emit(3, f"{occ} += 1")
            k.result(occ, "int32")
        k.out_names = ["visibility", "shadow", "out"]
        return
    legacy = k.chance(0.3)
    if legacy:
        t, u, v, sign, n, f = (k.name("t"), k.name("u"), k.name("v"), k.name("sign"), k.name("n", "normal"),
                               k.name("face", "f"))
        for var, init in ((t, "float(0.0)"), (u, "float(0.0)"), (v, "float(0.0)"), (sign, "float(0.0)"),
                          (n, "wp.vec3()"), (f, "int(0)")):
            k.emit(1, f"{var} = {init}")
        hit = f"wp.mesh_query_ray({mesh}, {ro}, {rd}, {max_t}, {t}, {u}, {v}, {sign}, {n}, {f}{root_arg})"
    else:
        q = k.name("query", "hit")
        k.emit(1, f"{q} = wp.mesh_query_ray({mesh}, {ro}, {rd}, {max_t}{root_arg})")
        hit, t, u, v, sign, n, f = (f"{q}.result", f"{q}.t", f"{q}.u", f"{q}.v", f"{q}.sign", f"{q}.normal",
                                    f"{q}.face")
    features = k.rng.sample(("depth", "shade", "pos", "face", "bary", "sign", "vel", "shadow"), k.rng.randint(1, 3))
    init = {"depth": ("float32", k.pick(("float(0.0)", f"float({max_t})"))), "shade": ("float32", "float(0.0)"),
            "pos": ("vec3f", "wp.vec3(0.0)"), "face": ("int32", "int(-1)"), "bary": ("vec3f", "wp.vec3()"),
            "sign": ("float32", "float(0.0)"), "vel": ("vec3f", "wp.vec3(0.0)"), "shadow": ("bool", "False")}
    names = {x: k.name({"depth": "depth", "shade": "shade", "pos": "hit_pos", "face": "hit_face",
                        "bary": "bary", "sign": "facing", "vel": "hit_vel", "shadow": "in_shadow"}[x])
             for x in features}
    for x in features:
        k.emit(1, f"{names[x]} = {init[x][1]}")
    k.emit(1, f"if {hit}:")
    light = k.vlit(-1.0, 1.0)
    if "depth" in features:
        k.emit(2, f"{names['depth']} = {t}")
    if "shade" in features:
        k.emit(2, f"{names['shade']} = wp.max(wp.dot({n}, wp.normalize({light})), 0.0)")
    if "pos" in features or "shadow" in features:
        pos = names.get("pos") or k.name("hit_pos")
        k.emit(2, f"{pos} = {ro} + {rd} * {t}")
        if "shadow" in features:
            k.emit(2, f"{names['shadow']} = wp.mesh_query_ray_anyhit({mesh}, {pos} + {n} * 0.001, "
                      f"wp.normalize({light}), {max_t})")
    if "face" in features:
        k.emit(2, f"{names['face']} = {f}")
    if "bary" in features:
        k.emit(2, f"{names['bary']} = wp.vec3({u}, {v}, 1.0 - {u} - {v})")
    if "sign" in features:
        k.emit(2, f"{names['sign']} = {sign}")
    if "vel" in features:
        k.emit(2, f"{names['vel']} = wp.mesh_eval_velocity({mesh}, {f}, {u}, {v})")
    for x in features:
        if x != "pos" or "pos" in names:
            k.result(names[x], init[x][0])
    k.out_names = ["depth_out", "pixels", "color", "out"]


def overlap(k) -> None:
    """Triangles near a point: an AABB or sphere query folded into counts and extrema."""
    mesh = k.obj("mesh", "mesh", "mesh_id", "surface")
    k.dim = (k.pick((8, 16)),)
    k.tid(1)
    p = _point(k)
    sphere = k.chance(0.4)
    q = k.name("query", "q")
    if sphere:
        radius = k.lit(0.3, 1.5)
        k.emit(1, f"{q} = wp.mesh_query_sphere({mesh}, {p}, {radius})")
    else:
        half = k.vlit(0.2, 1.2) if k.chance(0.5) else f"wp.vec3({k.lit(0.2, 1.2)})"
        lo, hi = k.name("lower", "lo"), k.name("upper", "hi")
        k.emit(1, f"{lo} = {p} - {half}")
        k.emit(1, f"{hi} = {p} + {half}")
        k.emit(1, f"{q} = wp.mesh_query_aabb({mesh}, {lo}, {hi})")
    _face_loop(k, mesh, p, q, aabb=not sphere)
    k.out_names = ["counts", "nearby", "out"]


def _face_loop(k, mesh: str, p: str, q: str, aabb: bool) -> None:
    face = k.name("face", "f", "tri")
    loop = k.pick(("while", "while", "for"))
    folds = k.rng.sample(("count", "nearest", "top", "facing", "hist"), k.rng.randint(1, 3))
    names = {x: k.name({"count": "count", "nearest": "nearest", "top": "last_face", "facing": "facing",
                        "hist": "face_hits"}[x]) for x in folds if x != "hist"}
    init = {"count": ("int32", "int(0)"), "nearest": ("float32", f"float({k.lit(5.0, 100.0, 1)})"),
            "top": ("int32", "int(-1)"), "facing": ("float32", "float(-1.0)")}
    for x in folds:
        if x != "hist":
            k.emit(1, f"{names[x]} = {init[x][1]}")
    if loop == "for":
        k.emit(1, f"for {face} in {q}:")
    else:
        k.emit(1, f"{face} = int(0)")
        nxt = "mesh_query_aabb_next" if aabb and k.chance(0.5) else "mesh_query_next"
        k.emit(1, f"while wp.{nxt}({q}, {face}):")
    depth = 2
    if k.chance(0.3):  # a narrow-phase filter on the face's orientation
        k.emit(2, f"if wp.dot(wp.mesh_eval_face_normal({mesh}, {face}), {k.vlit(-1.0, 1.0)}) > {k.lit(-0.5, 0.5)}:")
        depth = 3
    for x in folds:
        if x == "count":
            k.emit(depth, f"{names[x]} += 1")
        elif x == "nearest":
            c = f"wp.mesh_eval_position({mesh}, {face}, {_THIRD}, {_THIRD})"
            k.emit(depth, f"{names[x]} = wp.min({names[x]}, wp.length({p} - {c}))")
        elif x == "top":
            k.emit(depth, f"{names[x]} = wp.max({names[x]}, {face})")
        elif x == "facing":
            k.emit(depth, f"{names[x]} = wp.max({names[x]}, wp.dot(wp.mesh_eval_face_normal({mesh}, {face}), "
                          f"wp.normalize({p})))")
        else:
            hist = k.array("int32", (MAX_FACES,), "face_hits", "hits")
            k.emit(depth, f"wp.atomic_add({hist}, {face}, 1)")
    for x in folds:
        if x != "hist":
            k.result(names[x], init[x][0])


def face_index(k, mesh: str) -> str:
    face = k.name("face", "f")
    if k.chance(0.5):
        m = k.name("m", "geo")
        k.emit(1, f"{m} = wp.mesh_get({mesh})")
        k.emit(1, f"{face} = {k.own} % ({m}.indices.shape[0] // 3)")
    else:
        k.emit(1, f"{face} = {k.own} % 4")  # every seeded solid has at least 4 faces
    return face


def attributes(k) -> None:
    """Per-face mesh data: vertices, indices, velocities, areas, normals, interpolation."""
    mesh = k.obj("mesh", "mesh", "mesh_id", "cloth")
    k.dim = (k.pick((8, 16)),)
    k.tid(1)
    face = face_index(k, mesh)
    features = k.rng.sample(("area", "normal", "centroid", "interp", "index", "vertex_vel", "advect", "raw"),
                            k.rng.randint(1, 3))
    verts = None
    if any(x in features for x in ("area", "advect")):
        verts = [k.name(n) for n in ("a", "b", "c")]
        for slot, v in enumerate(verts):
            k.emit(1, f"{v} = wp.mesh_get_point({mesh}, {face} * 3 + {slot})")
    if "area" in features:
        area = k.name("area")
        k.emit(1, f"{area} = 0.5 * wp.length(wp.cross({verts[1]} - {verts[0]}, {verts[2]} - {verts[0]}))")
        k.result(area, "float32")
    if "normal" in features:
        n = k.name("n", "normal")
        k.emit(1, f"{n} = wp.mesh_eval_face_normal({mesh}, {face})")
        k.result(n, "vec3f")
    if "centroid" in features:
        c = k.name("centroid", "center")
        k.emit(1, f"{c} = wp.mesh_eval_position({mesh}, {face}, {_THIRD}, {_THIRD})")
        k.result(c, "vec3f")
    if "interp" in features:
        bary = k.array("float32", k.dim, "weights", "bary")
        u, v = k.name("u", "bu"), k.name("v", "bv")
        k.emit(1, f"{u} = wp.clamp(wp.abs({bary}[{k.own}]) * 0.5, 0.0, 1.0)")
        k.emit(1, f"{v} = 0.5 * (1.0 - {u})")
        for fn in k.rng.sample(("position", "velocity"), k.rng.randint(1, 2)):
            x = k.name("x" if fn == "position" else "vel")
            k.emit(1, f"{x} = wp.mesh_eval_{fn}({mesh}, {face}, {u}, {v})")
            k.result(x, "vec3f")
    if "index" in features:
        idx = k.name("vertex", "idx")
        k.emit(1, f"{idx} = wp.mesh_get_index({mesh}, {face} * 3 + {k.rng.randint(0, 2)})")
        k.result(idx, "int32")
    if "vertex_vel" in features:
        vv = k.name("v0", "vertex_vel")
        k.emit(1, f"{vv} = wp.mesh_get_velocity({mesh}, {face} * 3 + {k.rng.randint(0, 2)})")
        k.result(vv, "vec3f")
    if "advect" in features:
        dt = k.value_param("float32", "dt", "step") if k.chance(0.5) else k.lit(0.01, 0.1, 3)
        moved = k.name("moved", "swept")
        vel = f"wp.mesh_get_velocity({mesh}, {face} * 3)"
        k.emit(1, f"{moved} = {verts[0]} + {vel} * {dt}")
        k.result(moved, "vec3f")
    if "raw" in features:
        m = k.name("mesh_data", "geom")
        k.emit(1, f"{m} = wp.mesh_get({mesh})")
        pv = k.name("pv", "vertex_pos")
        k.emit(1, f"{pv} = {m}.points[{m}.indices[{face} * 3 + {k.rng.randint(0, 2)}]]")
        k.result(pv, "vec3f")
    k.out_names = ["out", "face_data", "result"]
