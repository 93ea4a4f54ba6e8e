"""Issue 15: ``--source variants:SPEC``, seeded mutations of real kernels.

The parent corpus is made the way a user makes one: a small package of Warp kernels written
here and ingested with the real ``jitsynth ingest``. Variants are built by the real worker
(Warp codegen for CPU and CUDA), checked with the same quality contracts the generator is
held to, produced end to end by ``jitsynth run`` (killed on an event and resumed), and
reproduced in fresh processes under other PYTHONHASHSEED values.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, cli_env, jitsynth, read_local_dataset
from tests.faults import commit_path, kill_group, reaped, snapshot, start, wait_event
from tests.synth.variants.parents import ingested_parents

KERNELS = '''
import warp as wp


@wp.func
def damp(x: float, k: float):
    return x * k


@wp.kernel
def smooth(src: wp.array(dtype=float), dst: wp.array(dtype=float), gain: float):
    i = wp.tid()
    x = src[i]
    acc = float(0.0)
    for _k in range(3):
        acc = acc + wp.sin(x) * 0.5
    d = x - gain
    if d < 1.0:
        acc = wp.min(acc, damp(d, 2.0))
    dst[i] = acc + x


@wp.kernel
def offset_points(points: wp.array(dtype=wp.vec3), out: wp.array(dtype=wp.vec3), s: float):
    i = wp.tid()
    up = wp.vec3(0.0, 1.0, 0.0)
    out[i] = points[i] + up * s


@wp.kernel
def lift(points: wp.array(dtype=wp.vec3), out: wp.array(dtype=wp.vec3)):
    i = wp.tid()
    out[i] = points[i] + wp.vec3(0.5, 0.0, 2.0)
'''


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ingested dataset of the three kernels above (the parents)."""
    return ingested_parents(tmp_path_factory.mktemp("variants"), "shapes", KERNELS, ["lift", "offset_points", "smooth"])


def _source(corpus: Path, **knobs: object):
    from stream.sources import read_parents
    from synth import warp_adapter
    from synth.gen.config import VariantConfig
    from synth.variants.source import VariantSource

    warp_adapter.init_warp()
    return VariantSource(read_parents([str(corpus)], None), VariantConfig(**knobs), f"variants:{corpus}")


def _defects(source: str, kernel: str) -> tuple[int, ...]:
    from synth.quality.checks import check_kernel
    from synth.variants.source import defect_counts

    return defect_counts(check_kernel(source, kernel))


@pytest.mark.parametrize("operator", ["constant", "scale", "binop", "compare", "builtin", "loop_bound", "dtype",
                                      "inline_local", "extract_local", "inline_helper", "commute", "splice",
                                      "specialise", "vector_width", "launch_dim"])
def test_each_operator_gives_valid_warp_that_keeps_the_contracts(corpus: Path, operator: str) -> None:
    from synth.canonical import canonical_key
    from synth.gen.config import GeneratorConfig
    from synth.worker import WorkerSettings, build_record

    source = _source(corpus, min_mutations=1, max_mutations=1, operators={operator: 1.0})
    parents = {p.id: p for p in source.parents}
    settings = WorkerSettings(GeneratorConfig(), "test", source=source)
    built = 0
    for seed in range(12):
        try:
            record = build_record(seed, settings)
        except Exception as exc:  # noqa: BLE001 - a seed whose parent has no site for this operator
            assert "unchanged" in str(exc), exc
            continue
        built += 1
        meta = record.metadata
        parent = parents[meta.variant.parent]
        assert [m.split(":")[0] for m in meta.variant.mutations] == [operator]
        assert meta.origin == "variant" and meta.source.path.endswith("shapes.py") and meta.source.line > 0
        assert record.validation.codegen is True
        assert f"{record.kernel_name}_cpu_kernel_forward" in record.cpu.forward
        assert f"{record.kernel_name}_cuda_kernel_backward" in record.cuda.backward
        assert record.id != canonical_key(parent.source) and record.id == canonical_key(record.python_source)
        after, before = _defects(record.python_source, record.kernel_name), _defects(parent.source, parent.kernel_name)
        assert all(a <= b for a, b in zip(after, before, strict=True)), (record.python_source, after, before)
    assert built >= 1, f"{operator} never applied to the corpus"


def test_variants_are_the_same_in_other_processes_and_hash_seeds(corpus: Path) -> None:
    script = textwrap.dedent(f"""
        import hashlib, json, sys
        from stream.sources import read_parents
        from synth import warp_adapter
        from synth.gen.config import VariantConfig
        from synth.variants.source import VariantSource
        warp_adapter.init_warp()
        source = VariantSource(read_parents([{str(corpus)!r}], None), VariantConfig(), "spec")
        out = {{}}
        for seed in range(24):
            k = source.kernel(seed)
            out[seed] = [hashlib.sha256(k.source.encode()).hexdigest(), k.variant["mutations"]]
        print(json.dumps(out))
    """)
    runs = []
    for hash_seed in ("0", "4242"):
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                              env=cli_env({"PYTHONHASHSEED": hash_seed}), timeout=600, check=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    here = _source(corpus)
    local = {str(s): [hashlib.sha256(here.kernel(s).source.encode()).hexdigest(), here.kernel(s).variant["mutations"]]
             for s in range(24)}
    assert runs[0] == runs[1] == local
    assert len({v[0] for v in local.values()}) > 12  # and they are not all the same kernel


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**40))
def test_a_variant_differs_from_every_parent_and_is_no_worse(corpus: Path, seed: int) -> None:
    from synth.canonical import canonical_key
    from synth.variants.source import NoVariant

    source = _cached_source(corpus)
    try:
        variant = source.variant(seed)
    except NoVariant as exc:  # the law's other branch: no record at all, never the parent again
        assert "unchanged" in str(exc)
        return
    keys = {canonical_key(p.source) for p in source.parents}
    assert canonical_key(variant.source) not in keys
    cfg = source.cfg
    assert 1 <= len(variant.mutations) <= cfg.max_mutations + cfg.fresh_literal
    if len(variant.mutations) > cfg.max_mutations:  # the one extra is the fresh literal, and only it
        assert variant.mutations[-1].split(":")[0] in ("constant", "scale")
        assert not any(m.split(":")[0] in ("constant", "scale") for m in variant.mutations[:-1])
    before = _defects(variant.parent.source, variant.parent.kernel_name)
    assert all(a <= b for a, b in zip(_defects(variant.source, variant.parent.kernel_name), before, strict=True))
    assert source.variant(seed) == variant  # pure: asking again gives the same variant


