"""The generator's view of Warp's types and builtins.

Builtin signatures are derived from Warp's own builtin registry (through
``synth.warp_adapter``, the only module that touches ``warp._src``), not typed by hand:
every overload of a builtin in the groups below whose argument types fall in the type
universe becomes a production, generic overloads (``Float``, ``vec_t`` ...) are
instantiated over the universe, and Warp's own overload resolution decides each
instance's return type. A new Warp release that adds a builtin therefore widens the
generator by itself; ``EXCLUDED`` lists the few names that need hand-written handling
and why.

The table depends only on the installed Warp version, is built once per process, and
is ordered by (name, argument types), so generation stays byte-identical across runs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

from synth.config import GeneratorConfig

# Short keys used in reports -> Warp's group names.
GROUPS: dict[str, str] = {
    "scalar": "Scalar Math", "vector": "Vector Math", "quaternion": "Quaternion Math",
    "transformation": "Transformations", "spatial": "Spatial Math", "random": "Random",
    "operator": "Operators", "utility": "Utility",
}
_GROUP_KEY = {v: k for k, v in GROUPS.items()}


@dataclass(frozen=True, slots=True)
class TypeInfo:
    name: str  # Warp's name: float32, vec3f, transformd
    spelling: str  # how generated source writes it: float, wp.vec3, wp.transformd
    kind: str  # float, int, uint, bool, vec, mat, quat, transform, svec, smat
    scalar: str  # component scalar type (the type itself for scalars)
    shape: tuple[int, ...]  # () scalars; (n,) vectors/quat/transform/svec; (r, c) matrices
    weight: float  # relative frequency when the generator picks a type


def _t(name: str, spelling: str, kind: str, scalar: str, shape: tuple[int, ...], weight: float) -> TypeInfo:
    return TypeInfo(name, spelling, kind, scalar, shape, weight)


# The universe: scalars of several widths and the composite types over the widths Warp
# code uses most. float32 dominates, as it does in real kernels.
TYPES: dict[str, TypeInfo] = {t.name: t for t in (
    _t("float32", "float", "float", "float32", (), 10.0),
    _t("float64", "wp.float64", "float", "float64", (), 0.8),
    _t("float16", "wp.float16", "float", "float16", (), 0.2),
    _t("int32", "int", "int", "int32", (), 3.0),
    _t("int64", "wp.int64", "int", "int64", (), 0.3),
    _t("int16", "wp.int16", "int", "int16", (), 0.25),
    _t("int8", "wp.int8", "int", "int8", (), 0.25),
    _t("uint32", "wp.uint32", "uint", "uint32", (), 0.4),
    _t("uint64", "wp.uint64", "uint", "uint64", (), 0.15),
    _t("uint16", "wp.uint16", "uint", "uint16", (), 0.2),
    _t("uint8", "wp.uint8", "uint", "uint8", (), 0.2),
    _t("bool", "bool", "bool", "bool", (), 0.5),
    _t("vec2f", "wp.vec2", "vec", "float32", (2,), 1.5),
    _t("vec3f", "wp.vec3", "vec", "float32", (3,), 2.5),
    _t("vec4f", "wp.vec4", "vec", "float32", (4,), 0.6),
    _t("vec2d", "wp.vec2d", "vec", "float64", (2,), 0.15),
    _t("vec3d", "wp.vec3d", "vec", "float64", (3,), 0.3),
    _t("vec3h", "wp.vec3h", "vec", "float16", (3,), 0.1),
    _t("vec2i", "wp.vec2i", "vec", "int32", (2,), 0.2),
    _t("vec3i", "wp.vec3i", "vec", "int32", (3,), 0.3),
    _t("mat22f", "wp.mat22", "mat", "float32", (2, 2), 0.2),
    _t("mat33f", "wp.mat33", "mat", "float32", (3, 3), 0.5),
    _t("mat44f", "wp.mat44", "mat", "float32", (4, 4), 0.15),
    _t("mat33d", "wp.mat33d", "mat", "float64", (3, 3), 0.05),
    _t("quatf", "wp.quat", "quat", "float32", (4,), 0.4),
    _t("quatd", "wp.quatd", "quat", "float64", (4,), 0.05),
    _t("transformf", "wp.transform", "transform", "float32", (7,), 0.2),
    _t("transformd", "wp.transformd", "transform", "float64", (7,), 0.03),
    _t("spatial_vectorf", "wp.spatial_vector", "svec", "float32", (6,), 0.1),
    _t("spatial_vectord", "wp.spatial_vectord", "svec", "float64", (6,), 0.03),
    _t("spatial_matrixf", "wp.spatial_matrix", "smat", "float32", (6, 6), 0.04),
)}

SCALARS = tuple(n for n, t in TYPES.items() if not t.shape)
INTS = tuple(n for n, t in TYPES.items() if t.kind in ("int", "uint"))
FLOATS = tuple(n for n, t in TYPES.items() if t.kind == "float")

# Generic placeholders in Warp's registry and the universe types each may stand for.
_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "Float": FLOATS,
    "Scalar": tuple(n for n in SCALARS if n != "bool"),
    "Int": INTS,
    "vec_t": tuple(n for n, t in TYPES.items() if t.kind in ("vec", "svec")),
    "mat_t": tuple(n for n, t in TYPES.items() if t.kind in ("mat", "smat")),
    "quat_t": tuple(n for n, t in TYPES.items() if t.kind == "quat"),
    "transform_t": tuple(n for n, t in TYPES.items() if t.kind == "transform"),
    # Warp's generic @wp.func builtins (norm_l2(v: Any) ...) document Any as a float
    # vector; their bodies use float32 literals, so only float32 vectors fit.
    "Any": tuple(n for n, t in TYPES.items() if t.kind == "vec" and t.scalar == "float32"),
}

# Builtins of the target groups that are not auto-derived productions, and why.
EXCLUDED: dict[str, str] = {
    "select": "removed from Warp (codegen raises); wp.where replaces it",
    "breakpoint": "traps into a debugger when run",
    "array": "builds an array from a raw pointer",
    "block_dim": "1 on CPU, the block size on CUDA: CPU and GPU outputs would differ",
    "tid": "emitted once per kernel by the generator",
    "rand_init": "emitted once per kernel as the RNG state",
    "print": "emitted as a guarded debug statement", "printf": "emitted as a guarded debug statement",
    "expect_near": "emitted as a guarded debug statement",
    "where": "generic over Any: a hand-written production",
    "len": "a hand-written production", "zeros": "a hand-written statement", "cast": "a hand-written production",
    "vector": "variadic: a hand-written production", "matrix": "a hand-written production",
    "matrix_from_cols": "variadic: a hand-written production", "matrix_from_rows": "variadic: hand-written",
    "identity": "needs a constant n: a hand-written production",
    "transform_compose": "no value_func to resolve it: hand-written", "transform_decompose": "hand-written",
}

# Argument guards that keep kernels safe to run: integer division never by zero, shift
# amounts and RNG ranges small literals, math kept inside its domain so values stay finite.
# Keys: builtin name -> {parameter: guard kind}; see expressions.ExprBuilder.guarded.
GUARDS: dict[str, dict[str, str]] = {
    "sqrt": {"x": "nonneg"}, "log": {"x": "positive"}, "log2": {"x": "positive"},
    "log10": {"x": "positive"}, "acos": {"x": "unit"}, "asin": {"x": "unit"},
    "erfinv": {"x": "unit_open"}, "erfcinv": {"x": "two_open"},
    "exp": {"x": "bounded"}, "sinh": {"x": "bounded"}, "cosh": {"x": "bounded"},
    "pow": {"x": "positive", "y": "bounded"},
    "div": {"b": "divisor"}, "mod": {"b": "divisor"}, "floordiv": {"b": "divisor"},
    "cw_div": {"b": "divisor"}, "div_approx": {"b": "divisor"},
    "lshift": {"b": "shift"}, "rshift": {"b": "shift"},
    "randi": {"low": "low", "high": "high"}, "randu": {"low": "low", "high": "high"},
    "randf": {"low": "low", "high": "high"},
    "poisson": {"lam": "rate"}, "pnoise": {"px": "period", "py": "period", "pz": "period"},
    "quat_from_euler": {"i": "axis0", "j": "axis1", "k": "axis2"},
    # Matrix inputs built to be well-posed: an inverse of a symmetric positive definite
    # matrix (eigenvalues >= 1), decompositions of a matrix whose eigenvalues are well
    # apart (so eigen/singular vectors are unique and CPU and GPU agree).
    "inverse": {"a": "spd"}, "inverse_approx": {"a": "spd"},
    "eig3": {"A": "separated"}, "svd3": {"A": "separated"}, "svd2": {"A": "separated"}, "qr3": {"A": "separated"},
    "quat_to_euler": {"i": "axis0", "j": "axis1", "k": "axis2"},
}


# Builtins whose legacy overloads write results into output arguments; the generator uses
# their multi-value return form instead.
_OUTPUT_ARG_FORMS = frozenset({"svd3", "svd2", "qr3", "eig3", "quat_to_axis_angle"})


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    group: str  # short key: scalar, vector, ...
    params: tuple[tuple[str, str], ...]  # (parameter, type); type "state" is the RNG state
    returns: str  # a type name, "tuple[a,b]" or "None" (the builtin mutates its first argument)
    arg_types: tuple[str, ...] = ()  # the params' types (filled in by __post_init__)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arg_types", tuple(t for _, t in self.params))

    @property
    def tuple_types(self) -> tuple[str, ...]:
        return tuple(self.returns[6:-1].split(",")) if self.returns.startswith("tuple[") else ()


@dataclass(frozen=True, slots=True)
class SignatureTable:
    signatures: tuple[Signature, ...]
    documented: dict[str, tuple[str, ...]]  # group key -> builtin names Warp documents
    by_return: dict[str, dict[str, tuple[Signature, ...]]]  # type -> builtin name -> instances
    multi: tuple[Signature, ...]  # builtins returning several values (svd3, quat_to_axis_angle ...)
    void: tuple[Signature, ...]  # builtins that update their first argument in place


def _param_type(group: str, pname: str, ptype: str) -> str | None:
    if group == "random" and pname == "state" and ptype == "uint32":
        return "state"
    if ptype in TYPES or ptype in _PLACEHOLDERS or ptype in ("array[float32]", "Any"):
        return ptype
    return None


def _instances(params: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Bind each distinct placeholder to one universe type (Warp requires, e.g., lerp's
    ``a`` and ``b`` to share a type); Warp's resolution then rejects the misfits."""
    holders = sorted({t for _, t in params if t in _PLACEHOLDERS})
    if not holders:
        return [params]
    out = []
    for combo in itertools.product(*(_PLACEHOLDERS[h] for h in holders)):
        # Warp never converts between scalar types, and its native templates deduce one
        # scalar type for all generic arguments (transform_set_translation(transformd,
        # vec3f) passes the Python frontend but not the C++ compiler).
        if len({TYPES[t].scalar for t in combo}) > 1:
            continue
        bound = dict(zip(holders, combo, strict=True))
        out.append([(p, bound.get(t, t)) for p, t in params])
    return out


