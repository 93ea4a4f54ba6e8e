"""synth.quality.checks / liveness / races / realism on small hand-written kernels: each rule fails
and passes (issue 19). Pure AST work: no Warp, milliseconds per test."""

from __future__ import annotations

import math
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.quality.checks import QualityTotals, check_kernel
from synth.quality.realism import CorpusFigures, jsd

ARRAYS = "x: wp.array(dtype=float), out: wp.array(dtype=float), acc: wp.array(dtype=float), n: int"


def module(body: str, params: str = ARRAYS, prelude: str = "", launch: str = "tid = wp.tid()") -> str:
    body = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return (f"import warp as wp\n\n{textwrap.dedent(prelude).strip()}\n\n\n@wp.kernel\n"
            f"def k({params}):\n    {launch}\n{body}\n")


def dead(source: str) -> list[tuple[str, ...]]:
    return [a.targets for a in check_kernel(source, "k").dead_assignments]


def roles(source: str) -> dict[str, str]:
    return check_kernel(source, "k").array_roles


def violations(source: str) -> dict[str, str]:
    return {v.array: v.reason for v in check_kernel(source, "k").race_violations}


# --- dead assignments ---------------------------------------------------------------------------

def test_a_value_never_read_is_dead_and_a_stored_one_is_live() -> None:
    q = check_kernel(module("v = 1.0\nw = x[tid]\nout[tid] = w"), "k")
    assert [a.targets for a in q.dead_assignments] == [("v",)]
    assert q.assignments == 3  # tid, v, w; the store into out is an effect, not a local assignment


def test_overwritten_before_read_is_dead() -> None:
    assert dead(module("v = 1.0\nv = 2.0\nout[tid] = v")) == [("v",)]


def test_faint_chains_are_dead_but_effects_keep_their_operands() -> None:
    assert dead(module("a = x[tid]\nb = a * 2.0\nout[tid] = 1.0")) == [("a",), ("b",)]
    # the atomic happens, so w is live; the returned old value is never read, so `old` is dead
    assert dead(module("w = x[tid]\nold = wp.atomic_add(acc, 0, w)")) == [("old",)]


def test_a_value_read_only_in_a_later_loop_iteration_is_live() -> None:
    body = """
    prev = float(0.0)
    for it in range(3):
        if it > 0:
            out[tid] = prev
        prev = x[tid] * float(it)
    """
    assert dead(module(body)) == []
    # ...but not when the next iteration overwrites it before any read
    body = """
    for it in range(3):
        prev = x[tid] * float(it)
        prev = 1.0
        out[tid] = prev
    """
    assert dead(module(body)) == [("prev",)]


def test_break_continue_and_return_paths() -> None:
    body = """
    found = int(0)
    for it in range(4):
        if x[it] > 0.0:
            found = it
            break
    out[tid] = float(found)
    """
    assert dead(module(body)) == []
    body = """
    s = float(0.0)
    i = int(0)
    while i < n:
        i += 1
        if x[i] < 0.0:
            s = 1.0
            continue
        out[tid] = s
    """
    assert dead(module(body)) == []
    body = """
    v = x[tid]
    if v > 0.0:
        w = 2.0
        return
    out[tid] = v
    """
    assert dead(module(body)) == [("w",)]


def test_branches_tuples_components_and_in_place_builtins() -> None:
    assert dead(module("if n > 0:\n    v = 1.0\nelse:\n    v = 2.0\nout[tid] = v")) == []
    assert dead(module("u, s, vv = wp.svd3(wp.mat33(x[tid]))\nout[tid] = s[0, 0]")) == []
    assert dead(module("u, s, vv = wp.svd3(wp.mat33(x[tid]))\nout[tid] = 1.0")) == [("s", "u", "vv")]
    assert dead(module("v = wp.vec3()\nv.x = 1.0\nv[1] = 2.0\nout[tid] = v[0]")) == []
    assert dead(module("v = wp.vec3()\nv.x = 1.0\nout[tid] = 1.0")) == [("v",), ("v",)]
    setter = "out[tid] = 0.0\nt = wp.transform_identity()\nwp.transform_set_rotation(t, wp.quat_identity())"
    assert dead(module(setter)) == [("t",), ("t",)]
    # a random state feeds only a dead draw: both are dead; a live draw keeps the state live
    assert dead(module("out[tid] = 0.0\nstate = wp.rand_init(n, tid)\nr = wp.randf(state)")) == [("state",), ("r",)]
    assert dead(module("state = wp.rand_init(n, tid)\nr = wp.randf(state)\nout[tid] = r")) == []


