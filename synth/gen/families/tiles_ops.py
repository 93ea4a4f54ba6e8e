"""Elementwise tile pipelines, the scalar ``@wp.func`` helpers ``tile_map``/``tile_reduce``
apply, and per-block reductions: the vocabulary most tile kernels are built from.

A pipeline is a chain of steps on one current tile; each step reads the current tile (and
maybe a freshly loaded input tile) and binds a new local, so everything computed feeds the
final store (live by construction). Values stay bounded (inputs are in [-2, 2]): maps are
bounded builtins or helpers of them, scales are small, so outputs stay finite.
"""

from __future__ import annotations

from synth.gen.families.tiles_base import FLOATS, Ctx, Tile

_UNARY = ("sin", "cos", "tanh", "abs", "floor", "ceil", "trunc", "round", "sqrt", "exp", "log")
_BINARY = ("add", "sub", "mul", "min", "max")
_HELPER_NAMES = ("blend", "soft_clip", "shade", "smooth", "mix", "damp", "bump", "ramp", "fade", "shrink")


def scalar_expr(ctx: Ctx, names: list[str], dtype: str, depth: int = 0) -> str:
    """A random bounded scalar expression over ``names`` (a helper's body)."""
    r = ctx.rng.random() if depth else 0.25 + 0.75 * ctx.rng.random()  # the top is never a bare leaf
    if depth >= 2 or r < 0.25:
        if ctx.chance(0.75):
            return ctx.rng.choice(names)
        return ctx.lit(round(ctx.rng.uniform(0.1, 1.5), 2), dtype)
    if r < 0.55:
        op = ctx.rng.choice(("+", "-", "*"))
        return f"{scalar_expr(ctx, names, dtype, depth + 1)} {op} {scalar_expr(ctx, names, dtype, depth + 1)}"
    if r < 0.8:
        fn = ctx.rng.choice(("sin", "cos", "tanh", "abs"))
        return f"wp.{fn}({scalar_expr(ctx, names, dtype, depth + 1)})"
    fn = ctx.rng.choice(("min", "max"))
    return f"wp.{fn}({scalar_expr(ctx, names, dtype, depth + 1)}, {scalar_expr(ctx, names, dtype, depth + 1)})"


def helper(ctx: Ctx, arity: int, dtype: str) -> str:
    """A new ``@wp.func`` of ``arity`` scalars of ``dtype``, reading every parameter."""
    name = ctx.fresh(ctx.rng.choice(_HELPER_NAMES))
    args = ["x", "y", "z"][:arity]
    expr = scalar_expr(ctx, args, dtype)
    for a in args:  # every parameter is read
        if not _reads(expr, a):
            expr = f"{expr} + {a}" if ctx.chance(0.5) else f"{a} * {ctx.lit(0.5, dtype)} - {expr}"
            expr = expr if dtype != "float32" or not ctx.chance(0.2) else f"wp.tanh({expr})"
    sp = ctx.spell(dtype)
    lines = ["@wp.func", f"def {name}({', '.join(f'{a}: {sp}' for a in args)}):"]
    if ctx.chance(0.3):
        lines += [f"    s = {expr}", f"    return wp.clamp(s, {ctx.lit(-4.0, dtype)}, {ctx.lit(4.0, dtype)})"]
    else:
        lines += [f"    return {expr}"]
    ctx.helpers += [*lines, "", ""]
    ctx.helper_names.append(name)
    return name


_REDUCERS = ("x + y", "wp.max(x, y)", "wp.min(x, y)", "wp.max(wp.abs(x), wp.abs(y))", "wp.min(wp.abs(x), wp.abs(y))",
             "wp.abs(x) + wp.abs(y)")


def reducer(ctx: Ctx, dtype: str) -> str:
    """A ``@wp.func`` combining two partial results for ``tile_reduce``: associative and
    commutative, as a reduction tree needs (the block's tree order is not the CPU's)."""
    name = ctx.fresh(ctx.rng.choice(("combine", "reduce_op", "merge")))
    sp = ctx.spell(dtype)
    ctx.helpers += ["@wp.func", f"def {name}(x: {sp}, y: {sp}):", f"    return {ctx.rng.choice(_REDUCERS)}", "", ""]
    ctx.helper_names.append(name)
    return name


def _reads(expr: str, name: str) -> bool:
    import re

    return re.search(rf"\b{name}\b", expr) is not None


def other(ctx: Ctx, like: Tile) -> Tile:
    """Another input tile of ``like``'s shape and dtype, loaded from a new input array."""
    return ctx.load_own(ctx.rng.choice(("b", "c", "w", "v")), ctx.rng.choice(("b", "c", "w", "rhs")),
                        like.dtype, like.shape)


