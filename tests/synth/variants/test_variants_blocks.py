"""Issue 15: the statement-level operators delete_statement, outline and splice_statement.

Pure rewrites are checked on small sources, text before and after (including the places they
must refuse); on real parents (the ingested corpus of tests/synth/variants/test_variants.py), each operator's
variants go through the real worker: Warp codegen for every one, NVRTC and clang for a batch.
"""

from __future__ import annotations

import ast
import random
import textwrap
from pathlib import Path

import pytest

from synth.variants.blocks import delete_statement, neutral
from synth.variants.localtypes import function_types
from synth.variants.mutations import Site
from synth.variants.outline import outline
from synth.variants.splicing import portable_statements, splice_statement
from tests.synth.variants.test_variants import _defects, _source, corpus  # noqa: F401 - corpus is a fixture

NEW_OPERATORS = ("delete_statement", "outline", "splice_statement")


def _apply(op, source: str, seed: int = 0, site: Site | None = None) -> tuple[str | None, str]:
    tree = ast.parse(textwrap.dedent(source))
    what = op(tree, random.Random(seed), site or Site())
    return what, ast.unparse(tree)


def _same(text: str, expected: str) -> bool:
    return text == ast.unparse(ast.parse(textwrap.dedent(expected)))


HEAD = "import warp as wp\n\n@wp.kernel\ndef k(a: wp.array(dtype=float), out: wp.array(dtype=float), gain: float):\n"


def _kernel(*lines: str) -> str:
    return HEAD + "".join(f"    {line}\n" for line in lines)


def test_localtypes_reads_annotations_constructors_arrays_and_builtins() -> None:
    fn = ast.parse(textwrap.dedent("""
        def k(pts: wp.array2d(dtype=wp.vec3), s: float, n: int):
            i, j = wp.tid()
            p = pts[i, j]
            row = pts[i]
            l = wp.length(p) * s
            q = p * l
            m = wp.mat33(1.0)
            r = m * q
            c = wp.float64(s)
            x = float(n)
            x = 2
    """)).body[0]
    types = function_types(fn)
    assert {k: types.get(k) for k in ("s", "n", "p", "l", "q", "m", "r", "c")} == {
        "s": "float32", "n": "int32", "p": "vec3f", "l": "float32", "q": "vec3f", "m": "mat33f", "r": "vec3f",
        "c": "float64"}
    # a view (fewer indices than dimensions) and locals whose definitions disagree are unknown
    assert types["i"] == types["j"] == "int32"  # i, j = wp.tid()
    assert "row" not in types and "x" not in types


def test_neutral_values_are_constructors_of_the_type() -> None:
    written = {(t, one): ast.unparse(v) if (v := neutral(t, one)) is not None else None
               for t, one in [("float32", False), ("float32", True), ("float64", True), ("int32", False),
                              ("vec3f", False), ("vec3d", True), ("mat33f", False), ("quatf", False), ("bool", False)]}
    assert written == {("float32", False): "0.0", ("float32", True): "1.0", ("float64", True): "wp.float64(1.0)",
                       ("int32", False): "0", ("vec3f", False): "wp.vec3(0.0)",
                       ("vec3d", True): "wp.vec3d(wp.float64(1.0))", ("mat33f", False): "wp.mat33(0.0)",
                       ("quatf", False): None, ("bool", False): None}


def test_delete_an_accumulation_keeps_the_previous_value() -> None:
    what, text = _apply(delete_statement, _kernel("i = wp.tid()", "x = a[i]", "s = x * gain", "s += x",
                                                  "out[i] = s"))
    assert what == "delete_statement: update: s += x"
    assert _same(text, _kernel("i = wp.tid()", "x = a[i]", "s = x * gain", "out[i] = s"))


def test_delete_a_local_repairs_its_reads_with_a_neutral_value() -> None:
    what, text = _apply(delete_statement, _kernel("i = wp.tid()", "w = gain * 2.0", "out[i] = a[i] * w + gain"))
    assert what == "delete_statement: neutral: w = gain * 2.0"
    assert _same(text, _kernel("i = wp.tid()", "out[i] = a[i] * 1.0 + gain"))  # one where it multiplies


def test_delete_a_redefinition_leaves_the_earlier_one() -> None:
    what, text = _apply(delete_statement, _kernel("i = wp.tid()", "x = a[i]", "x = x * gain", "out[i] = x + gain"))
    assert what == "delete_statement: redefinition: x = x * gain"
    assert _same(text, _kernel("i = wp.tid()", "x = a[i]", "out[i] = x + gain"))