def _returns_ok(ret: str | None) -> bool:
    if ret is None:
        return False
    if ret == "None" or ret in TYPES:
        return True
    return ret.startswith("tuple[") and all(t in TYPES for t in ret[6:-1].split(","))


@lru_cache(maxsize=1)
def table() -> SignatureTable:
    """Every usable builtin instance, from Warp's registry (built once per process)."""
    from synth.warp_adapter import builtin_overloads, builtin_return_type

    found: dict[tuple[str, tuple[tuple[str, str], ...]], Signature] = {}
    documented: dict[str, set[str]] = {k: set() for k in GROUPS}
    overloads = builtin_overloads()
    # Builtins with no documented overload are Warp internals reached through syntax
    # (extract for v[i], add_inplace for v[i] += x ...), not functions users call.
    user_facing = {ov.name for ov in overloads if ov.documented}
    for ov in overloads:
        group = _GROUP_KEY.get(ov.group)
        if group is None:
            continue
        if ov.documented:
            documented[group].add(ov.name)
        if ov.name not in user_facing or ov.name in EXCLUDED or ov.name.startswith("atomic_"):
            continue
        if any(p == "*args" for p, _ in ov.params):
            continue
        # Optional parameters are left out: the call uses Warp's defaults.
        params = [(p, _param_type(group, p, t)) for p, t in ov.params if p not in ov.optional]
        if any(t is None for _, t in params) or sum(t == "Any" for _, t in params) > 1:
            continue
        for inst in _instances(params):  # type: ignore[arg-type]
            key = (ov.name, tuple(inst))
            if key in found:
                continue
            warp_types = tuple("uint32" if t == "state" else t for _, t in inst)
            if any(t not in TYPES and t != "array[float32]" for t in warp_types):
                continue
            ret = ov.returns
            if ret is None or inst != params:  # generic: ask Warp's resolution for this instance
                ret = builtin_return_type(ov.name, warp_types, ov.index)
                if not _returns_ok(ret) and any(t == "Any" for _, t in params):
                    # An Any-typed @wp.func (smooth_normalize) returns its argument's type.
                    ret = next(it for (_, pt), (_, it) in zip(params, inst, strict=True) if pt == "Any")
            if "dtype" in ov.optional and ret in TYPES and TYPES[ret].scalar != "float32":
                continue  # the omitted dtype defaults to float32, whatever the arguments
            if _returns_ok(ret) and not (ret == "None" and ov.name in _OUTPUT_ARG_FORMS):
                found[key] = Signature(ov.name, group, tuple(inst), ret)  # type: ignore[arg-type]
    sigs = tuple(sorted(found.values(), key=lambda s: (s.name, s.params)))
    by_return: dict[str, dict[str, list[Signature]]] = {t: {} for t in TYPES}
    for sig in sigs:
        if sig.returns in by_return:
            by_return[sig.returns].setdefault(sig.name, []).append(sig)
    return SignatureTable(
        signatures=sigs,
        documented={k: tuple(sorted(v)) for k, v in documented.items()},
        by_return={t: {n: tuple(v) for n, v in d.items()} for t, d in by_return.items()},
        multi=tuple(s for s in sigs if s.returns.startswith("tuple[")),
        void=tuple(s for s in sigs if s.returns == "None"),
    )


