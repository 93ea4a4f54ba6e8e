"""synth.gen.prune: what it removes, what it must keep, and that it is a fixed point."""

from __future__ import annotations

import ast

from hypothesis import given, settings
from hypothesis import strategies as st

from synth.gen.generator import generate
from synth.gen.prune import prune

HEAD = "import warp as wp\n\n\n"


def _kernel(body: str, params: str = "x: wp.array(dtype=float), out: wp.array(dtype=float)") -> str:
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"{HEAD}@wp.kernel\ndef k({params}):\n    tid = wp.tid()\n{lines}\n"


def _body(source: str) -> list[str]:
    kernel = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "k")
    return [ast.unparse(s) for s in kernel.body[1:]]


def test_unread_assignments_go_and_what_reaches_a_store_stays() -> None:
    out = prune(_kernel("a = x[tid]\nb = a * 2.0\nc = 5.0\nout[tid] = b"), "k")
    assert _body(out) == ["a = x[tid]", "b = a * 2.0", "out[tid] = b"]


def test_a_value_read_in_a_later_iteration_is_live() -> None:
    src = _kernel("acc = float(0.0)\nprev = float(0.0)\nfor i in range(4):\n    acc += prev\n    prev = x[tid]\n"
                  "out[tid] = acc")
    assert "prev = x[tid]" in prune(src, "k")


def test_overwritten_stores_go_but_a_store_read_back_stays() -> None:
    out = _body(prune(_kernel("out[tid] = 1.0\nout[tid] = 2.0"), "k"))
    assert out == ["out[tid] = 2.0"]
    out = _body(prune(_kernel("out[tid] = 1.0\nout[tid] += x[tid]"), "k"))
    assert out == ["out[tid] = 1.0", "out[tid] += x[tid]"]


def test_an_unread_atomic_result_keeps_the_atomic() -> None:
    src = _kernel("old = wp.atomic_add(acc, 0, x[tid])",
                  "x: wp.array(dtype=float), acc: wp.array(dtype=float)")
    assert _body(prune(src, "k")) == ["wp.atomic_add(acc, 0, x[tid])"]


def test_an_atomic_overwritten_by_a_store_goes() -> None:
    out = _body(prune(_kernel("wp.atomic_max(out, tid, x[tid])\nout[tid] = 1.0"), "k"))
    assert out == ["out[tid] = 1.0"]


def test_a_loop_that_only_advances_its_counter_goes_with_the_counter() -> None:
    src = _kernel("w = int(0)\nwhile w < 4:\n    w += 1\n    t = x[tid] * 2.0\nout[tid] = x[tid]")
    assert _body(prune(src, "k")) == ["out[tid] = x[tid]"]


def test_a_loop_that_stores_stays() -> None:
    src = _kernel("w = int(0)\nwhile w < 4:\n    w += 1\n    out[tid] += x[tid]")
    assert len(_body(prune(src, "k"))) == 2


def test_unused_params_helpers_structs_and_fields_go() -> None:
    src = (HEAD + "@wp.struct\nclass S:\n    a: float\n    b: float\n\n\n@wp.struct\nclass T:\n    c: float\n\n\n"
           "@wp.func\ndef unused(a: float) -> float:\n    return a\n\n\n"
           "@wp.func\ndef used(a: float) -> float:\n    return a * 2.0\n\n\n"
           "@wp.kernel\ndef k(x: wp.array(dtype=float), out: wp.array(dtype=float), p: S, q: T, gain: float):\n"
           "    tid = wp.tid()\n    out[tid] = used(x[tid]) + p.a\n")
    out = prune(src, "k")
    tree = ast.parse(out)
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert names == {"S", "used", "k"}
    struct = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    assert [ast.unparse(f) for f in struct.body] == ["a: float"]
    kernel = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "k")
    assert [a.arg for a in kernel.args.args] == ["x", "out", "p"]


def test_a_branch_left_with_only_its_else_flips_the_condition() -> None:
    src = _kernel("v = x[tid]\nif v < 1.0:\n    t = 2.0\nelse:\n    out[tid] = v")
    assert _body(prune(src, "k")) == ["v = x[tid]", "if v >= 1.0:\n    out[tid] = v"]


def test_debug_output_and_early_returns_are_effects() -> None:
    src = _kernel("v = x[tid]\nif wp.isnan(v):\n    print(v)\nif v > 3.0:\n    return\nout[tid] = v")
    assert len(_body(prune(src, "k"))) == 4


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**40))
def test_pruning_generated_kernels_is_a_fixed_point(seed: int) -> None:
    kernel = generate(seed, family="plain")  # prune is the plain generator's last pass: byte for byte
    assert prune(kernel.source, kernel.kernel_name) == kernel.source


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2**40), st.sampled_from(["tile", "geometry", "volume", "lang"]))
def test_pruning_finds_nothing_dead_in_family_kernels(seed: int, family: str) -> None:
    """Family kernels are live by construction; prune (which the families do not all run)
    removes nothing from them. Formatting aside: ``ast.unparse`` drops redundant parentheses."""
    kernel = generate(seed, family=family)
    assert ast.dump(ast.parse(prune(kernel.source, kernel.kernel_name))) == ast.dump(ast.parse(kernel.source))


def test_the_in_place_builtins_known_to_the_pruner_cover_the_generators() -> None:
    from synth import warp_adapter
    from synth.gen.prune import INPLACE
    from synth.gen.signatures import table

    warp_adapter.init_warp()
    assert {sig.name for sig in table().void} <= INPLACE
