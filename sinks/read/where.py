"""``--where EXPR``: a small, safe filter language over records.

Python expression syntax, evaluated by a tiny interpreter (never ``eval``):

    metadata.loc > 40 and 'loops' in metadata.features
    kernel_name.startswith('kernel_') and len(cpu.forward) < 20000
    validation.codegen == true and seed % 10 == 0

Names are the record's top-level fields; ``a.b`` and ``a['b']`` look up keys of
objects (a missing key is ``null``); lists index with ``a[0]``. Allowed: comparisons
(``== != < <= > >= in not in``), ``and or not``, arithmetic, literals (``true false
null`` as well as Python's), ``len min max abs any all int float str`` and the string
methods ``startswith endswith lower upper strip count``. A record on which the
expression raises a type error (e.g. ``null > 3``) does not match.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

_FUNCS: dict[str, Callable[..., Any]] = {"len": len, "min": min, "max": max, "abs": abs, "any": any, "all": all,
                                         "int": int, "float": float, "str": str}
_STR_METHODS = {"startswith", "endswith", "lower", "upper", "strip", "count"}
_CONSTS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
        ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
        ast.Is: operator.is_, ast.IsNot: operator.is_not}
_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Compare,
            ast.BinOp, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Constant, ast.List, ast.Tuple,
            ast.Call, *_CMP, *_BIN)


class WhereError(ValueError):
    """The expression cannot be used (syntax or a construct outside the language)."""


def compile_where(expr: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate over record dicts; raises WhereError on a bad expression."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise WhereError(f"--where {expr!r}: {exc.msg} at column {exc.offset}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise WhereError(f"--where {expr!r}: {type(node).__name__} is not supported")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise WhereError(f"--where {expr!r}: names starting with '_' are not allowed")
        if isinstance(node, ast.Call):
            func = node.func
            ok = (isinstance(func, ast.Name) and func.id in _FUNCS) or (
                isinstance(func, ast.Attribute) and func.attr in _STR_METHODS)
            if not ok or node.keywords:
                raise WhereError(f"--where {expr!r}: only {', '.join(sorted(_FUNCS))} and the string methods "
                                 f"{', '.join(sorted(_STR_METHODS))} may be called")

    def predicate(record: dict[str, Any]) -> bool:
        try:
            return bool(_eval(tree.body, record))
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError, AttributeError):
            return False

    return predicate


def _field(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, (list, tuple, str)) and isinstance(key, int):
        return value[key]
    raise TypeError(f"cannot look up {key!r} in {type(value).__name__}")


def _eval(node: ast.AST, rec: dict[str, Any]) -> Any:  # noqa: PLR0911, PLR0912 - one case per node type
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in rec:
            return rec[node.id]
        return _CONSTS.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _eval(node.value, rec)
        if isinstance(base, str) and node.attr in _STR_METHODS:
            return getattr(base, node.attr)
        return _field(base, node.attr)
    if isinstance(node, ast.Subscript):
        return _field(_eval(node.value, rec), _eval(node.slice, rec))
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, rec) for v in node.values)
        return any(_eval(v, rec) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, rec)
        if isinstance(node.op, ast.Not):
            return not value
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.Compare):
        left = _eval(node.left, rec)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, rec)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BinOp):
        return _BIN[type(node.op)](_eval(node.left, rec), _eval(node.right, rec))
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, rec) for e in node.elts]
    if isinstance(node, ast.Call):
        args = [_eval(a, rec) for a in node.args]
        if isinstance(node.func, ast.Name):
            return _FUNCS[node.func.id](*args)
        return _eval(node.func, rec)(*args)
    raise TypeError(type(node).__name__)