# Python syntax that Warp lowers to a builtin call (used by metadata and the report).
BINOP_BUILTINS = {"Add": "add", "Sub": "sub", "Mult": "mul", "MatMult": "mul", "Div": "div", "Mod": "mod",
                  "FloorDiv": "floordiv", "Pow": "pow", "BitAnd": "bit_and", "BitOr": "bit_or",
                  "BitXor": "bit_xor", "LShift": "lshift", "RShift": "rshift"}
UNARY_BUILTINS = {"USub": "neg", "UAdd": "pos", "Not": "unot", "Invert": "invert"}
OPERATOR_SYNTAX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "floordiv": "//",
                   "bit_and": "&", "bit_or": "|", "bit_xor": "^", "lshift": "<<", "rshift": ">>"}
UNARY_SYNTAX = {"neg": "-", "pos": "+", "invert": "~", "unot": "not "}


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a config allows, computed once per process and config (not per kernel)."""

    types: tuple[str, ...]
    type_weights: tuple[float, ...]
    names: dict[str, tuple[str, ...]]  # type -> non-operator builtin names returning it
    ops: dict[str, tuple[str, ...]]  # type -> operator builtins returning it
    by_group: dict[str, dict[str, tuple[Signature, ...]]]  # group -> name -> usable instances
    all_names: dict[str, tuple[Signature, ...]]  # every usable builtin name -> its instances
    all_names_order: tuple[str, ...]  # all_names' keys, sorted (choices need a sequence)


_PREPARED: list[tuple[GeneratorConfig, Prepared]] = []


def _type_enabled(t: str, cfg: GeneratorConfig) -> bool:
    info = TYPES[t]
    if info.kind in ("mat", "smat") and not cfg.use_matrices:
        return False
    if info.kind == "quat" and not cfg.use_quaternions:
        return False
    if info.kind in ("transform", "svec", "smat") and not cfg.use_transforms:
        return False
    return cfg.use_wide_scalars or info.scalar in ("float32", "int32", "bool")


def prepare(cfg: GeneratorConfig) -> Prepared:
    for known, prepared in _PREPARED:
        if known == cfg:
            return prepared
    tab = table()
    types = tuple(t for t in TYPES if _type_enabled(t, cfg))
    ok = set(types) | {"state", "array[float32]"}
    groups = set(cfg.builtin_groups)
    usable = [g for g in tab.signatures if g.group in groups and all(t in ok for t in g.arg_types)
              and (g.returns in types or g.returns == "None"
                   or (g.returns.startswith("tuple[") and all(t in types for t in g.tuple_types)))]
    names: dict[str, list[str]] = {t: [] for t in types}
    ops: dict[str, list[str]] = {t: [] for t in types}
    by_group: dict[str, dict[str, list[Signature]]] = {}
    for g in usable:
        by_group.setdefault(g.group, {}).setdefault(g.name, []).append(g)
        if g.returns in names:
            bucket = ops if g.name in OPERATOR_SYNTAX or g.name in UNARY_SYNTAX else names
            if g.name not in bucket[g.returns]:
                bucket[g.returns].append(g.name)
    all_names = {n: tuple(v) for d in by_group.values() for n, v in d.items()}
    prepared = Prepared(types, tuple(TYPES[t].weight for t in types),
                        {t: tuple(v) for t, v in names.items()}, {t: tuple(v) for t, v in ops.items()},
                        {gr: {n: tuple(v) for n, v in d.items()} for gr, d in by_group.items()},
                        dict(sorted(all_names.items())), tuple(sorted(all_names)))
    _PREPARED.append((cfg, prepared))
    return prepared
