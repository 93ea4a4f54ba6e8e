"""Voxel kernels of the volume family: one thread per voxel of a sub-box of the volumes
(``i, j, k = wp.tid()``), each writing a new grid (``volume_store`` at its own voxel, in a
volume it reads nowhere else) or its own element of a 3-D array.

Shapes: semi-Lagrangian advection of a scalar or vector grid through a velocity grid,
stencils over the 6-neighbourhood (diffusion, gradient magnitude, dilation of integer
labels), resampling one grid into another through both grids' transforms, and index
grids gathering from a values array. Particle shapes and the shared choices live in
``synth.gen.families.volume_kernels``; the contracts are stated there.
"""

from __future__ import annotations

from synth.gen.families.volume_kernels import BOX, Shapes, Spec

_AXES = (("i + 1, j, k", "i - 1, j, k"), ("i, j + 1, k", "i, j - 1, k"), ("i, j, k + 1", "i, j, k - 1"))


class GridShapes(Shapes):
    def write(self, s: Spec, t: str, value: str, kind: str, names: tuple[str, ...]) -> None:
        """Write a voxel's result: into a new volume of ``kind`` at (i, j, k), sometimes
        blended with its old value there (its own voxel only), or into a 3-D array."""
        if self.chance(0.35):
            self.output(s, t, self.rng.choice(("out", "result", "dest")), value, "i, j, k")
            return
        dst = self.rng.choice(names)
        s.params.append(f"{dst}: wp.uint64")
        s.objects.append((dst, kind))
        if t != "int" and self.chance(0.3):
            s.body.append(f"    old = {self.lookup(t, dst, 'i', 'j', 'k')}")
            value = f"wp.lerp(old, {value}, {self.scalar_param(s, ('alpha', 'blend'), 0.1, 0.9)})"
        s.body.append(self.store(t, dst, value))

    # -- semi-Lagrangian advection -------------------------------------------------------------
    def advect(self, s: Spec) -> None:
        self.voxel_launch(s)
        t = "float" if self.chance(0.65) else "vec"
        vel = self.rng.choice(("vel", "velocity", "u_grid"))
        s.params.append(f"{vel}: wp.uint64")
        s.objects.append((vel, "volume_v"))
        if t == "float":
            src = self.rng.choice(("density", "src", "phi", "smoke"))
            s.params.append(f"{src}: wp.uint64")
            s.objects.append((src, "volume_f"))
        else:
            src = vel  # self-advection of the velocity
        dt = self.scalar_param(s, ("dt", "step"), 0.01, 0.3)
        b = s.body
        if self.chance(0.6):
            b.append(f"    u = {self.lookup('vec', vel, 'i', 'j', 'k')}")
        else:
            b.append(f"    u = {self.sample('vec', vel, self.ijk(), 'wp.Volume.CLOSEST')}")
        if self.chance(0.5):
            b.append(f"    x = wp.volume_index_to_world({src}, {self.ijk()})")
            b.append(f"    q = wp.volume_world_to_index({src}, x - u * {dt})")
        else:
            b.append(f"    q = {self.ijk()} - wp.volume_world_to_index_dir({src}, u) * {dt}")
        b.append(f"    s = {self.sample(t, src, 'q', self.mode(0.85))}")
        if self.chance(0.35):
            b.append(f"    s = s * {self.scalar_param(s, ('decay', 'damping'), 0.8, 1.0)}")
        self.write(s, t, self.finish(s, t, "s"), "volume_f" if t == "float" else "volume_v",
                   ("dst", "out_grid", "next") if t == "float" else ("vel_out", "dst"))

    # -- 6-neighbourhood stencils ---------------------------------------------------------------
    def stencil(self, s: Spec) -> None:
        self.voxel_launch(s)
        if self.chance(0.25):
            return self.dilate(s)
        src = self.rng.choice(("src", "field", "temperature", "grid"))
        s.params.append(f"{src}: wp.uint64")
        s.objects.append((src, self.rng.choice(("volume_f", "volume_sdf"))))
        axes = sorted(self.rng.sample(range(3), self.rng.randint(1, 3)))
        b = s.body
        diffuse, with_c = self.chance(0.5), self.chance(0.4)
        if diffuse or with_c:
            b.append(f"    c = {self.lookup('float', src, 'i', 'j', 'k')}")
        for a in axes:
            p, m = _AXES[a]
            b.append(f"    {'xyz'[a]}p = {self.lookup('float', src, *p.split(', '))}")
            b.append(f"    {'xyz'[a]}m = {self.lookup('float', src, *m.split(', '))}")
        if diffuse:  # explicit diffusion step
            lap = " + ".join(f"{'xyz'[a]}p + {'xyz'[a]}m" for a in axes) + f" - {2.0 * len(axes)} * c"
            b.append(f"    lap = {lap}")
            value = f"c + {self.scalar_param(s, ('alpha', 'kappa', 'rate'), 0.05, 0.16)} * lap"
        else:  # gradient magnitude by central differences, in world units
            b.append(f"    h = wp.length(wp.volume_index_to_world_dir({src}, wp.vec3(1.0, 0.0, 0.0)))")
            comps = ", ".join(f"{'xyz'[a]}p - {'xyz'[a]}m" if a in axes else "0.0" for a in range(3))
            b.append(f"    g = wp.vec3({comps}) / (2.0 * h)")
            value = "c - wp.length(g)" if with_c else "wp.length(g)"
        self.write(s, "float", self.finish(s, "float", value), "volume_f", ("dst", "out_grid", "next"))

    def dilate(self, s: Spec) -> None:
        src = self.rng.choice(("labels", "mask", "cells"))
        s.params.append(f"{src}: wp.uint64")
        s.objects.append((src, "volume_i"))
        b = s.body
        b.append(f"    c = {self.lookup('int', src, 'i', 'j', 'k')}")
        axes = sorted(self.rng.sample(range(3), self.rng.randint(1, 3)))
        op = self.rng.choice(("wp.max", "wp.min"))
        terms = [self.lookup("int", src, *n.split(", ")) for a in axes for n in _AXES[a]]
        if self.chance(0.5):
            b.append("    best = c")
            for t in terms:
                b.append(f"    best = {op}(best, {t})")
            value = "best"
        else:  # count the neighbours that carry this voxel's label
            b.append("    same = int(0)")
            for t in terms:
                b.append(f"    if {t} == c:")
                b.append("        same += 1")
            value = "same"
        self.write(s, "int", value, "volume_i", ("dst", "out_labels"))

    # -- resampling one grid into another --------------------------------------------------------
    def resample(self, s: Spec) -> None:
        self.voxel_launch(s)
        t = self.rng.choice(("float", "float", "vec"))
        src = self.rng.choice(("src", "source", "coarse"))
        s.params.append(f"{src}: wp.uint64")
        s.objects.append((src, "volume_f" if t == "float" else "volume_v"))
        kind = "volume_f" if t == "float" else "volume_v"
        dst = self.rng.choice(("dst", "target", "fine"))
        s.params.append(f"{dst}: wp.uint64")
        s.objects.append((dst, kind))
        b = s.body
        at = self.ijk() if self.chance(0.5) else f"{self.ijk()} + wp.vec3({self.rng.choice(('0.5', self.lit(-0.5, 0.5)))})"
        b.append(f"    x = wp.volume_index_to_world({dst}, {at})")
        b.append(f"    q = wp.volume_world_to_index({src}, x)")
        b.append(f"    value = {self.sample(t, src, 'q', self.mode(0.8))}")
        if t == "float" and self.chance(0.3):  # ignore what lies outside the source's allocation
            b.append(f"    if wp.volume_lookup_index({src}, wp.int32(q[0]), wp.int32(q[1]), wp.int32(q[2])) < 0:")
            b.append("        value = 0.0")
        b.append(self.store(t, dst, self.finish(s, t, "value")))

    # -- index grids gathering from a values array ---------------------------------------------
    def index_voxels(self, s: Spec) -> None:
        self.voxel_launch(s)
        t = self.rng.choice(("float", "float", "vec"))
        dtype, bg = ("float", self.lit(-1.0, 1.0)) if t == "float" else \
            ("wp.vec3", self.zero3() if self.chance(0.5) else f"wp.vec3({self.lit(-1.0, 1.0)})")
        s.params += ["grid: wp.uint64", f"values: wp.array(dtype={dtype})"]
        s.objects.append(("grid", "volume_index"))
        s.shapes.append(("values", (BOX ** 3,)))
        b = s.body
        b.append("    idx = wp.volume_lookup_index(grid, i, j, k)")
        b.append(f"    v = {bg}")
        b.append("    if idx >= 0:")
        b.append("        v = values[idx]")
        r = self.rng.random()
        if r < 0.35:  # interpolate at the cell's centre as well
            b.append(f"    c = wp.volume_sample_index(grid, {self.ijk()} + {self.rng.choice(('wp.vec3(0.5)', 'wp.vec3(0.5, 0.5, 0.5)'))}, "
                     f"{self.mode()}, values, {bg if t == 'float' else self.zero3()})")
            value = "v - c"
        elif r < 0.55 and t == "float":
            b.append("    n = wp.volume_voxel_count(grid)")
            b.append("    v = v * float(idx + 1) / float(n)")
            value = "v"
        elif r < 0.8 and t == "float":
            b.append(f"    g = {self.zero3()}")
            b.append(f"    c = wp.volume_sample_grad_index(grid, {self.ijk()}, wp.Volume.LINEAR, values, 0.0, g)")
            value = f"v + c * {self.lit(0.1, 1.0)} + wp.length(g)"
        else:
            value = "v"
        self.output(s, t, "out", self.finish(s, t, value), "i, j, k")