def step(ctx: Ctx, cur: Tile) -> Tile:
    """One pipeline step on a float tile."""
    dt, sh, sp = cur.dtype, cur.shape, ctx.spell(cur.dtype)
    two_d = len(sh) == 2
    kinds = ["binop", "scale", "map", "map2", "func", "full", "neg", "astype", "axpy", "extract", "dot",
             "center", *(["random"] if ctx.random else [])]
    if two_d:
        kinds += ["broadcast", "view", "reshape", "broadcast"]
        if sh[0] == sh[1]:
            kinds += ["transpose", "diag", "matmul"]
    else:
        kinds += ["arange", "scan"] if dt == "float32" else ["arange"]
    kind = ctx.rng.choice(kinds)
    if kind == "binop":
        b = other(ctx, cur)
        op = ctx.rng.choice(("+", "-", "*"))
        return ctx.assign("u", f"{cur.expr} {op} {b.expr}", dt, sh)
    if kind == "scale":
        k = ctx.scalar_param(ctx.rng.choice(("alpha", "scale", "gain")), dt) if ctx.chance(0.4) \
            else ctx.lit(round(ctx.rng.uniform(-2, 2), 2), dt)
        return ctx.assign("u", f"{cur.expr} * {k}" if ctx.chance(0.5) else f"{k} * {cur.expr}", dt, sh)
    if kind == "map":
        fn = ctx.rng.choice(_UNARY)
        arg = cur.expr
        if fn in ("sqrt", "log"):
            arg = ctx.assign("a", f"wp.tile_map(wp.abs, {cur.expr}) + {_full(ctx, sh, 1.0, dt)}", dt, sh).expr
        elif fn == "exp":
            arg = ctx.assign("a", f"wp.tile_map(wp.sin, {cur.expr})", dt, sh).expr
        return ctx.assign("m", f"wp.tile_map(wp.{fn}, {arg})", dt, sh)
    if kind == "map2":
        b = other(ctx, cur)
        return ctx.assign("m", f"wp.tile_map(wp.{ctx.rng.choice(_BINARY)}, {cur.expr}, {b.expr})", dt, sh)
    if kind == "func":
        arity = ctx.rng.choice((1, 2, 2, 3))
        args = [cur.expr] + [other(ctx, cur).expr for _ in range(arity - 1)]
        return ctx.assign("m", f"wp.tile_map({helper(ctx, arity, dt)}, {', '.join(args)})", dt, sh)
    if kind == "full":
        v = round(ctx.rng.uniform(-2, 2), 2)
        pick = ctx.rng.random()
        extra = _full(ctx, sh, v, dt) if pick < 0.5 else \
            f"wp.tile_ones(shape={ctx.shape(sh, ctx.chance(0.5))}, dtype={sp})"
        return ctx.assign("u", f"{cur.expr} {ctx.rng.choice(('+', '-'))} {extra}", dt, sh)
    if kind == "neg":
        return ctx.assign("u", f"-{cur.expr}", dt, sh)
    if kind == "astype":
        src = ctx.load_own("q", ctx.rng.choice(("counts", "labels", "ids")), "int32", sh)
        return ctx.assign("u", f"{cur.expr} + wp.tile_astype({src.expr}, {sp})", dt, sh)
    if kind == "axpy":
        b = other(ctx, cur)
        acc = ctx.assign("y", f"{cur.expr} * {ctx.lit(1.0, dt)}", dt, sh) if ctx.chance(0.3) else cur
        ctx.emit(f"wp.tile_axpy({ctx.lit(round(ctx.rng.uniform(-1, 1), 2), dt)}, {b.expr}, {acc.expr})")
        return acc
    if kind == "extract":
        idx = ", ".join(str(ctx.rng.randrange(n)) for n in sh)
        e = ctx.fresh("e")
        ctx.emit(f"{e} = wp.tile_extract({cur.expr}, {idx})")
        if ctx.chance(0.5):
            return ctx.assign("u", f"{cur.expr} * {e}", dt, sh)  # a tile times a scalar; +/- need a tile
        return ctx.assign("u", f"{cur.expr} - wp.tile_full(shape={ctx.shape(sh)}, value={e}, dtype={sp})", dt, sh)
    if kind == "dot":
        b = other(ctx, cur)
        flat = (sh[0] * sh[1],) if two_d else sh
        x = f"wp.tile_reshape({cur.expr}, shape={ctx.shape(flat)})" if two_d else cur.expr
        y = f"wp.tile_reshape({b.expr}, shape={ctx.shape(flat)})" if two_d else b.expr
        d = ctx.assign("d", f"wp.tile_dot({x}, {y})", dt, (1,))
        return ctx.assign("u", f"{cur.expr} - wp.tile_broadcast({d.expr}, shape={ctx.shape(sh)})", dt, sh)
    if kind == "random":
        state = ctx.random_state()
        if ctx.chance(0.5):
            noise = f"wp.tile_randf(shape={ctx.shape(sh)}, rng={state}, min=-0.5, max=0.5)" if ctx.chance(0.5) \
                else f"wp.tile_randf(shape={ctx.shape(sh)}, rng={state})"
            noise = noise if dt == "float32" else f"wp.tile_astype({noise}, {sp})"
        else:
            lo = ctx.rng.randint(-3, 0)
            noise = f"wp.tile_astype(wp.tile_randi(shape={ctx.shape(sh)}, rng={state}, min={lo}, max={lo + 4}), {sp})"
        return ctx.assign("u", f"{cur.expr} + {noise}", dt, sh)
    if kind == "center":
        red = ctx.rng.choice(("tile_max", "tile_min", "tile_sum"))
        m = ctx.assign("s", f"wp.{red}({cur.expr})", dt, (1,))
        return ctx.assign("u", f"{cur.expr} - wp.tile_broadcast({m.expr}, shape={ctx.shape(sh)})", dt, sh)
    if kind == "broadcast":
        axis = ctx.rng.randrange(2)
        n = sh[1 - axis]
        vec = ctx.load_own(ctx.rng.choice(("bias", "row")), ctx.rng.choice(("bias", "shift")), dt, (n,)) \
            if axis == 0 and len(ctx.grid) == 1 else _load_vector(ctx, dt, n)
        part = (1, n) if axis == 0 else (n, 1)
        src = vec.expr if axis == 0 and ctx.chance(0.4) else f"wp.tile_reshape({vec.expr}, shape={ctx.shape(part)})"
        op = ctx.rng.choice(("+", "-", "*"))
        return ctx.assign("u", f"{cur.expr} {op} wp.tile_broadcast({src}, shape={ctx.shape(sh)})", dt, sh)
    if kind == "view":
        return _halves(ctx, cur)
    if kind == "reshape":
        flat = (sh[0] * sh[1],)
        f = ctx.assign("flat", f"wp.tile_reshape({cur.expr}, shape={ctx.shape(flat)})", dt, flat)
        f = step(ctx, f) if ctx.chance(0.7) else f
        return ctx.assign("u", f"wp.tile_reshape({f.expr}, shape={ctx.shape(sh)})", dt, sh)
    if kind == "transpose":
        return ctx.assign("u", f"wp.tile_transpose({cur.expr})" if ctx.chance(0.4)
                          else f"{cur.expr} + wp.tile_transpose({cur.expr})", dt, sh)
    if kind == "diag":
        d = _full(ctx, (sh[0],), round(ctx.rng.uniform(0.5, 3), 1), dt) if ctx.chance(0.6) \
            else ctx.load_own("dg", ctx.rng.choice(("diag", "d")), dt, (sh[0],)).expr
        return ctx.assign("u", f"wp.tile_diag_add({cur.expr}, {d})", dt, sh)
    if kind == "matmul":
        b = other(ctx, cur)
        scale = f", alpha={ctx.lit(0.25, dt)}" if ctx.chance(0.3) else ""
        return ctx.assign("p", f"wp.tile_matmul({cur.expr}, {b.expr}{scale})", dt, sh)
    if kind == "arange":
        n = sh[0]
        ar = f"wp.tile_arange({n}, dtype={sp})" if ctx.chance(0.5) else \
            f"wp.tile_astype(wp.tile_arange({n}, dtype=int), {sp})"
        return ctx.assign("u", f"{cur.expr} + {ar} * {ctx.lit(round(ctx.rng.uniform(-0.3, 0.3), 2), dt)}", dt, sh)
    scan = ctx.rng.choice(("tile_scan_inclusive", "tile_scan_exclusive", "tile_scan_max_inclusive",
                           "tile_scan_min_inclusive"))
    return ctx.assign("c", f"wp.{scan}({cur.expr})", dt, sh)


