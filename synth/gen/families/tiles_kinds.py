"""The shapes of tile kernel this family writes, one function per kind, each filling a
``Ctx`` (parameters, body, launch grid) the way warp.examples / warp.tests tile kernels
look: elementwise pipelines, per-block reductions, GEMM over K tiles, FFT filtering,
Cholesky solves, sorts and scans, indexed gather/scatter, and per-thread tiles.

Every kernel is race-free by the rules of ``synth.quality.races``: a block stores only its own
tile (``offset=(i * TILE_M, ...)``), inputs are only read, shared totals are atomic adds,
per-thread values go to the thread's own element. Linear algebra gets well-posed input
(``A A^T + n I`` is symmetric positive definite).
"""

from __future__ import annotations

from synth.gen.families.tiles_base import Ctx, Tile
from synth.gen.families.tiles_ops import helper, pipeline, reduce_sink

_SIZES = (4, 8, 8, 16, 16, 32)


def _float(ctx: Ctx) -> str:
    return "float64" if ctx.chance(0.2) and ctx.wide else "float32"


def _grid(ctx: Ctx, dims: int) -> None:
    ctx.grid = tuple(ctx.rng.choice((1, 2, 2, 3, 4)) for _ in range(dims))
    ctx.tids = ["i", "j"][:dims] if ctx.chance(0.8) else ["bi", "bj"][:dims]
    ctx.used.update(ctx.tids)


def _start(ctx: Ctx, stem: str, array_stem: str, dtype: str, shape: tuple[int, ...]) -> Tile:
    """The first tile: the block's own tile, a 1-D one sometimes as a squeezed row of a 2-D array."""
    if len(shape) == 2 or len(ctx.grid) > 1 or not ctx.chance(0.3):
        return ctx.load_own(stem, array_stem, dtype, shape)
    arr = ctx.array(array_stem, dtype, (ctx.grid[0], shape[0]))
    row = f"wp.tile_load({arr}, shape=(1, {ctx.dim(shape[0])}), offset=({ctx.tids[0]}, 0))"
    if ctx.chance(0.5):
        row = ctx.assign("row", row, dtype, (1, shape[0])).expr
    return ctx.assign(stem, f"wp.tile_squeeze({row})", dtype, shape)


def elementwise(ctx: Ctx) -> None:
    two_d = ctx.chance(0.75)
    _grid(ctx, 2 if two_d and ctx.chance(0.4) else 1)
    dt = _float(ctx)
    shape = (ctx.rng.choice(_SIZES), ctx.rng.choice(_SIZES)) if two_d else (ctx.rng.choice((16, 32, 64, 128)),)
    if two_d and ctx.chance(0.3):
        shape = (shape[0], shape[0])  # square tiles allow transpose, diag_add, matmul
    ctx.const("TILE_M" if two_d else "TILE", shape[0])
    if two_d:
        ctx.const("TILE_N", shape[1])
    cur = _start(ctx, ctx.rng.choice(("t", "x", "a")), ctx.rng.choice(("x", "a", "src", "inp")), dt, shape)
    cur = pipeline(ctx, cur, ctx.rng.randint(1, 4))
    if ctx.chance(0.35):
        reduce_sink(ctx, cur)
    if ctx.chance(0.15) and ctx.wide:
        to = "float64" if dt == "float32" else "float32"
        cur = ctx.assign("r", f"wp.tile_astype({cur.expr}, {ctx.spell(to)})", to, cur.shape)
    ctx.store_own(ctx.rng.choice(("out", "y", "dst", "result")), cur)


