"""The generator's builtin table is derived from Warp's registry, and every entry in it
is a call Warp's code generation accepts."""

from __future__ import annotations

import pytest

from synth import warp_adapter
from synth.signatures import EXCLUDED, GROUPS, GUARDS, TYPES, Signature, table


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
