"""The families framework: the family draw, the Launch spec, object kinds, features."""

from __future__ import annotations

import dataclasses

import pytest

from synth.gen.config import FAMILY_KEYS, GeneratorConfig
from synth.gen.generator import FAMILY_MODULES, generate, pick_family
from synth.launch import Launch
from synth.metadata import analyse


def test_every_family_has_a_module_and_a_config_key() -> None:
    assert set(FAMILY_MODULES) | {"plain"} == set(FAMILY_KEYS)


def test_family_draw_is_deterministic_and_follows_the_weights() -> None:
    cfg = GeneratorConfig(families={"plain": 3.0, "tile": 1.0})
    draws = [pick_family(s, cfg) for s in range(2000)]
    assert draws == [pick_family(s, cfg) for s in range(2000)]
    assert set(draws) == {"plain", "tile"}
    assert 0.2 < draws.count("tile") / len(draws) < 0.3  # 1/4 expected; 2,000 draws: sd ~0.01
    assert {pick_family(s, GeneratorConfig(families={"tile": 1.0})) for s in range(50)} == {"tile"}


def test_plain_kernels_do_not_depend_on_the_other_families() -> None:
    """A seed that draws the plain family gets the text it gets when plain is the only family:
    the draw has its own random stream."""
    mixed = GeneratorConfig(families={"plain": 1.0, "tile": 1.0})
    only = GeneratorConfig(families={"plain": 1.0})
    plain_seeds = [s for s in range(60) if pick_family(s, mixed) == "plain"]
    assert plain_seeds
    for s in plain_seeds:
        assert generate(s, mixed).source == generate(s, only).source
        assert generate(s, mixed).family == "plain" and generate(s, mixed).launch is None


def test_family_weights_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown families"):
        GeneratorConfig(families={"tiles": 1.0}).validate()
    with pytest.raises(ValueError, match="not all 0"):
        GeneratorConfig(families={"plain": 0.0}).validate()
    a, b = GeneratorConfig(), GeneratorConfig(families={"plain": 1.0, "tile": 0.5})
    assert a.config_hash != b.config_hash  # family weights are part of the generator


def test_launch_spec_rejects_impossible_launches() -> None:
    ok = Launch((4, 2), 64, (("x", (32, 16)),), (("mesh", "mesh"),))
    assert ok.shape_of("x") == (32, 16) and ok.shape_of("y") is None and ok.object_of("mesh") == "mesh"
    for bad in (dict(dim=()), dict(dim=(0,)), dict(dim=(1, 1, 1, 1, 1)), dict(dim=(2,), block_dim=0),
                dict(dim=(2,), block_dim=2048), dict(dim=(1, 1, 1, 1), block_dim=32)):
        with pytest.raises(ValueError):
            Launch(**bad)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ok.block_dim = 1  # type: ignore[misc]


def test_unknown_object_kind_names_the_known_ones() -> None:
    from synth.validate import objects

    with pytest.raises(KeyError, match="unknown object kind 'teapot'"):
        objects.kind("teapot")


def test_features_of_the_rest_of_the_language() -> None:
    source = '''import typing

import warp as wp

TILE = wp.constant(8)


@wp.func
def twice(x: typing.Any):
    return x + x


@wp.func
def f(x: float):
    return x * x


@wp.func_grad(f)
def adj_f(x: float, adj_ret: float):
    wp.adjoint[x] += 2.0 * x * adj_ret


@wp.kernel
def k(x: wp.array(dtype=float), out: wp.array(dtype=float), mesh: wp.uint64, vol: wp.uint64):
    i = wp.tid()
    t = wp.tile_load(x, shape=TILE, offset=i * TILE, storage="shared")
    wp.tile_store(out, wp.tile_map(wp.sin, t), offset=i * TILE)
    q = wp.mesh_query_point(mesh, wp.vec3(0.0), 1.0)
    v = wp.volume_sample_f(vol, wp.vec3(0.0), wp.Volume.LINEAR)
    n = wp.noise(wp.rand_init(1), 0.5)
    out[i] = twice(f(v + n)) + float(q.face)
'''
    facts = analyse(source, "k")
    for feature in ("tiles", "shared_memory", "geometry", "volumes", "noise", "constants", "custom_grad", "generic"):
        assert feature in facts.features, feature
    plain = analyse("import warp as wp\n\n\n@wp.kernel\ndef k(a: wp.array(dtype=float)):\n    i = wp.tid()\n"
                    "    a[i] = wp.sin(a[i])\n", "k")
    assert not {"tiles", "shared_memory", "geometry", "volumes", "constants", "generic"} & set(plain.features)