@pytest.mark.parametrize("lines", [
    ("i = wp.tid()", "out[i] = a[i] * gain"),  # the only effect: never deleted
    ("i = wp.tid()", "x = a[i]", "out[i] = x * gain"),  # deleting x leaves a unused; nothing else to delete
    ("i = wp.tid()", "d = a[i] - gain", "if d < 1.0:", "    out[i] = d"),  # d = 0.0 makes the branch constant
])
def test_delete_refuses_what_orphans_code_or_the_only_effect(lines: tuple[str, ...]) -> None:
    source = _kernel(*lines)
    for seed in range(5):
        what, text = _apply(delete_statement, source, seed)
        assert what is None and _same(text, source)


def test_outline_an_expression_into_an_annotated_helper() -> None:
    what, text = _apply(outline, _kernel("i = wp.tid()", "out[i] = wp.sin(a[i]) * gain"))
    assert what == "outline: expr: scaled_a_i(a, i, gain) <- wp.sin(a[i]) * gain"
    assert _same(text, """
        import warp as wp

        @wp.func
        def scaled_a_i(a: wp.array(dtype=float), i: int, gain: float):
            return wp.sin(a[i]) * gain

        @wp.kernel
        def k(a: wp.array(dtype=float), out: wp.array(dtype=float), gain: float):
            i = wp.tid()
            out[i] = scaled_a_i(a, i, gain)
    """)


def test_outline_a_block_returns_the_one_value_read_after_it() -> None:
    what, text = _apply(outline, _kernel("i = wp.tid()", "d = a[i] - gain", "e = d * d", "out[i] = e"))
    assert what == "outline: block: compute_e(a, i, gain) <- 2 statements -> e"
    assert _same(text, """
        import warp as wp

        @wp.func
        def compute_e(a: wp.array(dtype=float), i: int, gain: float):
            d = a[i] - gain
            e = d * d
            return e

        @wp.kernel
        def k(a: wp.array(dtype=float), out: wp.array(dtype=float), gain: float):
            i = wp.tid()
            e = compute_e(a, i, gain)
            out[i] = e
    """)


def test_outline_names_clash_with_neither_the_module_nor_warp() -> None:
    from synth.variants.outline import helper_name

    source = "@wp.func\ndef scaled_a_i(x: float):\n    return x\n\n" + _kernel(
        "i = wp.tid()", "out[i] = wp.sin(a[i]) * gain + scaled_a_i(gain)")
    outlined = {_apply(outline, source, seed)[0] for seed in range(8)}
    assert "outline: expr: scaled_a_i_2(a, i, gain) <- wp.sin(a[i]) * gain" in outlined
    assert helper_name(ast.parse("x = 1"), "length") == "length_2"  # wp.length
    assert helper_name(ast.parse("x = 1"), "intersect_aabb_aabb") == "intersect_aabb_aabb_2"  # native only


@pytest.mark.parametrize("lines", [
    ("i = wp.tid()", "out[i] = wp.sin(a[i]) * SCALE"),  # a module constant has no type to annotate
    ("i = wp.tid()", "j, k = wp.svd2(m)", "out[i] = wp.sin(a[i]) * j[0]"),  # multi-value locals are not typed
    ("i = wp.tid()", "out[i] = wp.sin(a[i])"),  # one call: nothing worth a helper
])
def test_outline_refuses_code_whose_inputs_have_no_known_type(lines: tuple[str, ...]) -> None:
    what, _ = _apply(outline, _kernel(*lines))
    assert what is None


DONOR = """
import warp as wp

@wp.kernel
def donor(v: wp.array(dtype=wp.vec3), o: wp.array(dtype=wp.vec3), n: int, w: wp.array(dtype=float)):
    i = wp.tid()
    d = v[i]
    m = wp.normalize(d) * 2.0
    o[i] = m
    f = float(i / n)
    s = wp.sin(w[i])
    g = helper(d)
"""


def test_portable_statements_are_typed_pure_and_self_contained() -> None:
    index = portable_statements([DONOR])
    # i / n (an integer divisor), w[i] (an array), helper(d) (the donor's own function) are not portable
    assert [(p.text, p.needs, p.type, p.accumulate) for p in index] == [
        ("m = wp.normalize(d) * 2.0", (("d", "vec3f"),), "vec3f", False)]


def test_splice_a_statement_of_another_kernel_and_use_its_result() -> None:
    target = """
        import warp as wp

        @wp.kernel
        def k(pts: wp.array(dtype=wp.vec3), out: wp.array(dtype=wp.vec3), s: float):
            i = wp.tid()
            p = pts[i]
            out[i] = p * s
    """
    site = Site(statements=portable_statements([DONOR]))
    what, text = _apply(splice_statement, target, site=site)
    assert what == "splice_statement: m = wp.normalize(p) * 2.0"
    assert _same(text, """
        import warp as wp

        @wp.kernel
        def k(pts: wp.array(dtype=wp.vec3), out: wp.array(dtype=wp.vec3), s: float):
            i = wp.tid()
            p = pts[i]
            m = wp.normalize(p) * 2.0
            out[i] = (p + m) * s
    """)
    # no vec3 local to feed it, or none read afterwards: no site
    assert _apply(splice_statement, _kernel("i = wp.tid()", "out[i] = a[i] * gain"), site=site)[0] is None