def _full(ctx: Ctx, shape: tuple[int, ...], value: float, dtype: str) -> str:
    return f"wp.tile_full(shape={ctx.shape(shape, ctx.chance(0.5))}, value={ctx.lit(value, dtype)}, dtype={ctx.spell(dtype)})"


def _load_vector(ctx: Ctx, dtype: str, n: int) -> Tile:
    """A 1-D input tile read by every block (an input may be read anywhere)."""
    arr = ctx.array(ctx.rng.choice(("bias", "shift", "coef")), dtype, (n,))
    return ctx.assign("vec", f"wp.tile_load({arr}, shape={ctx.shape((n,), ctx.chance(0.5))})", dtype, (n,))


def _halves(ctx: Ctx, cur: Tile) -> Tile:
    """Swap (or copy) the column halves through tile_view and tile_assign."""
    m, n = cur.shape
    if n % 2:
        return ctx.assign("u", f"wp.tile_transpose(wp.tile_transpose({cur.expr}))", cur.dtype, cur.shape)
    h, sp = n // 2, ctx.spell(cur.dtype)
    half = ctx.shape((m, h))
    full = ctx.chance(0.5)
    w = ctx.assign("w", f"wp.tile_{'empty' if full else 'zeros'}(shape={ctx.shape(cur.shape)}, dtype={sp})",
                   cur.dtype, cur.shape)
    ctx.emit(f"wp.tile_assign({w.expr}, wp.tile_view({cur.expr}, offset=(0, 0), shape={half}), offset=(0, {h}))")
    if full:
        ctx.emit(f"wp.tile_assign({w.expr}, wp.tile_view({cur.expr}, offset=(0, {h}), shape={half}), "
                 f"offset=(0, 0))")
        return w
    return ctx.assign("u", f"{w.expr} + {cur.expr}", cur.dtype, cur.shape)