def reduction(ctx: Ctx) -> None:
    _grid(ctx, 1)
    dt = _float(ctx)
    two_d = ctx.chance(0.6)
    shape = (ctx.rng.choice(_SIZES), ctx.rng.choice(_SIZES)) if two_d else (ctx.rng.choice((16, 32, 64, 256)),)
    ctx.const("TILE_M" if two_d else "TILE", shape[0])
    if two_d:
        ctx.const("TILE_N", shape[1])
    cur = _start(ctx, "t", ctx.rng.choice(("x", "values", "data")), dt, shape)
    if ctx.chance(0.6):
        cur = pipeline(ctx, cur, ctx.rng.randint(1, 2))
    for _ in range(ctx.rng.randint(1, 2)):
        reduce_sink(ctx, cur)


def gemm(ctx: Ctx) -> None:
    _grid(ctx, 2)
    i, j = ctx.tids
    dt = _float(ctx)
    sp = ctx.spell(dt)
    tm, tn, tk = (ctx.rng.choice((8, 16, 16, 32)) for _ in range(3))
    ctx.const("TILE_M", tm), ctx.const("TILE_N", tn), ctx.const("TILE_K", tk)
    k_tiles = ctx.rng.randint(1, 3)
    a_arr = ctx.array("A", dt, (tm * ctx.grid[0], tk * k_tiles))
    transposed = ctx.chance(0.3)
    b_arr = ctx.array("B", dt, (tn * ctx.grid[1], tk * k_tiles) if transposed else (tk * k_tiles, tn * ctx.grid[1]))
    acc = ctx.fresh("acc" if ctx.chance(0.5) else "sum")
    form = ctx.rng.choice(("inplace", "inplace", "add", "alpha"))
    ctx.emit(f"{acc} = wp.tile_zeros(shape=(TILE_M, TILE_N), dtype={sp})")
    count = ctx.fresh("count")
    ctx.emit(f"{count} = int({a_arr}.shape[1] / TILE_K)" if ctx.chance(0.6) else f"{count} = {k_tiles}")
    ctx.emit(f"for k in range({count}):" if ctx.chance(0.5) else f"for k in range(0, {count}):")
    ctx.indent += 1
    ctx.emit(f"a = wp.tile_load({a_arr}, shape=(TILE_M, TILE_K), offset=({i} * TILE_M, k * TILE_K))")
    if transposed:
        ctx.emit(f"bt = wp.tile_load({b_arr}, shape=(TILE_N, TILE_K), offset=({j} * TILE_N, k * TILE_K))")
        b = "wp.tile_transpose(bt)"
    else:
        ctx.emit(f"b = wp.tile_load({b_arr}, shape=(TILE_K, TILE_N), offset=(k * TILE_K, {j} * TILE_N))")
        b = "b"
    if form == "inplace":
        ctx.emit(f"wp.tile_matmul(a, {b}, {acc})")
    elif form == "add":
        ctx.emit(f"{acc} = {acc} + wp.tile_matmul(a, {b})" if ctx.chance(0.5) else f"{acc} += wp.tile_matmul(a, {b})")
    else:
        ctx.emit(f"wp.tile_matmul(a, {b}, {acc}, alpha={ctx.lit(0.5, dt)}, beta={ctx.lit(1.0, dt)})")
    ctx.indent -= 1
    ctx.used.update({"a", "b", "bt", "k"})
    cur = Tile(acc, dt, (tm, tn))
    if ctx.chance(0.6):
        cur = pipeline(ctx, cur, ctx.rng.randint(1, 2))
    if ctx.chance(0.2):
        reduce_sink(ctx, cur)
    ctx.store_own("C", cur)