def test_helpers_are_checked_too() -> None:
    prelude = """
    @wp.func
    def h(a: float) -> float:
        t = a * 2.0
        return a
    """
    q = check_kernel(module("out[tid] = h(x[tid])", prelude=prelude), "k")
    assert [(a.function, a.targets) for a in q.dead_assignments] == [("h", ("t",))]


# --- unused parameters, helpers, structs; constant conditions ------------------------------------

def test_unused_param_helper_struct_and_field() -> None:
    prelude = """
    @wp.struct
    class Used:
        gain: float
        never: int

    @wp.struct
    class OnlyInDeadHelper:
        a: float

    @wp.func
    def leaf(v: float, ignored: int = 0) -> float:
        return v

    @wp.func
    def mid(s: Used) -> float:
        return leaf(s.gain)

    @wp.func
    def orphan(o: OnlyInDeadHelper) -> float:
        return o.a
    """
    params = "x: wp.array(dtype=float), out: wp.array(dtype=float), s: Used, spare: float"
    q = check_kernel(module("out[tid] = mid(s) + x[tid]", params=params, prelude=prelude), "k")
    assert q.unused_kernel_params == ("spare",)
    assert q.uncalled_helpers == ("orphan",)
    assert q.unused_structs == ("OnlyInDeadHelper",)
    assert q.unused_struct_fields == ("Used.never",)
    assert q.unused_helper_params == ("leaf.ignored",)  # reachable helpers only: orphan is counted as uncalled
    assert set(q.defects) == {"unused_param", "uncalled_helper", "unused_struct", "unused_struct_field",
                              "unused_helper_param"}
    clean = check_kernel(module("out[tid] = x[tid]", params="x: wp.array(dtype=float), out: wp.array(dtype=float)"),
                         "k")
    assert clean.defects == ()


def test_constant_conditions() -> None:
    prelude = "LIMIT = wp.constant(3)"
    q = check_kernel(module("""
    if 1.0 < 2.0:
        out[tid] = 1.0
    elif wp.isinf(wp.vec3(2.0, 1.0, 0.0)[0]):
        out[tid] = 2.0
    out[tid] = wp.where(wp.isnan(3.0), 1.0, 2.0) + (1.0 if LIMIT > 2 else 0.0)
    while True:
        break
    if x[tid] > 0.0 and n > LIMIT:
        out[tid] = wp.where(x[tid] > 1.0, 1.0, 0.0)
    """, prelude=prelude), "k")
    tests = [c.split(": ", 1)[1] for c in q.constant_conditions]
    assert sorted(tests) == sorted(["1.0 < 2.0", "wp.isinf(wp.vec3(2.0, 1.0, 0.0)[0])", "wp.isnan(3.0)",
                                    "LIMIT > 2"])


# --- the race contract -----------------------------------------------------------------------------

def test_the_issue_race_atomic_beside_own_store_is_a_violation() -> None:
    v = violations(module("wp.atomic_add(out, (tid + 1) % n, 1.0)\nout[tid] = 2.0"))
    assert set(v) == {"out"} and "atomics at other elements mixed with reads or stores" in v["out"]


def test_owned_output_reads_and_writes_its_own_element() -> None:
    params = "x: wp.array2d(dtype=float), out: wp.array2d(dtype=float)"
    src = module("out[i, j] = x[j, i] * 2.0\nout[i, j] += out[i, j]\nv = out[i][j]\nout[i, j] = v",
                 params=params, launch="i, j = wp.tid()")
    assert roles(src) == {"out": "owned", "x": "input"} and violations(src) == {}
    assert set(violations(module("out[j, i] = 1.0", params=params, launch="i, j = wp.tid()"))) == {"out"}
    assert set(violations(module("out[i, 0] = 1.0", params=params, launch="i, j = wp.tid()"))) == {"out"}
    # a reassigned own index no longer names the thread's element
    assert set(violations(module("tid = tid + 0\nout[tid] = 1.0"))) == {"out"}