def pipeline(ctx: Ctx, cur: Tile, steps: int) -> Tile:
    for _ in range(steps):
        cur = step(ctx, cur)
    return cur


def reduce_sink(ctx: Ctx, cur: Tile) -> None:
    """A per-block summary of ``cur``: stored to the block's element, or added to a total."""
    dt = cur.dtype
    pick = ctx.rng.random()
    if pick < 0.5:
        op = ctx.rng.choice(("tile_sum", "tile_max", "tile_min", "reduce", "reduce_func", "arg"))
        if op == "reduce":
            small = len(cur.shape) == 1 and cur.shape[0] <= 16  # a product of more could overflow
            expr = f"wp.tile_reduce(wp.{ctx.rng.choice(('add', 'min', 'max', 'mul' if small else 'add'))}, {cur.expr})"
        elif op == "reduce_func":
            expr = f"wp.tile_reduce({reducer(ctx, dt)}, {cur.expr})"
        elif op == "arg":
            expr = f"wp.{ctx.rng.choice(('tile_argmax', 'tile_argmin'))}({cur.expr})"
            dt = "int32"
        else:
            expr = f"wp.{op}({cur.expr})"
        s = ctx.assign("s", expr, dt, (1,))
        if len(ctx.grid) == 1:
            arr = ctx.array(ctx.rng.choice(("partial", "stats", "block_out")), dt, ctx.grid)
            ctx.emit(f"wp.tile_store({arr}, {s.expr}, offset={ctx.tids[0]})")
        else:
            arr = ctx.array(ctx.rng.choice(("partial", "stats")), dt, ctx.grid)
            ctx.emit(f"wp.tile_store({arr}, wp.tile_reshape({s.expr}, shape=(1, 1)), "
                     f"offset=({ctx.tids[0]}, {ctx.tids[1]}))")
    elif pick < 0.75:
        expr = f"wp.tile_sum({cur.expr})"
        arr = ctx.array(ctx.rng.choice(("total", "energy", "loss")), dt, (1,))
        ctx.emit(f"wp.tile_atomic_add({arr}, {expr})")
    elif len(cur.shape) == 2:
        axis = ctx.rng.randrange(2)
        expr = f"wp.tile_sum({cur.expr}, axis={axis})" if ctx.chance(0.6) else \
            f"wp.tile_reduce(wp.{ctx.rng.choice(('max', 'min', 'add'))}, {cur.expr}, axis={axis})"
        keep = cur.shape[1 - axis]
        arr = ctx.array(ctx.rng.choice(("row_sums", "col_acc", "sums")), dt, (keep * (ctx.grid[0] if axis else 1),))
        if axis == 1 and len(ctx.grid) == 1:
            ctx.emit(f"wp.tile_store({arr}, {expr}, offset={ctx.tids[0]} * {ctx.dim(keep)})")
        else:
            ctx.emit(f"wp.tile_atomic_add({arr}, {expr}, offset={'0' if axis == 0 else f'{ctx.tids[0]} * {ctx.dim(keep)}'})")
    else:
        s = ctx.assign("s", f"wp.tile_sum({cur.expr})", dt, (1,))
        arr = ctx.array("total", dt, (1,))
        ctx.emit(f"wp.tile_atomic_add({arr}, {s.expr}, offset=0)")


__all__ = ["FLOATS", "helper", "pipeline", "reduce_sink", "step"]
