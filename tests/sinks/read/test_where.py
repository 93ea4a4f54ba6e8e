"""The ``--where`` language: what it accepts, what it refuses, and how missing values behave."""

from __future__ import annotations

import pytest

from sinks.read.where import WhereError, compile_where

RECORD = {
    "id": "abc", "seed": 20, "producer": "1", "kernel_name": "kernel_0", "ptx": None,
    "cpu": {"forward": "void f() {}", "backward": ""},
    "validation": {"codegen": True, "executed": None},
    "metadata": {"loc": 50, "features": ["loops", "atomics"], "param_types": ["wp.array(dtype=float)"]},
}


@pytest.mark.parametrize("expr, expected", [
    ("metadata.loc > 40 and 'loops' in metadata.features", True),
    ("metadata['loc'] <= 40 or 'structs' in metadata.features", False),
    ("kernel_name.startswith('kernel_') and not kernel_name.endswith('_x')", True),
    ("validation.codegen == true and validation.executed == null", True),
    ("seed % 10 == 0 and producer in ['0', '1']", True),
    ("len(cpu.forward) > 5 and len(cpu.backward) == 0", True),
    ("metadata.param_types[0].count('float') == 1", True),
    ("10 < metadata.loc < 60", True),
    ("ptx > 3", False),                      # null compared: no match, no error
    ("metadata.missing.deeper == 1", False),  # missing keys are null
    ("not ptx", True),
    ("max(metadata.loc, seed) - 50 == 0", True),
])
def test_expressions(expr: str, expected: bool) -> None:
    assert compile_where(expr)(RECORD) is expected


@pytest.mark.parametrize("expr", [
    "__import__('os').system('true')",
    "metadata.__class__",
    "(lambda: 1)()",
    "[x for x in metadata.features]",
    "open('/etc/passwd')",
    "kernel_name.format(1)",
    "seed ** 99999999",
    "metadata.loc >",
    "sorted(metadata.features, key=len)",
])
def test_refused(expr: str) -> None:
    with pytest.raises(WhereError, match="--where"):
        compile_where(expr)