def test_gpu_compare_verdicts_cover_object_outputs() -> None:
    from synth.validate.gpu_compare import compare

    cpu = {"out": {"type": "array", "data": [1.0, 2.0]},
           "vol": {"type": "object", "kind": "volume_f", "data": {"values": [[1.0, "nan"]], "origin": [0.0]}}}
    near = {"out": {"type": "array", "data": [1.0, 2.0000001]}, "vol": cpu["vol"]}
    far = {"out": cpu["out"], "vol": {"type": "object", "kind": "volume_f",
                                      "data": {"values": [[1.5, "nan"]], "origin": [0.0]}}}
    assert compare(cpu, cpu, 1e-5, 1e-6) == "exact"
    assert compare(cpu, near, 1e-5, 1e-6) == "close"
    assert compare(cpu, far, 1e-5, 1e-6) == "differ"


def test_sorted_arrays_get_sorted_example_values_and_replay() -> None:
    from synth import warp_adapter
    from synth.validate import tiers as validate

    warp_adapter.init_warp()
    src = ("import warp as wp\n\n\n@wp.kernel\ndef k(edges: wp.array(dtype=float), x: wp.array(dtype=float), "
           "out: wp.array(dtype=int)):\n    i = wp.tid()\n    out[i] = wp.lower_bound(edges, x[i])\n")
    launch = Launch((8,), shapes=(("edges", (16,)),), sorted=("edges",))
    with warp_adapter.KernelModule(src, "jitsynth_sorted_test", "k.py") as module:
        outcome = validate.run_tiers([validate.Item(5, module.pymodule.k, "", launch)], ("cpu-compile", "execute"))[0]
        assert outcome.execution == "ok", outcome.errors
        for example in outcome.examples:
            edges = example["inputs"]["edges"]["data"]
            assert len(edges) == 16 and edges == sorted(edges) and example["inputs"]["x"]["data"] != sorted(
                example["inputs"]["x"]["data"])  # only the listed array is sorted
        record = {"python_source": src, "kernel_name": "k", "examples": outcome.examples}
    assert validate.replay_records([record]) == [[e["outputs"] for e in outcome.examples]]


def test_derived_arrays_hold_what_their_object_was_built_from() -> None:
    """A hash-grid kernel's particle array is the grid's own points (as in warp.examples' sph)."""
    from synth.validate.examples import _inputs

    cfg = GeneratorConfig(families={"geometry": 1.0})
    kernel = next(k for k in (generate(s, cfg) for s in range(300)) if k.launch.derived)
    array, (obj, field) = kernel.launch.derived[0]
    import numpy as np

    from synth import warp_adapter

    warp_adapter.init_warp()
    with warp_adapter.KernelModule(kernel.source, "jitsynth_derived_test", "k.py") as module:
        params = warp_adapter.kernel_params(getattr(module.pymodule, kernel.kernel_name))
    inputs = _inputs(params, np.random.default_rng([1, 0]), kernel.launch.dim, kernel.launch)
    assert inputs[obj]["type"] == "object" and inputs[array]["type"] == "array"
    assert np.allclose(np.array(inputs[array]["data"], dtype=float), np.array(inputs[obj]["data"][field]))
    assert inputs[array]["shape"] == [len(inputs[obj]["data"][field])]