def test_accumulators_need_one_commutative_class_and_no_reads() -> None:
    assert roles(module("wp.atomic_add(acc, 0, x[tid])\nwp.atomic_sub(acc, tid % acc.shape[0], 1.0)")) == \
        {"acc": "accumulator", "x": "input"}
    mixed = violations(module("wp.atomic_add(acc, 0, x[tid])\nwp.atomic_min(acc, 0, x[tid])"))
    assert "more than one class (add, min)" in mixed["acc"]
    assert set(violations(module("wp.atomic_max(acc, 0, 1.0)\nout[tid] = acc[0]"))) == {"acc"}
    used = violations(module("old = wp.atomic_add(acc, 0, 1.0)\nout[tid] = old"))
    assert "returned old value is used" in used["acc"]
    assert violations(module("old = wp.atomic_add(acc, 0, 1.0)")) == {}  # assigned, but never read


def test_cas_and_exch_only_at_the_own_element() -> None:
    assert roles(module("old = wp.atomic_cas(out, tid, 0.0, 1.0)\nout[tid] = old + out[tid]"))["out"] == "owned"
    v = violations(module("wp.atomic_exch(out, (tid + 1) % n, 1.0)"))
    assert "atomic_cas/atomic_exch" in v["out"]


def test_helpers_aliases_structs_builtins_and_local_arrays() -> None:
    prelude = """
    @wp.struct
    class S:
        a: wp.array(dtype=float)
        g: float

    @wp.func
    def put(arr: wp.array(dtype=float), i: int, v: float):
        arr[i] = v + arr[i]
    """
    params = "x: wp.array(dtype=float), out: wp.array(dtype=float), s: S, n: int"
    ok = module("""
    put(out, tid, x[tid])
    put(s.a, tid, s.g)
    r = wp.sample_cdf(wp.rand_init(n, tid), x)
    tmp = wp.zeros(shape=4, dtype=float)
    tmp[(tid + 1) % 4] = 1.0
    out[tid] = tmp[0] + float(r) + float(len(x))
    """, params=params, prelude=prelude)
    assert roles(ok) == {"out": "owned", "s.a": "owned", "x": "input"} and violations(ok) == {}
    assert set(violations(module("put(out, 0, 1.0)", params=params, prelude=prelude))) == {"out"}
    assert set(violations(module("put(s.a, (tid + 1) % n, 1.0)", params=params, prelude=prelude))) == {"s.a"}
    assert set(violations(module("o = out\no[(tid + 1) % n] = 1.0", params=params, prelude=prelude))) == {"out"}
    # handed whole to a builtin (it may read any element) while this kernel writes it
    assert set(violations(module("out[tid] = float(wp.sample_cdf(wp.rand_init(n, tid), out))", params=params,
                                 prelude=prelude))) == {"out"}


_INDEX = st.lists(st.sampled_from(["i", "j", "k", "0", "i + 1", "n"]), min_size=1, max_size=3)


@given(_INDEX)
def test_law_an_index_is_own_iff_it_is_exactly_the_tid_names_in_order(index: list[str]) -> None:
    params = "out: wp.array3d(dtype=float), n: int"
    src = module(f"out[{', '.join(index)}] = 1.0", params=params, launch="i, j, k = wp.tid()")
    assert (roles(src)["out"] == "owned") == (index == ["i", "j", "k"])


_OPS = st.lists(st.sampled_from(["add", "sub", "min", "max", "and", "or", "xor"]), min_size=1, max_size=4)
_CLASS = {"add": "add", "sub": "add"}


@given(_OPS)
def test_law_atomics_alone_are_an_accumulator_iff_one_class(ops: list[str]) -> None:
    params = "acc: wp.array(dtype=int), n: int"
    src = module("\n".join(f"wp.atomic_{op}(acc, (tid * {m}) % n, 1)" for m, op in enumerate(ops)), params=params)
    one_class = len({_CLASS.get(op, op) for op in ops}) == 1
    assert (roles(src)["acc"] == "accumulator") == one_class


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 5), st.lists(st.integers(0, 5), max_size=2)), min_size=1, max_size=10),
       st.integers(0, 5))
