"""``jitsynth ingest``: real kernels from a package of the test's own, and from warp.examples.

The package written below has a helper ``@wp.func`` and a ``@wp.struct`` in one module, a
constant, kernels using them in another, a kernel Warp rejects, a kernel made by a factory
at import, one defined in a function nobody calls, a forward-only kernel, and a script that
imports a module that is not installed and launches a kernel at import.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import warp

from synth.ingest.discover import default_producer, discover
from tests.conftest import jitsynth, read_local_dataset

HELPERS = '''\
# SPDX-License-Identifier: MIT
import warp as wp

GAIN = wp.constant(2.5)


@wp.struct
class Params:
    scale: float
    offset: wp.vec3


@wp.func
def shifted(p: Params, v: wp.vec3) -> wp.vec3:
    return v * p.scale * GAIN + p.offset
'''

KERNELS = '''\
# SPDX-License-Identifier: MIT
import warp as wp

from .helpers import Params, shifted

LIMIT = 4


@wp.func
def clamp_len(v: wp.vec3) -> wp.vec3:
    n = wp.length(v)
    if n > float(LIMIT):
        return v * (float(LIMIT) / n)
    return v


@wp.kernel
def apply_params(points: wp.array(dtype=wp.vec3), p: Params, out: wp.array(dtype=wp.vec3)):
    i = wp.tid()
    out[i] = clamp_len(shifted(p, points[i]))


@wp.kernel
def rejected(values: wp.array(dtype=float)):
    i = wp.tid()
    values[i] = no_such_helper(values[i])


def make_scaler(factor: float):
    @wp.kernel
    def scale_values(values: wp.array(dtype=float)):
        i = wp.tid()
        values[i] = values[i] * factor

    return scale_values


triple = make_scaler(3.0)


def later(fill_value: float):
    @wp.kernel
    def never_built(values: wp.array(dtype=float)):
        values[wp.tid()] = fill_value

    return never_built


def test_like():
    @wp.kernel
    def local_only(values: wp.array(dtype=float)):
        i = wp.tid()
        values[i] = wp.abs(values[i]) * float(LIMIT)

    return local_only


@wp.kernel(enable_backward=False)
def count_positive(values: wp.array(dtype=float), total: wp.array(dtype=int)):
    if values[wp.tid()] > 0.0:
        wp.atomic_add(total, 0, 1)
'''

SCRIPT = '''\
import pathlib

import warp as wp

pathlib.Path(__file__).with_name("imported.marker").write_text("imported")
import jitsynth_test_not_installed as dep  # noqa: E402 - a third-party module that is missing


@wp.kernel
def fill(values: wp.array(dtype=float), v: float):
    values[wp.tid()] = v


values = wp.zeros(4, dtype=float, device="cpu")
wp.launch(fill, dim=4, inputs=[values, dep.VALUE], device="cpu")
'''


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("src") / "mykernels"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "helpers.py").write_text(HELPERS)
    (root / "kernels.py").write_text(KERNELS)
    (root / "script.py").write_text(SCRIPT)
    return root


EXPECTED = ["apply_params", "rejected", "make_scaler.<locals>.scale_values", "later.<locals>.never_built",
            "test_like.<locals>.local_only", "count_positive", "fill"]


def test_discovery_parses_without_importing(package: Path) -> None:
    (package / "imported.marker").unlink(missing_ok=True)
    out = package / "out"
    out.mkdir(exist_ok=True)
    (out / "planted.py").write_text("import warp as wp\n\n@wp.kernel\ndef planted(a: wp.array(dtype=float)):\n"
                                    "    a[0] = 1.0\n")
    found = discover([str(package)], exclude=[out])
    assert [i.qualname for i in found.items] == EXPECTED  # by file, then line; nothing from the output dir
    assert not (package / "imported.marker").exists()  # no user code ran in this process
    (target,) = found.targets
    assert (target.kind, target.package, target.name) == ("package", "mykernels", "mykernels")
    assert Path(target.import_root) == package.parent
    nested = {i.qualname: i.nested for i in found.items}
    assert nested["later.<locals>.never_built"] and not nested["apply_params"]
    assert {i.module for i in found.items} == {"mykernels.kernels", "mykernels.script"}
    assert {i.license for i in found.items if i.relpath == "kernels.py"} == {"MIT"}
    assert default_producer(found.targets) == "ingest-mykernels"
    assert found.config_hash() == discover([str(package)], exclude=[out]).config_hash()
    (package / "kernels.py").write_text(KERNELS + "\n# edited\n")
    try:
        assert found.config_hash() != discover([str(package)], exclude=[out]).config_hash()
    finally:
        (package / "kernels.py").write_text(KERNELS)
        shutil.rmtree(out)


def test_ingest_package_records_and_failure_report(package: Path, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    args = ["ingest", str(package), "--out", str(ds), "--state-dir", str(tmp_path / "st"), "--workers", "1",
            "--shard-records", "3"]
    proc = jitsynth(*args, check=True)
    report = proc.stdout
    assert "7 kernels found" in report
    assert "5 became records" in report and "5 written" in report and "2 failed" in report
    assert "failures by reason:" in report
    assert "  codegen: 1" in report and "  closure: 1" in report

    commits, records = read_local_dataset(ds)
    assert {c["producer"] for c in commits} == {"ingest-mykernels"}
    assert [c["seed_start"] for c in commits][0] == 0 and commits[-1]["seed_end"] == len(EXPECTED)
    failures = {f["seed"]: f["reason"] for c in commits for f in c["failures"]}
    assert failures[1].startswith("codegen: ") and "no_such_helper" in failures[1]
    assert failures[3].startswith("closure: ") and "fill_value of later()" in failures[3]
    assert str(package.parent) not in failures[1]  # paths in reasons are relative

    by_name = {r["kernel_name"]: r for r in records}
    assert sorted(by_name) == ["apply_params", "count_positive", "fill", "local_only", "scale_values"]
    for r in records:
        meta = r["metadata"]
        assert r["schema_version"] == 1 and r["producer"] == "ingest-mykernels"
        assert meta["origin"] == "real" and meta["generator"]["name"] == "jitsynth-ingest"
        assert meta["warp_version"] == warp.config.version
        assert r["id"] and len(r["id"]) == 32
        for backend in ("cpu", "cuda"):
            assert f"{r['kernel_name']}_{backend}_kernel_forward(" in r[backend]["forward"]
            assert r[backend]["full"].count(r[backend]["forward"]) == 1
            assert str(package.parent) not in r[backend]["full"]  # no machine paths in generated code

    rec = by_name["apply_params"]
    src = rec["metadata"]["source"]
    assert src == {"package": "mykernels", "version": None, "path": "mykernels/kernels.py", "line": 18,
                   "license": "MIT", "qualname": "apply_params"}
    assert rec["seed"] == 0
    for backend in ("cpu", "cuda"):
        assert "apply_params_" + backend + "_kernel_backward(" in rec[backend]["backward"]
        assert "adj_shifted(" in rec[backend]["backward"] and "clamp_len(" in rec[backend]["forward"]
        assert "struct Params" in rec[backend]["full"]  # Warp's hashed names normalised
    python = rec["python_source"]
    compile(python, "python_source", "exec")
    for needed in ("import warp as wp", "GAIN = wp.constant(2.5)", "LIMIT = 4", "class Params:", "def shifted(",
                   "def clamp_len(", "def apply_params("):
        assert needed in python, needed
    assert "from .helpers" not in python  # inlined, so not imported
    assert python.index("class Params") < python.index("def shifted(") < python.index("def apply_params(")
    assert {"structs", "funcs", "vectors", "branches"} <= set(rec["metadata"]["features"])
    assert rec["metadata"]["n_params"] == 3

    scaler = by_name["scale_values"]
    assert scaler["metadata"]["source"]["qualname"] == "make_scaler.<locals>.scale_values"
    assert "factor = 3.0" in scaler["python_source"]
    hoisted = by_name["local_only"]  # inside a function, captures nothing: generated as if at module scope
    assert hoisted["metadata"]["source"]["hoisted"] is True
    assert "LIMIT = 4" in hoisted["python_source"] and "local_only_cpu_kernel_backward(" in hoisted["cpu"]["backward"]
    forward_only = by_name["count_positive"]
    assert forward_only["cpu"]["backward"] == "" and forward_only["cuda"]["backward"] == ""
    assert "atomic_add" in forward_only["cpu"]["forward"]

    fill = by_name["fill"]["metadata"]["source"]
    assert fill["loader"] == "lenient" and fill["stubbed"] == ["jitsynth_test_not_installed"]

    assert jitsynth("verify", str(ds), check=True).returncode == 0
    read = [json.loads(line) for line in jitsynth("read", str(ds), check=True).stdout.splitlines()]
    assert [r["id"] for r in read] == [r["id"] for r in records]

    again = jitsynth(*args, check=True)  # resume: already complete, same commits, same report
    assert read_local_dataset(ds)[0] == commits
    assert "5 written" in again.stdout and "  codegen: 1" in again.stdout


def test_ingest_warp_examples_modules(tmp_path: Path) -> None:
    examples = Path(warp.__file__).parent / "examples" / "core"
    files = [str(examples / "example_wave.py"), str(examples / "example_fluid.py")]
    expected = len(discover(files).items)
    ds = tmp_path / "ds"
    proc = jitsynth("ingest", *files, "--out", str(ds), "--state-dir", str(tmp_path / "st"), "--workers", "2",
                    check=True)
    assert f"{expected} kernels found" in proc.stdout and "0 failed" in proc.stdout
    commits, records = read_local_dataset(ds)
    assert {c["producer"] for c in commits} == {"ingest-warp.examples.core.example_wave"}
    assert len(records) + sum(c["duplicates"] for c in commits) == expected
    paths = {r["metadata"]["source"]["path"] for r in records}
    assert paths == {"warp/examples/core/example_wave.py", "warp/examples/core/example_fluid.py"}
    for r in records:
        src = r["metadata"]["source"]
        assert src["package"] == "warp.examples.core" and src["version"] == warp.config.version
        assert src["license"] == "Apache-2.0"
        assert r["cpu"]["backward"] and r["cuda"]["forward"]
    wave = next(r for r in records if r["kernel_name"] == "wave_solve")
    assert "def laplacian(" in wave["python_source"] and "def sample(" in wave["python_source"]


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    proc = jitsynth("ingest", str(tmp_path / "missing_dir"), "--out", str(tmp_path / "ds"))
    assert proc.returncode == 2 and "no such file or directory" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "plain.py").write_text(textwrap.dedent("def f():\n    return 1\n"))
    proc = jitsynth("ingest", str(empty), "--out", str(tmp_path / "ds"))
    assert proc.returncode == 0 and "no @wp.kernel found" in proc.stdout
    assert not (tmp_path / "ds").exists()


def test_kernel_decorators_under_any_alias() -> None:
    import ast

    from synth.ingest.discover import find_kernels

    source = textwrap.dedent('''
        import taichi as ti
        import warp as w
        from warp import kernel as K

        @w.kernel
        def a(x: w.array(dtype=float)):
            pass

        @K
        def b(x: w.array(dtype=float)):
            pass

        @w.kernel(enable_backward=False)
        def c(x: w.array(dtype=float)):
            pass

        @ti.kernel
        def not_warp():
            pass

        @w.func
        def helper(x: float):
            return x

        class Holder:
            @w.kernel
            def d(x: w.array(dtype=float)):
                pass

        if True:
            @w.kernel
            def e(x: w.array(dtype=float)):
                pass
    ''')
    found = find_kernels(ast.parse(source))
    assert [(k.qualname, k.nested) for k in found] == [("a", False), ("b", False), ("c", False),
                                                         ("Holder.d", False), ("e", False)]
    assert found[0].first_line == found[0].line - 1
