"""Warp objects a kernel reaches through a ``wp.uint64`` id (meshes, BVHs, hash grids,
volumes ...): how the execution tier makes seeded ones and rebuilds them from a record.

A kind is two functions. ``make`` draws the object's construction data from a numpy
generator as plain JSON-able values (points, triangle indices, a voxel grid ...): that is
what an example records as the parameter's input, ``{"type": "object", "kind": k, "data": ...}``.
``build`` turns that data into the live Warp object on a device (the launch passes its
``.id``); the caller keeps the object alive until the launch is done. ``read`` (optional)
encodes what a kernel may have written into the object (``volume_store``), recorded as an
output. Kinds are defined next to the family that uses them and listed in ``_PROVIDERS``
(modules with an ``OBJECT_KINDS`` dict), imported on first use so that the generator,
which never builds objects, does not pay for numpy and Warp.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_PROVIDERS = ("synth.gen.families.geometry", "synth.gen.families.volumes")


@dataclass(frozen=True, slots=True)
class ObjectKind:
    name: str
    make: Callable[[Any], dict]  # numpy Generator -> construction data (JSON-able)
    build: Callable[[dict, str], Any]  # (data, device) -> Warp object with an ``id``
    read: Callable[[Any], dict] | None = None  # object -> encoded contents, when kernels write it


_KINDS: dict[str, ObjectKind] | None = None


def kinds() -> dict[str, ObjectKind]:
    global _KINDS
    if _KINDS is None:
        found: dict[str, ObjectKind] = {}
        for name in _PROVIDERS:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise
                continue  # that family is not part of this build
            found.update(getattr(module, "OBJECT_KINDS", {}))
        _KINDS = found
    return _KINDS


def kind(name: str) -> ObjectKind:
    try:
        return kinds()[name]
    except KeyError:
        raise KeyError(f"unknown object kind {name!r}; known: {', '.join(sorted(kinds())) or 'none'}") from None
