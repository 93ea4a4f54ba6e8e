"""The volume kernel family: kernels over small seeded NanoVDB volumes (float, SDF, vec3,
int and index grids) and 2-D/3-D textures, written the way simulation code uses them
(``synth.gen.families.volume_kernels`` and ``volume_grids`` hold the kernel shapes).

Why a family of its own: the plain generator only has value types, while volume code is
defined by ``wp.uint64`` ids whose meaning lives outside the kernel (a grid's transform,
background, active voxels). The generator says which object each id is with a
``synth.launch.Launch``; the execute tier builds one from seeded data through
``OBJECT_KINDS`` (``synth.validate.objects``) and records what stores wrote via ``read``.

``generate`` imports neither numpy nor Warp: the object kinds reach the Warp side
(``synth.gen.families.volume_objects``) only when called.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from typing import Any

from synth.gen.config import GeneratorConfig
from synth.gen.families.volume_grids import GridShapes
from synth.gen.families.volume_kernels import Spec
from synth.gen.generator import GeneratedKernel
from synth.launch import Launch
from synth.validate.objects import ObjectKind

# Shape -> weight. Particle shapes are 1-D launches, grid shapes 3-D over a voxel box.
SHAPES = {
    "sdf_collide": 3.0,
    "particle_advect": 2.0,
    "particle_labels": 1.0,
    "index_particles": 1.0,
    "advect": 2.5,
    "stencil": 2.0,
    "resample": 1.0,
    "index_voxels": 1.2,
    "texture_lookup": 0.8,
}


def _lazy(name: str) -> Callable[..., Any]:
    """``volume_objects.<name>``, imported (with numpy and Warp) on the first call."""
    def call(*args: Any) -> Any:
        return getattr(importlib.import_module("synth.gen.families.volume_objects"), name)(*args)

    call.__name__ = name
    return call


OBJECT_KINDS = {
    "volume_f": ObjectKind("volume_f", _lazy("make_float"), _lazy("build_dense"), _lazy("read_float")),
    "volume_sdf": ObjectKind("volume_sdf", _lazy("make_sdf"), _lazy("build_dense"), _lazy("read_float")),
    "volume_v": ObjectKind("volume_v", _lazy("make_vec"), _lazy("build_dense"), _lazy("read_vec")),
    "volume_i": ObjectKind("volume_i", _lazy("make_int"), _lazy("build_dense"), _lazy("read_int")),
    "volume_index": ObjectKind("volume_index", _lazy("make_index"), _lazy("build_index"), None),
    "texture2d": ObjectKind("texture2d", _lazy("make_tex2d"), _lazy("build_texture"), None),
    "texture3d": ObjectKind("texture3d", _lazy("make_tex3d"), _lazy("build_texture"), None),
}


def generate(seed: int, cfg: GeneratorConfig) -> GeneratedKernel:
    """The volume kernel module for ``seed``; of ``cfg`` the shapes honour the type knobs
    (``use_transforms``, ``use_matrices``)."""
    rng = random.Random(seed)
    names = list(SHAPES)
    shape = rng.choices(names, [SHAPES[n] for n in names])[0]
    spec = Spec()
    getattr(GridShapes(rng, cfg), shape)(spec)
    kernel_name = f"kernel_{seed}"
    lines = ["import warp as wp", "", "", *spec.helpers, "@wp.kernel",
             f"def {kernel_name}({', '.join(spec.params)}):", *spec.body, ""]
    launch = Launch(spec.dim, shapes=tuple(spec.shapes), objects=tuple(spec.objects))
    return GeneratedKernel(seed, kernel_name, "\n".join(lines), tuple(spec.helper_names), (), launch, "volume")
