"""The Warp side of the volume family: seeded NanoVDB volumes (and 2-D/3-D textures) that a
kernel reaches through a ``wp.uint64`` id, built on any device from JSON-able data.

Kept apart from ``synth.gen.families.volumes`` so that generating kernel text never imports
numpy or Warp; ``synth.validate.objects`` reaches these functions through that module's
``OBJECT_KINDS`` only when an example is executed.

Every dense kind covers the fixed voxel box ``BOX`` (index space 0..BOX-1 on each axis; the
generator launches voxel kernels over a sub-box of it and the index-grid values array has
``BOX**3`` entries). ``load_from_numpy`` pads the box to one 8^3 tile, so every voxel of the
box, and a little beyond, is allocated: ``volume_store`` there always lands. ``read`` copies
the box back out with a lookup kernel, which is deterministic whatever order the writing
kernel's threads ran in, as long as each stored only its own voxel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import warp as wp

BOX = 6  # voxels per axis of every dense kind (synth.gen.families.volumes launches within it)


def _float(x: Any) -> Any:
    """A float32 as the shortest text that round-trips (JSON-able; non-finite as strings)."""
    if not np.isfinite(x):
        return "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")
    return float(str(np.float32(x)))


def _placement(rng: np.random.Generator) -> tuple[float, list[float]]:
    """Voxel size and origin such that the box roughly covers [-2, 2]^3, where seeded
    particle positions live, with a little jitter so that samples fall between voxels."""
    size = round(float(rng.uniform(0.5, 0.9)), 2)
    origin = [round(-size * (BOX - 1) / 2 + float(rng.uniform(-0.3, 0.3)), 2) for _ in range(3)]
    return size, origin


def make_float(rng: np.random.Generator) -> dict:
    size, origin = _placement(rng)
    values = np.round(rng.uniform(-2.0, 2.0, (BOX, BOX, BOX)), 2)
    return {"values": values.tolist(), "voxel_size": size, "origin": origin, "background": 0.0}


def make_sdf(rng: np.random.Generator) -> dict:
    """A sphere's signed distance in world units (what collision kernels sample)."""
    size, origin = _placement(rng)
    center = np.array(origin) + size * rng.uniform(1.5, BOX - 2.5, 3)
    radius = float(rng.uniform(0.6, 1.6))
    idx = np.stack(np.meshgrid(*(np.arange(BOX),) * 3, indexing="ij"), axis=-1)
    dist = np.linalg.norm(np.array(origin) + size * idx - center, axis=-1) - radius
    return {"values": np.round(dist, 2).tolist(), "voxel_size": size, "origin": origin,
            "background": round(size * BOX, 2)}


def make_vec(rng: np.random.Generator) -> dict:
    size, origin = _placement(rng)
    values = np.round(rng.uniform(-2.0, 2.0, (BOX, BOX, BOX, 3)), 2)
    return {"values": values.tolist(), "voxel_size": size, "origin": origin, "background": [0.0, 0.0, 0.0]}


def make_int(rng: np.random.Generator) -> dict:
    size, origin = _placement(rng)
    values = rng.integers(0, 8, (BOX, BOX, BOX))
    return {"values": values.tolist(), "voxel_size": size, "origin": origin, "background": 0}


def make_index(rng: np.random.Generator) -> dict:
    """An index grid: a random ~60% of the box active (never empty); its linear indices
    address a values array of BOX**3 entries (at least the voxel count)."""
    size, origin = _placement(rng)
    mask = rng.random((BOX, BOX, BOX)) < 0.6
    mask[BOX // 2, BOX // 2, BOX // 2] = True
    return {"voxels": np.argwhere(mask).tolist(), "voxel_size": size, "origin": origin}


def build_dense(data: dict, device: str) -> wp.Volume:
    bg = data["background"]
    if isinstance(bg, list):
        values, bg = np.array(data["values"], dtype=np.float32), tuple(float(b) for b in bg)
    elif isinstance(bg, int):
        values = np.array(data["values"], dtype=np.int32)
    else:
        values, bg = np.array(data["values"], dtype=np.float32), float(bg)
    return wp.Volume.load_from_numpy(values, min_world=tuple(data["origin"]), voxel_size=data["voxel_size"],
                                     bg_value=bg, device=device)


def build_index(data: dict, device: str) -> wp.Volume:
    points = wp.array(np.array(data["voxels"], dtype=np.int32).reshape(-1, 3), dtype=wp.vec3i, device=device)
    return wp.Volume.allocate_by_voxels(points, voxel_size=data["voxel_size"], translation=tuple(data["origin"]),
                                        device=device)


@wp.kernel
def _read_f(volume: wp.uint64, out: wp.array3d(dtype=float)):
    i, j, k = wp.tid()
    out[i, j, k] = wp.volume_lookup_f(volume, i, j, k)


@wp.kernel
def _read_v(volume: wp.uint64, out: wp.array3d(dtype=wp.vec3)):
    i, j, k = wp.tid()
    out[i, j, k] = wp.volume_lookup_v(volume, i, j, k)


@wp.kernel
def _read_i(volume: wp.uint64, out: wp.array3d(dtype=int)):
    i, j, k = wp.tid()
    out[i, j, k] = wp.volume_lookup_i(volume, i, j, k)


def _read(volume: wp.Volume, kernel: Any, dtype: Any) -> np.ndarray:
    out = wp.zeros((BOX, BOX, BOX), dtype=dtype, device=volume.device)
    wp.launch(kernel, dim=(BOX, BOX, BOX), inputs=[volume.id, out], device=volume.device)
    return out.numpy()


def read_float(volume: wp.Volume) -> dict:
    values = _read(volume, _read_f, float)
    return {"values": np.array([_float(x) for x in values.reshape(-1)], dtype=object).reshape(values.shape).tolist()}


def read_vec(volume: wp.Volume) -> dict:
    values = _read(volume, _read_v, wp.vec3)
    return {"values": np.array([_float(x) for x in values.reshape(-1)], dtype=object).reshape(values.shape).tolist()}


def read_int(volume: wp.Volume) -> dict:
    return {"values": _read(volume, _read_i, int).tolist()}


# -- textures ------------------------------------------------------------------------------
def _texels(rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
    return {"texels": np.round(rng.uniform(-2.0, 2.0, shape), 2).tolist(), "linear": bool(rng.random() < 0.7),
            "wrap": bool(rng.random() < 0.4)}


def make_tex2d(rng: np.random.Generator) -> dict:
    return _texels(rng, (8, 8))


def make_tex3d(rng: np.random.Generator) -> dict:
    return _texels(rng, (4, 4, 4))


def build_texture(data: dict, device: str) -> Any:
    texels = np.array(data["texels"], dtype=np.float32)
    cls = wp.Texture2D if texels.ndim == 2 else wp.Texture3D
    filt = wp.TextureFilterMode.LINEAR if data["linear"] else wp.TextureFilterMode.CLOSEST
    address = wp.TextureAddressMode.WRAP if data["wrap"] else wp.TextureAddressMode.CLAMP
    return cls(texels, filter_mode=filt, address_mode=address, normalized_coords=True, device=device)

