"""Seeded inputs for a kernel, its CPU launch, and the JSON form of both (``examples``).

Inputs are derived from the kernel's parameter types as Warp resolved them (never from
what the generator is assumed to emit), so new array ranks and dtypes work unchanged.

Launch convention (plain kernels; a ``synth.launch.Launch`` overrides it): the launch has as many
dimensions as the highest-rank array parameter (1 if there is none), each of extent
``EXTENT[ndim]``, and every array parameter has that extent along each of its own
dimensions. Generated kernels index arrays with ``wp.tid()`` or wrap modulo the shape, so
this launch is always in bounds. A ``Launch`` may instead give the grid, a block size (the
kernel then runs through ``wp.launch_tiled``, as tile kernels do), array shapes, and the
object kind behind each ``wp.uint64`` id parameter (``synth.validate.objects``); an example records
``block_dim`` when there is one, and an object input as ``{"type": "object", "kind": ...,
"data": <construction data>}``, so replaying needs nothing but the example.

An example is encoded once and the launch runs on the *decoded* encoding, so the recorded
inputs are exactly what ran; ``replay`` is the same path, which is what makes an example
reproducible: replaying it gives the recorded outputs bit for bit.

Value encoding, ``{"type": <Warp type name>, "data": ...}``; arrays add ``"shape"`` and
name the element type in ``"dtype"``; struct data is ``{field: encoding}``. Numbers are the
shortest text that round-trips at the value's own precision; non-finite floats are the
strings ``"nan"``, ``"inf"``, ``"-inf"`` (JSON has no literal for them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import warp as wp

from synth import warp_adapter
from synth.validate import objects
from synth.launch import Launch

EXTENT = {1: 8, 2: 4, 3: 3, 4: 2}  # per-dimension launch extent by launch rank
N_EXAMPLES = 2
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class UnsupportedParam(TypeError):
    """A parameter type the input builder cannot produce (the record keeps this outcome)."""


def launch_dim(params: list[tuple[str, type]]) -> tuple[int, ...]:
    ndim = max((t.ndim for _, t in params if wp.types.is_array(t)), default=1)
    if ndim not in EXTENT:
        raise UnsupportedParam(f"array rank {ndim}")
    return (EXTENT[ndim],) * ndim


def _type_name(t: Any) -> str:
    if wp.types.type_is_struct(t):
        return t.key
    return "bool" if t is bool or t is wp.bool else wp.types.type_repr(t)


def _random_scalars(scalar: type, count: int, rng: np.random.Generator) -> np.ndarray:
    np_dtype = wp.dtype_to_numpy(scalar)
    if scalar is wp.bool or scalar is bool:
        return rng.random(count) < 0.5
    if wp.types.type_is_float(scalar):
        # Two decimals: readable examples, exactly representable after rounding to dtype.
        return np.round(rng.uniform(-2.0, 2.0, count), 2).astype(np_dtype)
    if wp.types.type_is_int(scalar):
        # Non-negative and small: safe as loop bounds and as indices wrapped modulo a shape.
        return rng.integers(0, 8, count).astype(np_dtype)
    raise UnsupportedParam(f"scalar type {_type_name(scalar)}")


def _number(x: np.generic) -> Any:
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if not np.isfinite(x):
        return "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")
    return float(str(x))  # numpy prints the shortest repr that round-trips at x's precision


def _encode_array(dtype: type, values: np.ndarray, ndim: int) -> dict:
    flat = [_number(x) for x in values.reshape(-1)]
    data = np.array(flat, dtype=object).reshape(values.shape).tolist() if flat else []
    return {"type": "array", "dtype": _type_name(dtype), "shape": list(values.shape[:ndim]), "data": data}


def _random_value(t: Any, rng: np.random.Generator, dim: tuple[int, ...],
                  shape: tuple[int, ...] | None = None) -> dict:
    """A random value of Warp type ``t``, already in its encoded form (``shape``: an array's
    own shape, else the launch's)."""
    if wp.types.is_array(t):
        scalar, inner = warp_adapter.composite_layout(t.dtype)
        if shape is None:
            shape = dim[: t.ndim] if t.ndim <= len(dim) else (dim[0],) * t.ndim
        values = _random_scalars(scalar, int(np.prod(shape + inner)), rng).reshape(shape + inner)
        return _encode_array(t.dtype, values, t.ndim)
    if wp.types.type_is_struct(t):
        fields = {n: _random_value(ft, rng, dim) for n, ft in warp_adapter.struct_fields(t).items()}
        return {"type": _type_name(t), "data": fields}
    scalar, inner = warp_adapter.composite_layout(t)
    values = _random_scalars(scalar, int(np.prod(inner, dtype=int)), rng)
    data = [_number(x) for x in values]  # nested like the value's shape: a mat33 is 3 rows
    return {"type": _type_name(t), "data": np.array(data, dtype=object).reshape(inner).tolist() if inner else data[0]}


def _decode_numbers(data: Any, np_dtype: np.dtype) -> np.ndarray:
    def fix(v: Any) -> Any:
        return [fix(x) for x in v] if isinstance(v, list) else _NONFINITE.get(v, v) if isinstance(v, str) else v

    return np.array(fix(data), dtype=np_dtype)


def _to_warp(t: Any, enc: dict, device: str = "cpu") -> Any:
    """The launch argument for an encoded value of Warp type ``t`` (for an object: the live
    object; the launch passes its ``id`` and the caller holds it until the launch is done)."""
    if enc.get("type") == "object":
        return objects.kind(enc["kind"]).build(enc["data"], device)
    if wp.types.is_array(t):
        scalar, inner = warp_adapter.composite_layout(t.dtype)
        values = _decode_numbers(enc["data"], wp.dtype_to_numpy(scalar)).reshape(tuple(enc["shape"]) + inner)
        return wp.array(values, dtype=t.dtype, device=device)
    if wp.types.type_is_struct(t):
        instance = t()
        for name, ft in warp_adapter.struct_fields(t).items():
            setattr(instance, name, _to_warp(ft, enc["data"][name], device))
        return instance
    scalar, inner = warp_adapter.composite_layout(t)
    values = _decode_numbers(enc["data"], wp.dtype_to_numpy(scalar))
    return t(*values.reshape(-1).tolist()) if inner else values.item()


def _launch(kernel: wp.Kernel, params: list[tuple[str, type]], dim: list[int], inputs: dict,
            device: str = "cpu", block_dim: int | None = None) -> dict:
    values = {name: _to_warp(t, inputs[name], device) for name, t in params}
    built = {name: v for name, v in values.items() if inputs[name].get("type") == "object"}
    # A wp.uint64 parameter takes the object's id; a typed one (wp.Texture2D ...) the object.
    args = [(built[name].id if t is wp.uint64 else built[name]) if name in built else values[name]
            for name, t in params]
    if block_dim is None:
        wp.launch(kernel, dim=tuple(dim), inputs=args, device=device)
    else:
        wp.launch_tiled(kernel, dim=list(dim), inputs=args, block_dim=block_dim, device=device)
    # Every array after the launch: outputs, and inputs a kernel may also have written.
    outputs = {name: _encode_array(t.dtype, values[name].numpy(), t.ndim)
               for name, t in params if wp.types.is_array(t)}
    for name, t in params:  # arrays inside struct parameters are outputs too ("params.out")
        if wp.types.type_is_struct(t):
            for field, ft in warp_adapter.struct_fields(t).items():
                if wp.types.is_array(ft):
                    outputs[f"{name}.{field}"] = _encode_array(ft.dtype, getattr(values[name], field).numpy(), ft.ndim)
    for name, obj in built.items():  # objects a kernel may write (volume_store): their contents
        kind = objects.kind(inputs[name]["kind"])
        if kind.read is not None:
            outputs[name] = {"type": "object", "kind": kind.name, "data": kind.read(obj)}
    return outputs


def _inputs(params: list[tuple[str, type]], rng: np.random.Generator, dim: tuple[int, ...],
            launch: Launch | None) -> dict:
    inputs: dict[str, dict] = {}
    for name, t in params:  # objects first: arrays may hold what an object was built from
        kind = launch.object_of(name) if launch is not None else None
        if kind is not None:
            inputs[name] = {"type": "object", "kind": kind, "data": objects.kind(kind).make(rng)}
    for name, t in params:
        source = launch.derived_from(name) if launch is not None else None
        if name in inputs:
            continue
        if source is not None and wp.types.is_array(t):
            scalar, _ = warp_adapter.composite_layout(t.dtype)
            values = np.asarray(inputs[source[0]]["data"][source[1]], dtype=wp.dtype_to_numpy(scalar))
            inputs[name] = _encode_array(t.dtype, values, t.ndim)
        else:
            inputs[name] = _random_value(t, rng, dim, launch.shape_of(name) if launch is not None else None)
            if launch is not None and name in launch.sorted and wp.types.is_array(t):
                values = np.array(inputs[name]["data"], dtype=object).reshape(-1)
                inputs[name]["data"] = np.array(sorted(values), dtype=object).reshape(
                    np.shape(inputs[name]["data"])).tolist()
    return inputs


def run_examples(kernel: wp.Kernel, seed: int, count: int = N_EXAMPLES, launch: Launch | None = None) -> list[dict]:
    """``count`` examples of ``kernel`` on inputs drawn from (seed, example index)."""
    params = warp_adapter.kernel_params(kernel)
    dim = list(launch.dim) if launch is not None else list(launch_dim(params))
    block_dim = launch.block_dim if launch is not None else None
    examples = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        inputs = _inputs(params, rng, tuple(dim), launch)
        example: dict[str, Any] = {"dim": dim}
        if block_dim is not None:
            example["block_dim"] = block_dim
        example |= {"inputs": inputs, "outputs": _launch(kernel, params, dim, inputs, block_dim=block_dim)}
        examples.append(example)
    return examples


def replay(kernel: wp.Kernel, example: dict, device: str = "cpu") -> dict:
    """Run ``kernel`` on a recorded example's inputs; returns the encoded outputs."""
    return _launch(kernel, warp_adapter.kernel_params(kernel), example["dim"], example["inputs"], device,
                   example.get("block_dim"))


def has_nonfinite(examples: list[dict]) -> bool:
    def walk(v: Any) -> bool:
        return any(walk(x) for x in v) if isinstance(v, list) else v in _NONFINITE if isinstance(v, str) else False

    return any(walk(out["data"]) for ex in examples for out in ex["outputs"].values())