def test_law_straight_line_liveness_matches_a_reverse_scan(stmts: list[tuple[int, list[int]]], stored: int) -> None:
    """Straight-line code: the dead set equals the textbook reverse scan, with or without an enclosing if."""
    lines = [f"v{t} = x[tid]" + "".join(f" + v{r}" for r in reads) for t, reads in stmts]
    defined: set[int] = set()
    body = []
    for (t, reads), line in zip(stmts, lines):
        if all(r in defined for r in reads):  # only read what exists
            body.append((t, reads, line))
            defined.add(t)
    if not body:
        return
    out = f"out[tid] = v{body[-1][0] if stored not in defined else stored}"
    live = {int(out.split("v")[-1])}
    expected = []
    for t, reads, _ in reversed(body):
        if t in live:
            live = (live - {t}) | set(reads)
        else:
            expected.append((f"v{t}",))
    expected.reverse()
    text = "\n".join(line for *_, line in body) + "\n" + out
    assert dead(module(text)) == expected
    assert dead(module("if n > 0:\n" + textwrap.indent(text, "    "))) == expected


# --- totals and realism --------------------------------------------------------------------------------

def test_totals_count_kernels_per_defect() -> None:
    totals = QualityTotals()
    totals.add(check_kernel(module("v = 1.0\nout[tid] = x[tid]"), "k"))
    totals.add(check_kernel(module("out[tid] = x[tid]\nwp.atomic_add(out, 0, 1.0)"), "k"))
    totals.add(None)
    d = totals.as_dict()
    assert d["kernels"] == 2 and d["unreadable"] == 1
    assert d["kernels_with"]["dead_assignment"] == 1 and d["kernels_with"]["race_violation"] == 1
    assert d["kernels_with"]["unused_param"] == 2  # acc and n are unused in both
    assert d["dead_assignment_share"] == round(1 / 3, 4)


def test_unreadable_sources_raise_and_are_counted_apart() -> None:
    with pytest.raises(SyntaxError):
        check_kernel("def k(:\n", "k")
    with pytest.raises(LookupError):
        check_kernel(module("out[tid] = 1.0"), "other")
    figures = CorpusFigures()
    figures.add_source("def k(:\n", "k")
    figures.add_source(module("out[tid] = x[tid]"), "k")
    assert figures.quality.unreadable == 1 and figures.kernels == 1


_COUNTS = st.dictionaries(st.sampled_from(list("abcdefg")), st.integers(0, 50), max_size=7)


@given(_COUNTS, _COUNTS)
def test_law_jsd_is_a_bounded_symmetric_divergence(p: dict[str, int], q: dict[str, int]) -> None:
    d = jsd(p, q)
    assert 0.0 <= d <= 1.0 and math.isclose(d, jsd(q, p), abs_tol=1e-12)
    assert jsd(p, p) == pytest.approx(0.0, abs=1e-12)
    if sum(p.values()) and sum(q.values()) and not {k for k, v in p.items() if v} & {k for k, v in q.items() if v}:
        assert d == pytest.approx(1.0)
    assert jsd(p, {k: 3 * v for k, v in p.items()}) == pytest.approx(0.0, abs=1e-12)


def test_corpus_figures_from_sources() -> None:
    figures = CorpusFigures()
    figures.add_source(module("out[tid] = wp.sin(x[tid])"), "k", {"cuda_ptx": True, "cpu_compile": False,
                                                                  "execution": "ok"})
    figures.add_source(module("wp.atomic_add(acc, 0, x[tid] + 1.0)"), "k")
    d = figures.as_dict()
    assert d["kernels"] == 2 and d["param_median"] == 4
    assert d["builtin_kernels"]["sin"] == 1 and d["builtin_kernels"]["add"] == 1
    assert d["feature_shares"]["atomics"] == 0.5
    assert d["validation"]["ptx"] == {"checked": 1, "passed": 1, "rate": 1.0}
    assert d["validation"]["cpu_compile"]["rate"] == 0.0 and d["validation"]["execution"] == {"ok": 1}