def fft(ctx: Ctx) -> None:
    _grid(ctx, 1)
    dt = "vec2d" if ctx.chance(0.2) and ctx.wide else "vec2f"
    scalar = "float64" if dt == "vec2d" else "float32"
    # Without MathDx (NVRTC here) a CUDA tile FFT needs its length divisible by block_dim.
    m, n = ctx.rng.choice((1, 2, 4, 8)), ctx.rng.choice((32, 64, 64, 128))
    ctx.block_dim = ctx.rng.choice([b for b in (32, 64, 128) if b <= n])
    ctx.const("TILE_M", m), ctx.const("TILE_N", n)
    x = ctx.load_own("x", ctx.rng.choice(("signal", "x", "field")), dt, (m, n), shared=False)
    pick = ctx.rng.random()
    inverse_only = pick < 0.15
    ctx.emit(f"wp.tile_{'ifft' if inverse_only else 'fft'}({x.expr})")
    cur = x
    if not inverse_only:
        if pick < 0.55:  # filter: pointwise complex product with a transformed kernel
            h = ctx.load_own("h", ctx.rng.choice(("kernel", "filt", "h")), dt, (m, n), shared=False)
            ctx.emit(f"wp.tile_fft({h.expr})")
            name = ctx.fresh(ctx.rng.choice(("cmul", "complex_mul")))
            sp = ctx.spell(dt)
            ctx.helpers += ["@wp.func", f"def {name}(a: {sp}, b: {sp}):",
                            # a * s keeps a's type (a constructed vector would not be a vec2 to tile_ifft)
                            f"    return a * b[0] + {sp}(-a[1], a[0]) * b[1]", "", ""]
            ctx.helper_names.append(name)
            cur = ctx.assign("y", f"wp.tile_map({name}, {x.expr}, {h.expr})", dt, (m, n))
        elif pick < 0.8:
            cur = ctx.assign("y", f"{x.expr} * {ctx.lit(round(1.0 / n, 6), scalar)}", dt, (m, n))
        if ctx.chance(0.75):
            ctx.emit(f"wp.tile_ifft({cur.expr})")
    if ctx.chance(0.3):
        mag = ctx.assign("mag", f"wp.tile_map(wp.length, {cur.expr})", scalar, (m, n))
        ctx.store_own(ctx.rng.choice(("power", "mag", "amp")), mag)
        if ctx.chance(0.5):
            return
    ctx.store_own(ctx.rng.choice(("out", "spectrum", "y")), cur)


def cholesky(ctx: Ctx) -> None:
    _grid(ctx, 1)
    dt = _float(ctx)
    sp = ctx.spell(dt)
    n = ctx.rng.choice((4, 8, 8, 16))
    ctx.const("N" if ctx.chance(0.5) else "DIM", n)
    a = ctx.load_own("a", ctx.rng.choice(("A", "mats", "a")), dt, (n, n))
    spd = ctx.assign("s", f"wp.tile_matmul({a.expr}, wp.tile_transpose({a.expr}))", dt, (n, n))
    shift = round(n * ctx.rng.uniform(0.5, 2.0) + 1.0, 1)
    diag = f"wp.tile_full(shape={ctx.dim(n)}, value={ctx.lit(shift, dt)}, dtype={sp})"
    if ctx.chance(0.3):
        d = ctx.load_own("d", "diag", dt, (n,))
        diag = f"wp.tile_map(wp.abs, {d.expr}) + {diag}"
    spd = ctx.assign("s", f"wp.tile_diag_add({spd.expr}, {diag})", dt, (n, n))
    rhs_cols = ctx.rng.choice((0, 0, 1, 2, 4))
    rhs_shape = (n,) if rhs_cols == 0 else (n, rhs_cols)
    if rhs_cols:
        ctx.const("NRHS", rhs_cols)
    b = ctx.load_own("b", ctx.rng.choice(("rhs", "b", "y")), dt, rhs_shape)
    upper = ctx.chance(0.15)
    fill = ', fill_mode="upper"' if upper else ""
    if ctx.chance(0.35):
        ctx.emit(f"wp.tile_cholesky_inplace({spd.expr}{fill})")
        lo = spd
    else:
        lo = ctx.assign("L", f"wp.tile_cholesky({spd.expr}{fill})", dt, (n, n))
    solve = ctx.rng.choice(("solve", "solve_inplace", "triangular", "triangular_inplace"))
    if upper:
        solve = ctx.rng.choice(("solve", "solve_inplace"))
    if solve == "solve":
        x = ctx.assign("x", f"wp.tile_cholesky_solve({lo.expr}, {b.expr}{fill})", dt, rhs_shape)
    elif solve == "solve_inplace":
        ctx.emit(f"wp.tile_cholesky_solve_inplace({lo.expr}, {b.expr}{fill})")
        x = b
    elif solve == "triangular":
        z = ctx.assign("z", f"wp.tile_lower_solve({lo.expr}, {b.expr})", dt, rhs_shape)
        x = ctx.assign("x", f"wp.tile_upper_solve(wp.tile_transpose({lo.expr}), {z.expr})", dt, rhs_shape)
    else:
        ctx.emit(f"wp.tile_lower_solve_inplace({lo.expr}, {b.expr})")
        ctx.emit(f"wp.tile_upper_solve_inplace(wp.tile_transpose({lo.expr}), {b.expr})")
        x = b
    if ctx.chance(0.3):
        ctx.store_own(ctx.rng.choice(("factor", "L_out")), lo)
    if ctx.chance(0.2):
        x = pipeline(ctx, x, 1)
    ctx.store_own(ctx.rng.choice(("x", "sol", "out")), x)