def test_splice_an_accumulation_into_a_local_read_afterwards() -> None:
    donor = "@wp.kernel\ndef d(x: float, t: float):\n    acc = float(0.0)\n    acc += wp.exp(x) * t\n"
    site = Site(statements=portable_statements([donor]))
    what, text = _apply(splice_statement, _kernel("i = wp.tid()", "y = a[i]", "out[i] = y * gain"), site=site)
    # into the local y (never into a parameter), from the other float the kernel has there
    assert what == "splice_statement: y += wp.exp(gain) * gain"
    assert _same(text, _kernel("i = wp.tid()", "y = a[i]", "y += wp.exp(gain) * gain", "out[i] = y * gain"))


@pytest.mark.parametrize("operator", NEW_OPERATORS)
def test_new_operators_on_real_parents_build_and_keep_the_contracts(corpus: Path, operator: str) -> None:  # noqa: F811
    from synth.canonical import canonical_key
    from synth.gen.config import GeneratorConfig
    from synth.worker import WorkerSettings, build_records

    source = _source(corpus, min_mutations=1, max_mutations=1, fresh_literal=False, operators={operator: 1.0})
    parents = {p.id: p for p in source.parents}
    settings = WorkerSettings(GeneratorConfig(), "test", tiers=("codegen", "ptx", "cpu-compile"), source=source)
    built = []
    for result in build_records(list(range(10)), settings):
        if isinstance(result, Exception):
            assert "unchanged" in str(result), result  # a seed whose parents have no site for it
            continue
        built.append(result)
        meta = result.metadata
        parent = parents[meta.variant.parent]
        assert [m.split(":")[0] for m in meta.variant.mutations] == [operator]
        assert result.validation.codegen and result.validation.cuda_ptx and result.validation.cpu_compile, \
            (result.python_source, result.validation.errors)
        assert result.id != canonical_key(parent.source)
        after, before = _defects(result.python_source, result.kernel_name), _defects(parent.source, parent.kernel_name)
        assert all(x <= y for x, y in zip(after, before, strict=True)), (result.python_source, after, before)
    assert len(built) >= 2, f"{operator} applied to {len(built)} of 10 seeds"
    assert len({r.id for r in built}) >= 2


def test_delete_a_branch_only_when_what_it_binds_is_bound_before() -> None:
    binds_v = ("i = wp.tid()", "x = a[i]", "if x > gain:", "    v = x", "else:", "    v = gain", "out[i] = v")
    assert all(_apply(delete_statement, _kernel(*binds_v), seed)[0] is None for seed in range(5))
    what, text = _apply(delete_statement, _kernel("i = wp.tid()", "v = a[i]", "if v > gain:", "    v = gain",
                                                  "out[i] = v * gain"))
    assert what == "delete_statement: block: if v > gain:"
    assert _same(text, _kernel("i = wp.tid()", "v = a[i]", "out[i] = v * gain"))


def test_delete_never_replaces_an_output_argument_by_a_value() -> None:
    source = """
        import warp as wp

        @wp.kernel
        def k(mesh: wp.uint64, pts: wp.array(dtype=wp.vec3), out: wp.array(dtype=float)):
            i = wp.tid()
            face = int(0)
            u = float(0.0)
            v = float(0.0)
            wp.mesh_query_point_no_sign(mesh, pts[i], 1.0, face, u, v)
            out[i] = u + v + float(face)
    """
    assert all(_apply(delete_statement, source, seed)[0] is None for seed in range(5))
    through_a_ref = """
        import warp as wp

        @wp.func
        def set_ref(x: wp.ref[wp.float32], value: wp.float32):
            x = value

        @wp.kernel
        def k(out: wp.array(dtype=float), s: float):
            v = wp.vec3(1.0, 2.0, 3.0)
            set_ref(v[2], s)
            out[0] = s
    """
    assert all(_apply(delete_statement, through_a_ref, seed)[0] is None for seed in range(5))


def test_splice_never_feeds_code_that_is_dead() -> None:
    donor = "@wp.kernel\ndef d(x: float, t: float):\n    acc = float(0.0)\n    acc += wp.exp(x) * t\n"
    site = Site(statements=portable_statements([donor]))
    # y is read only by its own dead update: an accumulation into it would be dead as well
    dead_y = _kernel("i = wp.tid()", "y = a[i]", "y += 2.0", "out[i] = a[i] * gain")
    assert all(_apply(splice_statement, dead_y, seed, site)[0] is None for seed in range(5))
