"""Kernel shapes of the volume family, as real NanoVDB code is written: SDF collision with
gradients, semi-Lagrangian advection, stencils that write a new grid from an old one,
index grids gathering from a values array, particles moved through a velocity grid,
integer label grids, and resampling one grid into another.

Each shape is a method of ``Shapes`` that appends parameters, body lines and object kinds
to a ``Spec``; ``synth.gen.families.volumes`` assembles the module. The shapes are written so
the family's contracts hold by construction (``tests/synth/gen/families/test_family_volumes.py`` checks them
over many seeds with the independent ``synth.quality.checks`` checker):

- race-free: a voxel kernel launches over a sub-box of the volume (``volume_objects.BOX``)
  with ``i, j, k = wp.tid()``; it stores only at its own voxel ``(i, j, k)``, in a volume
  it reads nowhere else, or at its own array element; particle kernels own ``out[tid]``;
- defined: lookups outside the active region return the background, samples blend with it;
  divisions are by voxel counts (>= 1) or literals, ``wp.normalize`` of zero is zero;
- live: every sample reaches a store, an output, or a condition that guards one.

Choices (typed ``_f/_v/_i`` or generic ``dtype=`` calls, LINEAR or CLOSEST sampling,
world- or index-space arithmetic, helpers, parameters or literals) come only from the
``random.Random`` handed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from synth.gen.config import GeneratorConfig

BOX = 6  # keep equal to synth.gen.families.volume_objects.BOX (that module imports Warp)
_ZERO3 = ("wp.vec3()", "wp.vec3(0.0)", "wp.vec3(0.0, 0.0, 0.0)")


@dataclass(slots=True)
class Spec:
    params: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)  # source lines of @wp.func helpers
    helper_names: list[str] = field(default_factory=list)
    dim: tuple[int, ...] = (8,)
    objects: list[tuple[str, str]] = field(default_factory=list)
    shapes: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)


class Shapes:
    def __init__(self, rng: random.Random, cfg: GeneratorConfig) -> None:
        self.rng = rng
        self.cfg = cfg  # the type knobs: no transforms or matrices when they are off

    # -- small choices ------------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def lit(self, lo: float, hi: float) -> str:
        """A float literal in [lo, hi]; rounding never leaves the range (a step size of
        0.05 must not print as 0.0 and then divide)."""
        x = self.rng.uniform(lo, hi)
        v = round(x, self.rng.choice((1, 2, 2, 3)))
        if not lo <= v <= hi:
            v = round(x, 3) if lo <= round(x, 3) <= hi else lo
        return repr(v)

    def mode(self, linear: float = 0.7) -> str:
        return "wp.Volume.LINEAR" if self.chance(linear) else "wp.Volume.CLOSEST"

    def scalar_param(self, s: Spec, names: tuple[str, ...], lo: float, hi: float) -> str:
        """A kernel parameter (seeded by the execute tier) or a literal, as real code has both."""
        if self.chance(0.45):
            name = self.rng.choice([n for n in names if f"{n}: float" not in s.params])
            s.params.append(f"{name}: float")
            return name
        return self.lit(lo, hi)

    def zero3(self) -> str:
        return self.rng.choice(_ZERO3)

    def ijk(self) -> str:
        return self.rng.choice(("wp.vec3(float(i), float(j), float(k))", "wp.vec3(wp.float32(i), wp.float32(j), wp.float32(k))"))

    def voxel_launch(self, s: Spec) -> None:
        s.dim = tuple(self.rng.randint(3, BOX) for _ in range(3))
        s.body.append("    i, j, k = wp.tid()")

    def particle_launch(self, s: Spec) -> None:
        s.dim = (self.rng.choice((8, 12, 16, 32)),)
        s.body.append("    tid = wp.tid()")

    def load_position(self, s: Spec) -> None:
        """``x``: the thread's particle, sometimes first moved into the volume's frame (a
        body transform, a literal scale and offset) as colliders and emitters do."""
        r, b = self.rng.random(), s.body
        if r < 0.2 and self.cfg.use_transforms:
            s.params.append(self.rng.choice(("xform: wp.transform", "body: wp.transform")))
            xf = s.params[-1].split(":")[0]
            inverse = self.chance(0.6)
            b.append(f"    x = wp.transform_point({f'wp.transform_inverse({xf})' if inverse else xf}, positions[tid])")
        elif r < 0.4:
            b.append(f"    x = positions[tid] * {self.lit(0.5, 2.0)} + wp.vec3({self.lit(-1.0, 1.0)}, "
                     f"{self.lit(-1.0, 1.0)}, {self.lit(-1.0, 1.0)})")
        else:
            b.append("    x = positions[tid]")

    # -- calls, typed or generic ----------------------------------------------------------
    def sample(self, t: str, vol: str, q: str, mode: str) -> str:
        if t == "int":
            if self.chance(0.5):
                return f"wp.volume_sample_i({vol}, {q})"
            return f"wp.volume_sample({vol}, {q}, wp.Volume.CLOSEST, dtype=int)"
        typed, generic = ("f", self.rng.choice(("float", "wp.float32"))) if t == "float" else ("v", "wp.vec3")
        if self.chance(0.5):
            return f"wp.volume_sample_{typed}({vol}, {q}, {mode})"
        return f"wp.volume_sample({vol}, {q}, {mode}, dtype={generic})"

    def lookup(self, t: str, vol: str, i: str, j: str, k: str) -> str:
        typed = {"float": "f", "vec": "v", "int": "i"}[t]
        generic = {"float": "float", "vec": "wp.vec3", "int": "int"}[t]
        if self.chance(0.55):
            return f"wp.volume_lookup_{typed}({vol}, {i}, {j}, {k})"
        return f"wp.volume_lookup({vol}, {i}, {j}, {k}, dtype={generic})"

    def store(self, t: str, vol: str, value: str) -> str:
        typed = {"float": "f", "vec": "v", "int": "i"}[t]
        if self.chance(0.5):
            return f"    wp.volume_store_{typed}({vol}, i, j, k, {value})"
        return f"    wp.volume_store({vol}, i, j, k, {value})"

    def finish(self, s: Spec, t: str, value: str) -> str:
        """An optional last touch on a float or vec3 result before it is written (a
        clamp, a gain, a bias ...), as simulation code shapes what it stores."""
        r = self.rng.random()
        if t == "float":
            if r < 0.12:
                return f"wp.clamp({value}, {self.lit(-3.0, -0.5)}, {self.lit(0.5, 3.0)})"
            if r < 0.26:
                return f"{value} * {self.scalar_param(s, ('scale', 'gain', 'weight'), 0.2, 2.0)}"
            if r < 0.34:
                return f"wp.max({value}, {self.rng.choice(('0.0', self.lit(-1.0, 1.0)))})"
            if r < 0.4:
                return f"wp.abs({value})"
            if r < 0.48:
                return f"({value}) * {self.lit(0.1, 4.0)} + {self.lit(-1.0, 1.0)}"
            if r < 0.54:
                return f"wp.smoothstep({self.lit(-2.0, -0.1)}, {self.lit(0.1, 2.0)}, {value})"
        elif t == "vec":
            if r < 0.2:
                return f"{value} * {self.scalar_param(s, ('scale', 'gain', 'damping'), 0.2, 2.0)}"
            if r < 0.28:
                return f"wp.normalize({value})"
            if r < 0.38:
                return f"{value} + wp.vec3({self.lit(-1.0, 1.0)}, {self.lit(-1.0, 1.0)}, {self.lit(-1.0, 1.0)})"
            if r < 0.46:
                return f"wp.cw_mul({value}, wp.vec3({self.lit(0.1, 2.0)}, {self.lit(0.1, 2.0)}, {self.lit(0.1, 2.0)}))"
        return value

    def output(self, s: Spec, t: str, name: str, value: str, own: str) -> None:
        dtype = {"float": "float", "vec": "wp.vec3", "int": "int", "wp.float32": "wp.float32"}[t]
        ndim = own.count(",") + 1
        s.params.append(f"{name}: wp.array(dtype={dtype})" if ndim == 1 else
                        self.rng.choice((f"{name}: wp.array3d(dtype={dtype})", f"{name}: wp.array(dtype={dtype}, ndim=3)")))
        s.body.append(f"    {name}[{own}] = {value}")

    # -- SDF collision ----------------------------------------------------------------------
    def sdf_collide(self, s: Spec) -> None:
        self.particle_launch(s)
        vol = self.rng.choice(("sdf", "volume", "phi", "collider"))
        s.params.append(f"{vol}: wp.uint64")
        s.objects.append((vol, "volume_sdf"))
        s.params.append("positions: wp.array(dtype=wp.vec3)")
        with_vel = self.chance(0.5)
        if with_vel:
            s.params.append("velocities: wp.array(dtype=wp.vec3)")
        b = s.body
        self.load_position(s)
        if with_vel:
            b.append("    v = velocities[tid]")
        if self.chance(0.3):
            self.sdf_helpers(s)
            b.append(f"    d = sample_sdf({vol}, x)")
            b.append(f"    n = sdf_normal({vol}, x, {self.lit(0.05, 0.5)})")
        else:
            b.append(f"    q = wp.volume_world_to_index({vol}, x)")
            r = self.rng.random()
            if r < 0.35:
                b.append(f"    grad = {self.zero3()}")
                b.append(f"    d = wp.volume_sample_grad_f({vol}, q, wp.Volume.LINEAR, grad)")
            elif r < 0.7:
                b.append(f"    grad = {self.zero3()}")
                b.append(f"    d = wp.volume_sample_grad({vol}, q, wp.Volume.LINEAR, grad, dtype=float)")
            else:  # central differences in index space
                h, mode = self.lit(0.2, 1.0), self.mode(0.85)
                b.append(f"    d = {self.sample('float', vol, 'q', mode)}")
                for axis, e in zip("xyz", ("wp.vec3({h}, 0.0, 0.0)", "wp.vec3(0.0, {h}, 0.0)", "wp.vec3(0.0, 0.0, {h})")):
                    e = e.format(h=h)
                    b.append(f"    d{axis} = {self.sample('float', vol, f'q + {e}', mode)} - "
                             f"{self.sample('float', vol, f'q - {e}', mode)}")
                b.append("    grad = wp.vec3(dx, dy, dz)")
            to_world = self.rng.choice(("wp.volume_index_to_world_dir({vol}, grad)", "grad",
                                        "wp.volume_world_to_index_dir({vol}, grad)"))
            b.append(f"    n = wp.normalize({to_world.format(vol=vol)})")
        margin = self.scalar_param(s, ("margin", "thickness", "radius"), 0.0, 0.5)
        if self.chance(0.3):  # a penalty force instead of a projection
            stiffness = self.scalar_param(s, ("stiffness", "ke", "gain"), 10.0, 1000.0)
            b.append(f"    penetration = wp.max({margin} - d, 0.0)")
            force = f"n * penetration * {stiffness}"
            if with_vel:
                b.append(f"    f = {force} - v * {self.lit(0.1, 2.0)} * penetration")
                force = "f"
            self.output(s, "vec", "forces", force, "tid")
            return
        b.append(f"    if d < {margin}:")
        b.append(f"        x = x - n * (d - {margin})")
        if with_vel:
            b.append("        vn = wp.dot(v, n)")
            b.append("        if vn < 0.0:")
            restitution = self.scalar_param(s, ("restitution", "bounce"), 0.0, 1.0)
            b.append(f"            v = v - (1.0 + {restitution}) * vn * n")
        self.output(s, "vec", self.rng.choice(("new_positions", "x_out", "positions_out")), "x", "tid")
        if with_vel:
            self.output(s, "vec", self.rng.choice(("new_velocities", "v_out")), self.finish(s, "vec", "v"), "tid")
        if self.chance(0.4):
            self.output(s, "float", "distance", self.finish(s, "float", "d"), "tid")

    def sdf_helpers(self, s: Spec) -> None:
        mode = self.mode(0.9)
        fn = self.sample("float", "volume", "wp.volume_world_to_index(volume, x)", mode)
        s.helpers += ["@wp.func", "def sample_sdf(volume: wp.uint64, x: wp.vec3) -> float:", f"    return {fn}", "", ""]
        s.helpers += ["@wp.func", "def sdf_normal(volume: wp.uint64, x: wp.vec3, eps: float) -> wp.vec3:"]
        for axis, e in zip("xyz", ("wp.vec3(eps, 0.0, 0.0)", "wp.vec3(0.0, eps, 0.0)", "wp.vec3(0.0, 0.0, eps)")):
            s.helpers.append(f"    d{axis} = sample_sdf(volume, x + {e}) - sample_sdf(volume, x - {e})")
        s.helpers += ["    return wp.normalize(wp.vec3(dx, dy, dz))", "", ""]
        s.helper_names += ["sample_sdf", "sdf_normal"]

    # -- particles through a velocity grid ------------------------------------------------
    def particle_advect(self, s: Spec) -> None:
        self.particle_launch(s)
        vol = self.rng.choice(("velocity", "vel", "field", "wind"))
        s.params += [f"{vol}: wp.uint64", "positions: wp.array(dtype=wp.vec3)"]
        s.objects.append((vol, "volume_v"))
        dt = self.scalar_param(s, ("dt", "step"), 0.01, 0.2)
        mode, b = self.mode(0.8), s.body
        self.load_position(s)
        b.append(f"    q = wp.volume_world_to_index({vol}, x)")
        jac = self.chance(0.3) and self.cfg.use_matrices
        if jac:
            b.append(f"    J = wp.mat33({self.rng.choice(('', '0.0'))})")
            b.append(f"    u = wp.volume_sample_grad({vol}, q, wp.Volume.LINEAR, J, dtype=wp.vec3)")
        else:
            b.append(f"    u = {self.sample('vec', vol, 'q', mode)}")
        if self.chance(0.4):  # midpoint (RK2) step in index space
            b.append(f"    mid = q + wp.volume_world_to_index_dir({vol}, u) * (0.5 * {dt})")
            b.append(f"    u = {self.sample('vec', vol, 'mid', mode)}")
        if self.chance(0.5):
            b.append(f"    x_new = wp.volume_index_to_world({vol}, q + wp.volume_world_to_index_dir({vol}, u * {dt}))")
        else:
            b.append(f"    x_new = x + u * {dt}")
        self.output(s, "vec", self.rng.choice(("new_positions", "x_out")), "x_new", "tid")
        if jac:  # the velocity's divergence and curl magnitude, from its Jacobian
            self.output(s, "float", "divergence", self.finish(s, "float", "J[0, 0] + J[1, 1] + J[2, 2]"), "tid")
        elif self.chance(0.4):
            self.output(s, "float", "speed", self.finish(s, "float", "wp.length(u)"), "tid")

    # -- integer label grids ------------------------------------------------------------------
    def particle_labels(self, s: Spec) -> None:
        self.particle_launch(s)
        vol = self.rng.choice(("labels", "material", "cells"))
        s.params += [f"{vol}: wp.uint64", "positions: wp.array(dtype=wp.vec3)"]
        s.objects.append((vol, "volume_i"))
        b = s.body
        self.load_position(s)
        b.append(f"    q = wp.volume_world_to_index({vol}, x)")
        b.append(f"    label = {self.sample('int', vol, 'q', '')}")
        r = self.rng.random()
        if r < 0.3:  # a per-material table, indexed by the label
            s.params.append("density: wp.array(dtype=float)")
            value = "density[label % density.shape[0]]"
            if self.chance(0.5):
                value = f"{value} * wp.float32(wp.volume_voxel_count({vol}))"
            self.output(s, "float", "out", self.finish(s, "float", value), "tid")
        elif r < 0.5:  # particles per material
            if self.chance(0.5):
                s.params.append(self.rng.choice(("counts: wp.array(dtype=int)", "histogram: wp.array(dtype=int)")))
                amount = self.rng.choice(("1", "int(1)"))
            else:  # mass per material
                s.params += ["masses: wp.array(dtype=float)", "totals: wp.array(dtype=float)"]
                amount = self.finish(s, "float", "masses[tid]")
            acc = s.params[-1].split(":")[0]
            b.append(f"    wp.atomic_add({acc}, label % {acc}.shape[0], {amount})")
        elif r < 0.75:
            b.append(f"    inside = wp.where(label > {self.rng.randint(0, 6)}, {self.lit(0.1, 2.0)}, {self.lit(-1.0, 0.0)})")
            self.output(s, "float", "mask", self.finish(s, "float", "inside"), "tid")
        else:
            b.append("    cell = wp.vec3(wp.round(q[0]), wp.round(q[1]), wp.round(q[2]))")
            b.append(f"    center = wp.volume_index_to_world({vol}, cell)")
            self.output(s, "vec", "snapped", self.finish(s, "vec", "center"), "tid")
            self.output(s, "int", "ids", f"label * {self.rng.randint(2, 9)} + {self.rng.randint(0, 9)}"
                        if self.chance(0.5) else "label", "tid")

    # -- index grids, particles sampling a values array ------------------------------------------
    def index_particles(self, s: Spec) -> None:
        self.particle_launch(s)
        t = self.rng.choice(("float", "float", "vec"))
        dtype, bg = ("float", "0.0") if t == "float" else ("wp.vec3", self.zero3())
        s.params += ["grid: wp.uint64", f"values: wp.array(dtype={dtype})", "positions: wp.array(dtype=wp.vec3)"]
        s.objects.append(("grid", "volume_index"))
        s.shapes.append(("values", (BOX ** 3,)))
        b = s.body
        self.load_position(s)
        b.append("    q = wp.volume_world_to_index(grid, x)")
        if t == "float" and self.chance(0.5):
            b.append(f"    g = {self.zero3()}")
            b.append(f"    phi = wp.volume_sample_grad_index(grid, q, wp.Volume.LINEAR, values, {bg}, g)")
            self.output(s, "float", "out", self.finish(s, "float", "phi"), "tid")
            if self.chance(0.5):
                self.output(s, "vec", "normals", "wp.normalize(wp.volume_index_to_world_dir(grid, g))", "tid")
            else:  # step down the gradient, in world space
                step = self.scalar_param(s, ("step", "dt", "rate"), 0.05, 0.5)
                self.output(s, "vec", "x_out", f"x - wp.volume_index_to_world_dir(grid, g) * phi * {step}", "tid")
            return
        b.append(f"    phi = wp.volume_sample_index(grid, q, {self.mode()}, values, {bg})")
        if self.chance(0.4):  # is the particle in an active voxel at all?
            b.append("    idx = wp.volume_lookup_index(grid, int(wp.round(q[0])), int(wp.round(q[1])), int(wp.round(q[2])))")
            b.append("    if idx < 0:")
            b.append(f"        phi = {self.lit(-1.0, 1.0) if t == 'float' else self.zero3()}")
        self.output(s, t, "out", self.finish(s, t, "phi"), "tid")

    # -- textures ------------------------------------------------------------------------------
    def texture_lookup(self, s: Spec) -> None:
        self.particle_launch(s)
        three = self.chance(0.4)
        vec = "wp.vec3" if three else "wp.vec2"
        s.params.append("tex: wp.Texture3D" if three else "tex: wp.Texture2D")
        s.objects.append(("tex", "texture3d" if three else "texture2d"))
        s.params.append(f"uv: wp.array(dtype={vec})")
        b = s.body
        b.append("    c = uv[tid]")
        if self.chance(0.75):  # coordinates from data in [-2, 2] mapped into [0, 1] and beyond
            b.append(f"    c = (c + {vec}({self.lit(1.0, 3.0)})) * {self.lit(0.1, 0.5)}")
        split = self.chance(0.4)

        def tap(at: str) -> str:
            args = ", ".join(f"{at}[{n}]" for n in range(3 if three else 2)) if split else at
            return f"wp.texture_sample(tex, {args}, dtype=float)"

        b.append(f"    value = {tap('c')}")
        if self.chance(0.4):  # finite-difference slope of the texture along its axes
            h = self.lit(0.01, 0.2)
            axes = ("1.0, 0.0, 0.0", "0.0, 1.0, 0.0", "0.0, 0.0, 1.0") if three else ("1.0, 0.0", "0.0, 1.0")
            for n, e in enumerate(axes):
                b.append(f"    e{n} = {vec}({e}) * {h}")
                b.append(f"    d{n} = {tap(f'(c + e{n})')} - {tap(f'(c - e{n})')}")
            slope = f"{vec}({', '.join(f'd{n}' for n in range(len(axes)))})"
            if self.chance(0.5):
                self.output(s, "float", "slope", f"wp.length({slope}) / (2.0 * {h})", "tid")
                self.output(s, "float", "out", self.finish(s, "float", "value"), "tid")
            else:
                self.output(s, "float", "out", self.finish(s, "float", f"value - wp.length({slope})"), "tid")
            return
        if self.chance(0.35):  # a height field displacing points
            s.params.append("points: wp.array(dtype=wp.vec3)")
            height = self.scalar_param(s, ("height", "scale", "amplitude"), 0.1, 2.0)
            self.output(s, "vec", "displaced", f"points[tid] + wp.vec3(0.0, value * {height}, 0.0)", "tid")
            return
        self.output(s, "float", "out", self.finish(s, "float", "value"), "tid")