def sort_scan(ctx: Ctx) -> None:
    _grid(ctx, 1)
    n = ctx.rng.choice((16, 32, 64, 128))
    ctx.const("TILE", n)
    dt = ctx.rng.choice(("float32", "float32", "int32", "uint32" if ctx.wide else "int32"))
    keys = ctx.load_own("keys", ctx.rng.choice(("keys", "x", "scores")), dt, (n,))
    if ctx.chance(0.6):
        if ctx.chance(0.3):
            vals = ctx.load_own("vals", ctx.rng.choice(("payload", "ids")), ctx.rng.choice(("int32", "float32")), (n,))
        else:
            vals = Tile(ctx.fresh("vals"), "int32", (n,))
            ctx.emit(f"{vals.expr} = wp.tile_arange({ctx.dim(n)}, dtype={ctx.spell('int32')})" if ctx.chance(0.5)
                     else f"{vals.expr} = wp.tile_arange({n}, dtype=int)")
        ctx.emit(f"wp.tile_sort({keys.expr}, {vals.expr})")
        ctx.store_own(ctx.rng.choice(("order", "perm", "sorted_vals")), vals)
    scan = ctx.rng.choice(("tile_scan_inclusive", "tile_scan_exclusive", "tile_scan_max_inclusive",
                           "tile_scan_min_inclusive"))
    cur = ctx.assign("c", f"wp.{scan}({keys.expr})", dt, (n,))
    if dt == "float32" and ctx.chance(0.4):
        cur = pipeline(ctx, cur, 1)
    ctx.store_own(ctx.rng.choice(("prefix", "cdf", "out")), cur)


