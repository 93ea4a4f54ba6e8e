"""The tile family (synth.gen.families.tiles): kernels of every kind validate through the real
worker path (NVRTC, clang, CPU execution via wp.launch_tiled) and replay exactly; their
CUDA text uses shared-memory tiles and the block's threads; over many seeds every kernel is
live, race-free and deterministic text, and together they cover the Tile group. Also the
tile rules of synth.quality.races: a block's own tile store passes, any other offset is a race."""

from __future__ import annotations

import subprocess
import sys

import pytest

from synth.gen.config import GeneratorConfig
from synth.gen.families.tiles import generate, kind_of
from synth.gen.families.tiles_kinds import KINDS
from synth.metadata import analyse
from synth.quality.modinfo import array_ndim, parse_module
from synth.quality.checks import check_kernel
from synth.quality.races import check_races
from synth.gen.signatures import documented_all
from tests.worker_checks import assert_replays_exactly, validated_records

CFG = GeneratorConfig(families={"tile": 1.0})
LAW_SEEDS = range(600)
# Tile builtins of other families (they need mesh/BVH objects: the geometry family's).
GEOMETRY_TILES = ("tile_bvh_query_aabb", "tile_bvh_query_next", "tile_bvh_query_ray", "tile_query_valid",
                  "tile_mesh_query_aabb", "tile_mesh_query_aabb_next")
COVERAGE_TARGET = 55


def _seed_of(kind: str) -> int:
    return next(s for s in range(1000) if kind_of(s) == kind)


def test_worker_path_validates_and_replays_exactly() -> None:
    seeds = [_seed_of(k) for k in sorted(KINDS)]
    records = validated_records(CFG, seeds)
    for seed, record in zip(seeds, records, strict=True):
        assert all(ex.get("block_dim") for ex in record.examples), seed
        # The CUDA text: the block's shared tile storage, shared-memory tiles where the
        # kernel asks for them (storage="shared"; matmul operands), and the block's cooperating threads.
        cuda = record.cuda.full
        assert "tile_shared_storage_t" in cuda, seed
        if 'storage="shared"' in record.python_source or "wp.tile_matmul(" in record.python_source:
            assert "tile_shared_t" in cuda, seed
        assert "blockDim" in cuda and "threadIdx" in cuda, seed
    assert_replays_exactly(records)


def test_contract_over_many_seeds() -> None:
    used: set[str] = set()
    kinds: set[str] = set()
    for seed in LAW_SEEDS:
        k = generate(seed, CFG)
        assert k.family == "tile" and k.kernel_name == f"kernel_{seed}"
        assert k.launch is not None and k.launch.block_dim in (32, 64, 128, 256), seed
        q = check_kernel(k.source, k.kernel_name)
        assert q.defects == (), (seed, q.defects, q.race_violations, q.dead_assignments)
        assert all(f"def {h}(" in k.source for h in k.helper_names), seed
        mod = parse_module(k.source, k.kernel_name)
        arrays = {a.arg for a in mod.kernel.args.args if array_ndim(a.annotation) is not None}
        assert arrays == {name for name, _ in k.launch.shapes}, seed  # every array has its tiled shape
        used |= set(analyse(k.source, k.kernel_name).builtins)
        kinds.add(kind_of(seed))
    assert kinds == set(KINDS)
    tile_group = set(documented_all()["tile"])
    covered = used & tile_group
    assert len(covered) >= COVERAGE_TARGET, sorted(tile_group - covered)
    assert not covered & set(GEOMETRY_TILES)


def test_text_is_deterministic_across_processes_and_hash_seeds() -> None:
    code = ("import hashlib; from synth.gen.config import GeneratorConfig; from synth.gen.families.tiles import generate; "
            "print(hashlib.sha256(''.join(generate(s, GeneratorConfig()).source for s in range(60)).encode())"
            ".hexdigest())")
    here = hashlib_of(range(60))
    for hash_seed in ("0", "12345"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={"PYTHONHASHSEED": hash_seed, "PATH": ""})
        assert out.stdout.strip() == here


def hashlib_of(seeds: range) -> str:
    import hashlib

    return hashlib.sha256("".join(generate(s, CFG).source for s in seeds).encode()).hexdigest()


_RACE_KERNEL = """
import warp as wp

TILE_M = wp.constant(8)
TILE_N = wp.constant(8)


@wp.kernel
def k(a: wp.array2d(dtype=float), out: wp.array2d(dtype=float), acc: wp.array2d(dtype=float),
      idx: wp.array(dtype=int)):
    i, j = wp.tid()
    t = wp.tile_load(a, shape=(TILE_M, TILE_N), offset=(i * TILE_M, j * TILE_N))
    ix = wp.tile_load(idx, shape=4)
    {store}
    wp.tile_atomic_add_indexed(acc, ix, t, offset=(0, 0), axis=0)
"""


@pytest.mark.parametrize(("store", "role"), [
    ("wp.tile_store(out, t, offset=(i * TILE_M, j * TILE_N))", "owned"),
    ("wp.tile_store(out, t, offset=(i * 8, j * 8))", "owned"),
    ("wp.tile_store_indexed(out, wp.tile_arange(8, dtype=int), t, offset=(i * TILE_M, j * TILE_N), axis=0)",
     "owned"),
    ("wp.tile_store(out, t)", "violation"),  # every block writes the same tile
    ("wp.tile_store(out, t, offset=(0, 0))", "violation"),
    ("wp.tile_store(out, t, offset=(i * TILE_M, 0))", "violation"),  # blocks j race
    ("wp.tile_store(out, t, offset=(j * TILE_M, i * TILE_N))", "violation"),  # dims swapped
    ("wp.tile_store(out, t, offset=((i + 1) * TILE_M, j * TILE_N))", "violation"),
    ("wp.tile_store_indexed(out, ix, t, offset=(i * TILE_M, j * TILE_N), axis=0)", "violation"),
    ("wp.tile_atomic_add(out, t, offset=(0, 0))", "accumulator"),
])
def test_race_rules_for_tiles(store: str, role: str) -> None:
    report = check_races(parse_module(_RACE_KERNEL.replace("{store}", store), "k"))
    assert report.roles["out"] == role, report.violations
    assert report.roles["a"] == "input" and report.roles["idx"] == "input"
    assert report.roles["acc"] == "accumulator"  # tile_atomic_add_indexed is an atomic add


def test_race_rules_lane_and_in_place_update() -> None:
    lane_kernel = """
import warp as wp

@wp.kernel
def k(x: wp.array2d(dtype=float), out: wp.array2d(dtype=float), red: wp.array(dtype=float)):
    i, lane = wp.tid()
    t = wp.tile(x[i, lane])
    out[i, lane] = wp.untile(t * 2.0)
    wp.tile_store(red, wp.tile_sum(t), offset=i)
    r = wp.tile_load(red, shape=1, offset=i)
    wp.tile_store(red, r * 2.0, offset=i)
"""
    report = check_races(parse_module(lane_kernel, "k"))
    assert report.roles == {"x": "input", "out": "owned", "red": "owned"}, report.violations
    # The lane is no block index once a tile offset names it: then a store without it races.
    racy = lane_kernel.replace("offset=i)\n    r", "offset=i)\n    q = wp.tile_load(x, shape=(1, 1), offset=(i, lane))\n"
                               "    r").replace("r * 2.0", "r * 2.0 + wp.tile_reshape(q, shape=(1,))")
    assert check_races(parse_module(racy, "k")).roles["red"] == "violation"
