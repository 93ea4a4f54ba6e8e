"""What every kernel family's worker-path test checks: the records pass every tier, and the
recorded examples replay exactly (shared by tests/synth/gen/families/test_family_*.py)."""

from __future__ import annotations

from typing import Any

import msgspec

TIERS = ("ptx", "cpu-compile", "execute")


def validated_records(cfg: Any, seeds: list[int]) -> list[Any]:
    """Records for ``seeds`` through the real worker with every tier; each one compiled with
    NVRTC and clang, ran on the CPU with finite outputs, and kept its examples."""
    from synth.worker import WorkerSettings, build_records, init_worker

    settings = WorkerSettings(cfg, "test", tiers=TIERS)
    init_worker(settings)
    records = build_records(seeds, settings)
    for seed, record in zip(seeds, records, strict=True):
        assert not isinstance(record, BaseException), (seed, record)
        v = record.validation
        assert (v.cuda_ptx, v.cpu_compile, v.executed, v.execution) == (True, True, True, "ok"), (seed, v)
        assert record.examples, seed
    return records


def assert_replays_exactly(records: list[Any]) -> None:
    """Rebuilt from its source alone, each record's kernel reproduces every recorded output."""
    from synth.validate.tiers import replay_records

    as_dicts = [msgspec.to_builtins(r) for r in records]
    for record, outputs in zip(as_dicts, replay_records(as_dicts), strict=True):
        assert outputs == [ex["outputs"] for ex in record["examples"]], record["seed"]


def seeded_object(kind: Any) -> tuple[dict, Any]:
    """An object kind's construction data for a fixed seed, checked deterministic (and
    different for another seed) and JSON-exact, and the live object built from it."""
    import json

    import numpy as np

    data = kind.make(np.random.default_rng([7, 1]))
    assert data == kind.make(np.random.default_rng([7, 1]))
    assert data != kind.make(np.random.default_rng([7, 2]))
    assert json.loads(json.dumps(data)) == data
    obj = kind.build(data, "cpu")
    assert obj.id != 0
    return data, obj