_SOURCES: dict[Path, object] = {}


def _cached_source(corpus: Path):
    if corpus not in _SOURCES:
        _SOURCES[corpus] = _source(corpus)
    return _SOURCES[corpus]


def test_run_variants_end_to_end_resumes_without_duplicates(corpus: Path, tmp_path: Path) -> None:
    def args(out: Path) -> list[str]:
        return ["run", "--source", f"variants:{corpus}", "--out", str(out), "--count", "45", "--workers", "2",
                "--shard-records", "15", "--batch-size", "4", "--state-dir", str(out.parent / f"{out.name}-state")]

    reference = tmp_path / "reference"
    jitsynth(*args(reference), check=True)
    ref_commits, ref_shards = snapshot(reference)
    assert sum(c["count"] for c in ref_commits) == 45

    out = tmp_path / "resumed"
    # 10 kernels/s: after commit 0, the 30 records commit 2 needs take > 2 s on any machine.
    proc = start([*args(out), "--max-rate", "10"], log=tmp_path / "log")
    with reaped(proc):
        wait_event(proc, lambda: commit_path(out, 0).exists(), "the first commit", log=tmp_path / "log")
        kill_group(proc)
    assert not commit_path(out, 2).exists()  # stopped before the end
    jitsynth(*args(out), check=True)
    assert snapshot(out) == (ref_commits, ref_shards)  # byte-identical to the uninterrupted run

    _, records = read_local_dataset(out)
    _, parents = read_local_dataset(corpus)
    parent_ids = {p["id"] for p in parents}
    assert len(records) == 45 and len({r["id"] for r in records}) == 45
    for r in records:
        meta = r["metadata"]
        assert meta["origin"] == "variant" and meta["variant"]["parent"] in parent_ids
        assert meta["variant"]["mutations"] and meta["source"]["package"]
        assert r["id"] not in parent_ids
        assert meta["generator"]["name"] == "jitsynth.variants"


def test_a_package_in_the_spec_is_ingested_first(corpus: Path, tmp_path: Path) -> None:
    package = corpus.parent / "pkg"
    state = tmp_path / "state"
    jitsynth("run", "--source", f"variants:{package}", "--out", str(tmp_path / "out"), "--count", "6",
             "--workers", "1", "--state-dir", str(state), check=True)
    _, records = read_local_dataset(tmp_path / "out")
    _, parents = read_local_dataset(corpus)
    assert {r["metadata"]["variant"]["parent"] for r in records} <= {p["id"] for p in parents}
    assert len(records) == 6 and all(r["metadata"]["origin"] == "variant" for r in records)
    ingested = next((state / "parents").iterdir())
    assert sorted(r["id"] for r in read_local_dataset(ingested)[1]) == sorted(p["id"] for p in parents)


def test_report_shows_variants_beside_parents_with_the_operator_table(corpus: Path) -> None:
    proc = jitsynth("report", "--source", f"variants:{corpus}", "--seeds", "16", "--workers", "1", check=True)
    head = next(line for line in proc.stdout.splitlines() if line.startswith("quality and realism"))
    assert head.split()[5:7] == ["variants", "real"] and str(corpus) in head
    assert "builtin JSD" in proc.stdout
    table = proc.stdout[proc.stdout.index("mutation operator"):].splitlines()[1:]
    applied = {line.split()[0]: int(line.split()[1]) for line in table if line.strip()}
    assert sum(applied.values()) >= 16  # every variant has at least one accepted mutation


@pytest.mark.parametrize(("source", "message"), [
    ("variants:/nonexistent/parents", "no dataset at /nonexistent/parents and no package or path of that name"),
    ("bogus", "use 'generator' or 'variants:DATASET"),
    ("variants:", "use 'generator' or 'variants:DATASET"),
])
def test_bad_source_is_a_one_line_usage_error(tmp_path: Path, source: str, message: str) -> None:
    proc = jitsynth("run", "--source", source, "--out", str(tmp_path / "out"), "--count", "1")
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "commits").exists()


def test_bad_variants_table_is_a_one_line_usage_error(corpus: Path, tmp_path: Path) -> None:
    config = tmp_path / "jitsynth.toml"
    config.write_text("[variants]\nmin_mutations = 3\nmax_mutations = 2\noperators = {constant = 1.0, warp = 2.0}\n")
    proc = jitsynth("run", "--source", f"variants:{corpus}", "--config", str(config), "--out", str(tmp_path / "out"),
                    "--count", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("jitsynth: error: invalid config: Value error, variants config: need 1 <= "
                                   "min_mutations <= max_mutations; unknown operators ['warp']; known: "
                                   "constant, scale, binop, compare, builtin, loop_bound, dtype, inline_local, "
                                   "extract_local, inline_helper, commute, splice, specialise, delete_statement, outline, "
                                   "splice_statement, vector_width, array_rank, launch_dim")