def indexed(ctx: Ctx) -> None:
    _grid(ctx, 1)
    i = ctx.tids[0]
    dt = _float(ctx)
    rows, cols = ctx.rng.choice((2, 4, 8)), ctx.rng.choice((4, 8, 16))
    ctx.const("ROWS", rows), ctx.const("COLS", cols)
    table = 8  # index inputs are in [0, 8): every gathered row exists
    ix = ctx.load_own("idx", ctx.rng.choice(("indices", "idx", "rows")), "int32", (rows,))
    src = ctx.array(ctx.rng.choice(("table", "src", "points")), dt, (table, cols))
    g = ctx.assign("g", f"wp.tile_load_indexed({src}, indices={ix.expr}, shape=(ROWS, COLS), offset=(0, 0), "
                        f"axis=0)", dt, (rows, cols))
    if ctx.chance(0.4):
        whole = ctx.array(ctx.rng.choice(("lut", "basis")), dt, (table, cols))
        full = ctx.assign("lut", f"wp.tile_load({whole}, shape=({table}, COLS))", dt, (table, cols))
        g = ctx.assign("g", f"{g.expr} + {full.expr}[{ix.expr}]", dt, (rows, cols))
    if ctx.chance(0.5):
        g = pipeline(ctx, g, ctx.rng.randint(1, 2))
    sinks = ctx.rng.sample(("store", "scatter", "atomic"), ctx.rng.randint(1, 2))
    for sink in sinks:
        if sink == "store":
            ctx.store_own(ctx.rng.choice(("out", "gathered")), g)
        elif sink == "scatter":
            perm = ctx.fresh("perm")
            ctx.emit(f"{perm} = wp.tile_arange({rows - 1}, -1, -1, dtype=int)" if ctx.chance(0.6)
                     else f"{perm} = wp.tile_arange({rows}, dtype=int)")
            out = ctx.array(ctx.rng.choice(("reordered", "dst")), dt, ctx.blocked((rows, cols)))
            ctx.emit(f"wp.tile_store_indexed({out}, {perm}, {g.expr}, offset=({i} * ROWS, 0), axis=0)")
        else:
            acc = ctx.array(ctx.rng.choice(("grad", "acc", "bins")), dt, (table, cols))
            ctx.emit(f"wp.tile_atomic_add_indexed({acc}, {ix.expr}, {g.expr}, offset=(0, 0), axis=0)")


def _untile_or_reduce(ctx: Ctx, t: Tile, p_untile: float, outs: tuple[str, ...], reds: tuple[str, ...],
                      ops: tuple[str, ...]) -> None:
    """A per-thread tile back out: each thread's own element (``wp.untile``) or one block
    reduction stored in the block's slot."""
    i, lane = ctx.tids[0], ctx.lane
    if ctx.chance(p_untile):
        out = ctx.array(ctx.rng.choice(outs), t.dtype, (ctx.grid[0], ctx.block_dim))
        ctx.emit(f"{out}[{i}, {lane}] = wp.untile({t.expr})")
    else:
        red = ctx.array(ctx.rng.choice(reds), t.dtype, ctx.grid)
        op = ops[0] if len(ops) == 1 else ctx.rng.choice(ops)  # no draw for one op: seeds keep their kernels
        ctx.emit(f"wp.tile_store({red}, wp.{op}({t.expr}), offset={i})")


