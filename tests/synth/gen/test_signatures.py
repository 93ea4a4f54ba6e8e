"""The generator's builtin table is derived from Warp's registry, and every entry in it
is a call Warp's code generation accepts."""

from __future__ import annotations

import pytest

from synth import warp_adapter
from synth.gen.signatures import EXCLUDED, GROUPS, GUARDS, TYPES, Signature, table


@pytest.fixture(scope="module", autouse=True)
def warp_ready() -> None:
    warp_adapter.init_warp()


def test_table_reaches_most_of_every_target_group() -> None:
    tab = table()
    names = {s.name for s in tab.signatures}
    assert set(tab.documented) == set(GROUPS)
    for group, documented in tab.documented.items():
        assert documented, f"Warp documents no builtin in {GROUPS[group]!r}: did the group move?"
        derived = [n for n in documented if n in names]
        # The rest is hand-written (EXCLUDED says why); the registry must carry the bulk.
        floor = 0.05 if group == "utility" else 0.6
        assert len(derived) >= floor * len(documented), (group, sorted(set(documented) - names))
    assert {"sin", "cross", "quat_rotate", "transform_point", "spatial_dot", "randf", "add"} <= names


def test_exclusions_and_guards_name_real_builtins() -> None:
    """A Warp release that renames one of these must make us look at the list again."""
    registry = {ov.name for ov in warp_adapter.builtin_overloads()}
    assert set(EXCLUDED) - registry == set()
    assert set(GUARDS) - registry == set()


def test_signatures_are_well_typed_and_ordered() -> None:
    tab = table()
    for sig in tab.signatures:
        assert sig.group in GROUPS
        assert all(t in TYPES or t in ("state", "array[float32]") for t in sig.arg_types), sig
        assert sig.returns == "None" or sig.returns in TYPES or all(t in TYPES for t in sig.tuple_types), sig
    keys = [(s.name, s.params) for s in tab.signatures]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert {s.name for s in tab.multi} >= {"svd3", "quat_to_axis_angle"}
    assert {s.name for s in tab.void} == {"transform_set_translation", "transform_set_rotation"}


def _literal(t: str) -> str:
    info = TYPES[t]
    if t == "bool":
        return "True"
    comp = "2" if TYPES[info.scalar].kind in ("int", "uint") else "0.5"
    if not info.shape:
        return comp if t in ("int32", "float32") else f"{info.spelling}({comp})"
    if info.kind in ("vec", "svec", "quat"):
        return f"{info.spelling}({', '.join([comp] * info.shape[0])})"
    if info.kind == "transform":
        return "wp.transform_identity()" if t == "transformf" else "wp.transform_identity(dtype=wp.float64)"
    return f"{info.spelling}({comp})"


def _statement(n: int, sig: Signature) -> list[str]:
    args = ["state" if t == "state" else "cdf" if t.startswith("array") else _literal(t) for t in sig.arg_types]
    call = f"wp.{sig.name}({', '.join(args)})"
    if sig.returns == "None":
        return [f"x{n} = {args[0]}", call.replace(args[0], f"x{n}", 1)]
    if sig.tuple_types:
        return [f"{', '.join(f'r{n}_{k}' for k in range(len(sig.tuple_types)))} = {call}"]
    return [f"r{n} = {call}"]


def _module(sigs: list[Signature]) -> str:
    lines = ["state = wp.rand_init(7)"]
    for n, sig in enumerate(sigs):
        lines += _statement(n, sig)
    body = "\n".join("    " + line for line in lines)
    return f"import warp as wp\n\n\n@wp.kernel\ndef probe(cdf: wp.array(dtype=float)):\n{body}\n"


def _accepted(sigs: list[Signature], tag: str) -> bool:
    try:
        with warp_adapter.KernelModule(_module(sigs), f"jitsynth_sigprobe_{tag}") as module:
            module.codegen()
    except Exception:  # noqa: BLE001 - the caller narrows a rejected batch down
        return False
    return True


def test_every_signature_passes_warp_codegen() -> None:
    sigs = list(table().signatures)
    rejected = []
    for i in range(0, len(sigs), 80):  # batches keep this to a few seconds; bisect only on failure
        batch = sigs[i : i + 80]
        if not _accepted(batch, str(i)):
            rejected += [s for k, s in enumerate(batch) if not _accepted([s], f"{i}_{k}")]
    assert not rejected, f"Warp rejects {len(rejected)} derived signatures, e.g. {rejected[:3]}"


def _compile_failures(sources: list[str], tag: str) -> list[str]:
    """NVRTC (PTX) and clang (CPU) errors for each module source: '' where both build."""
    from synth.validate.tiers import Item, TierStats, run_tiers

    errors = []
    for n, source in enumerate(sources):
        with warp_adapter.KernelModule(source, f"jitsynth_{tag}_{n}") as module:
            cuda = module.codegen().cuda
            item = Item(n, module.pymodule.probe, cuda)
            outcome = run_tiers([item], ("ptx", "cpu-compile"), stats=TierStats())[0]
        errors.append("; ".join(f"{tier}: {why[:300]}" for tier, why in outcome.errors.items()))
    return errors


def test_every_signature_compiles_with_nvrtc_and_clang() -> None:
    """Warp's codegen accepting a call is not enough: its C++ must build on both backends
    (NVRTC once rejected atomicCAS on vec3). Batches keep this to one build per 100."""
    sigs = list(table().signatures)
    batches = [sigs[i : i + 100] for i in range(0, len(sigs), 100)]
    failures = _compile_failures([_module(b) for b in batches], "sigbuild")
    bad = []
    for batch, error in zip(batches, failures, strict=True):
        if error:  # narrow down to the signatures at fault
            singles = _compile_failures([_module([s]) for s in batch], "sigsingle")
            bad += [(s, e) for s, e in zip(batch, singles, strict=True) if e]
    assert not bad, f"{len(bad)} signatures fail to build, e.g. {bad[:3]}"


def test_every_atomic_the_generator_emits_compiles_with_nvrtc_and_clang() -> None:
    from synth.gen.generator import ARRAY_DTYPES
    from synth.gen.statements import accumulator_classes, atomic_ops

    params, lines = [], ["tid = wp.tid()"]
    for k, dtype in enumerate(ARRAY_DTYPES):
        params.append(f"a{k}: wp.array(dtype={TYPES[dtype].spelling})")
        value = _literal(dtype)
        assert {op for cls in accumulator_classes(dtype) for op in cls} <= set(atomic_ops(dtype))
        for op in atomic_ops(dtype):
            args = f"{value}, {value}" if op == "atomic_cas" else value
            lines.append(f"wp.{op}(a{k}, tid, {args})")
    body = "\n".join("    " + line for line in lines)
    source = f"import warp as wp\n\n\n@wp.kernel\ndef probe({', '.join(params)}):\n{body}\n"
    assert _compile_failures([source], "atomics") == [""]
    # The check can fail: an atomic NVRTC has no overload for is reported.
    vec3 = f"a{list(ARRAY_DTYPES).index('vec3f')}"
    bad = source.replace("tid = wp.tid()", f"tid = wp.tid()\n    wp.atomic_cas({vec3}, tid, wp.vec3(1.0), wp.vec3(2.0))")
    assert "ptx" in _compile_failures([bad], "atomics_bad")[0]