def per_thread(ctx: Ctx) -> None:
    """Per-thread values turned into tiles and back (``wp.tile``/``untile``, scatters, stacks)."""
    _grid(ctx, 1)
    i = ctx.tids[0]
    ctx.lane = lane = ctx.fresh(ctx.rng.choice(("lane", "t", "k")))
    b = ctx.block_dim
    ctx.const("BLOCK_DIM", b)
    x = ctx.array(ctx.rng.choice(("x", "values", "inp")), "float32", (ctx.grid[0], b))
    v = ctx.fresh("v")
    ctx.emit(f"{v} = {x}[{i}, {lane}]")
    parts = ctx.rng.sample(("tile", "from_thread", "hist", "masked", "stack"), ctx.rng.randint(1, 3))
    if parts == ["hist"]:
        parts.append("tile")  # v (the thread's value) is read by something
    for part in parts:
        if part == "tile" and ctx.chance(0.35):  # vector values: a tile of vec3 (preserve_type)
            vec = ctx.spell("vec3f")
            p = ctx.array(ctx.rng.choice(("pos", "vel", "dirs")), "vec3f", (ctx.grid[0], b))
            t = ctx.assign("t", f"wp.tile({p}[{i}, {lane}] * {v}, preserve_type=True)", "vec3f", (0,))
            t = ctx.assign("t", f"{t.expr} + wp.tile({vec}({v}, 0.0, 1.0), preserve_type=True)" if ctx.chance(0.5)
                           else f"{t.expr} * {round(ctx.rng.uniform(-2, 2), 2)}", "vec3f", (0,))
            _untile_or_reduce(ctx, t, 0.5, ("out", "moved"), ("block_sum", "centroid"), ("tile_sum",))
        elif part == "tile":
            t = ctx.assign("t", f"wp.tile({v})", "float32", (0,))
            t = ctx.assign("t", f"wp.tile_map({helper(ctx, 1, 'float32')}, {t.expr})" if ctx.chance(0.5)
                           else f"{t.expr} * {round(ctx.rng.uniform(-2, 2), 2)} + wp.tile({v} * {v})", "float32", (0,))
            _untile_or_reduce(ctx, t, 0.6, ("out", "y"), ("block_sum", "partial"), ("tile_sum", "tile_max", "tile_min"))
        elif part == "from_thread":
            m = ctx.rng.choice((8, 16, 32))
            ctx.const("TILE", m)
            bc = ctx.assign("bc", f"wp.tile_from_thread(shape={ctx.dim(m)}, value={v}, thread_idx=0)",
                            "float32", (m,))
            other = ctx.load_own("w", ctx.rng.choice(("w", "weights")), "float32", (m,))
            ctx.store_own(ctx.rng.choice(("scaled", "out")), Tile(f"{bc.expr} * {other.expr}", "float32", (m,)))
        elif part == "hist":
            nb = ctx.rng.choice((4, 8))
            ctx.const("BINS", nb)
            xi = ctx.array(ctx.rng.choice(("labels", "keys")), "int32", (ctx.grid[0], b))
            h = ctx.fresh("hist")
            ctx.emit(f"{h} = wp.tile_zeros(shape=BINS, dtype=int, storage=\"shared\")")
            ctx.emit(f"wp.tile_scatter_add({h}, {xi}[{i}, {lane}] % BINS, 1, True)")
            ctx.store_own(ctx.rng.choice(("counts", "histogram")), Tile(h, "int32", (nb,)))
        elif part == "masked":
            m = ctx.rng.choice((8, 16, 32))
            ctx.const("SLOTS", m)
            s = ctx.fresh("slots")
            ctx.emit(f"{s} = wp.tile_zeros(shape=SLOTS, dtype={ctx.spell('float32')})")
            ctx.emit(f"wp.tile_scatter_masked({s}, {lane}, {v}, {lane} < SLOTS)")
            ctx.store_own(ctx.rng.choice(("packed", "slots_out")), Tile(s, "float32", (m,)))
        else:
            xi = ctx.array(ctx.rng.choice(("items", "ids")), "int32", (ctx.grid[0], b))
            st, val, slot, cnt = ctx.fresh("stack"), ctx.fresh("val"), ctx.fresh("slot"), ctx.fresh("count")
            ctx.emit(f"{st} = wp.tile_stack(capacity=BLOCK_DIM, dtype=int)")
            if ctx.chance(0.3):
                ctx.emit(f"wp.tile_stack_clear({st})")
            ctx.emit(f"wp.tile_stack_push({st}, {xi}[{i}, {lane}], {v} > {round(ctx.rng.uniform(-1, 1), 1)})")
            ctx.emit(f"{cnt} = wp.tile_stack_count({st})")
            ctx.emit(f"{val}, {slot} = wp.tile_stack_pop({st})")
            tot = ctx.array(ctx.rng.choice(("total", "sums")), "int32", ctx.grid)
            peak = ctx.array(ctx.rng.choice(("pushed", "sizes")), "int32", ctx.grid)
            ctx.emit(f"if {slot} != -1:")
            ctx.emit(f"    wp.atomic_add({tot}, {i}, {val})")
            ctx.emit(f"wp.atomic_max({peak}, {i}, {cnt})")


KINDS = {"elementwise": (elementwise, 3.0), "reduction": (reduction, 1.2), "gemm": (gemm, 1.5), "fft": (fft, 0.8),
         "cholesky": (cholesky, 1.0), "sort_scan": (sort_scan, 0.9), "indexed": (indexed, 0.9),
         "per_thread": (per_thread, 1.0)}
