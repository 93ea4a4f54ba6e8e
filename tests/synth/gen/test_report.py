"""``jitsynth report`` end to end (issue 19): the quality/realism table, --against (repeatable),
--validate, --json; measured against a dataset of the same seeds, both columns must agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import jitsynth, read_local_dataset

SEEDS = 6


@pytest.fixture(scope="module")
def same_seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "dataset"
    jitsynth("run", "--out", str(out), "--count", str(SEEDS), "--workers", "1", "--shard-records", str(SEEDS),
             "--state-dir", str(out.parent / "state"), check=True)
    return out


def test_report_against_a_dataset_of_the_same_seeds_agrees(same_seeds: Path, tmp_path: Path) -> None:
    commits, records = read_local_dataset(same_seeds)
    seeds = commits[-1]["seed_end"]  # records of seeds [0, seeds): a duplicate or failure is skipped there
    report_json = tmp_path / "report.json"
    proc = jitsynth("report", "--seeds", str(seeds), "--workers", "1", "--against", str(same_seeds),
                    "--against", str(same_seeds), "--json", str(report_json), check=True)
    text = proc.stdout
    assert "codegen-valid" in text and "builtin coverage" in text  # the report it always printed
    for row in ("quality and realism", "dead local assignments", "kernels w/ uncalled helper",
                "race violations (kernels)", "LOC median", "params median", "feature shares",
                "builtin JSD (base 2"):
        assert row in text, row
    rep = json.loads(report_json.read_text())
    generated, real = rep["generated"], rep["against"]
    assert real["sources"] == [str(same_seeds)] * 2
    assert real["kernels"] == 2 * len(records)  # repeating --against merges the corpora (here: twice the same)
    if seeds == len(records) == rep["valid"]:  # every seed became a record: the same kernels on both sides
        assert real["builtin_jsd"] == 0.0
        assert real["feature_shares"] == generated["feature_shares"]
        assert real["loc_median"] == generated["loc_median"]
        assert real["quality"]["dead_assignment_share"] == generated["quality"]["dead_assignment_share"]
        assert real["quality"]["kernel_share_with"] == generated["quality"]["kernel_share_with"]
    assert rep["tiers"] == ["codegen"] and generated["validation"]["ptx"]["checked"] == 0


def test_report_validate_tiers_give_compile_rates(tmp_path: Path) -> None:
    report_json = tmp_path / "report.json"
    proc = jitsynth("report", "--seeds", "2", "--workers", "1", "--validate", "ptx,cpu-compile",
                    "--json", str(report_json), check=True)
    assert "NVRTC (ptx) compiles" in proc.stdout and "clang (cpu-compile) compiles" in proc.stdout
    validation = json.loads(report_json.read_text())["generated"]["validation"]
    assert validation["ptx"]["checked"] == validation["cpu_compile"]["checked"] == 2


def test_report_bad_against_or_tier_is_a_usage_error(tmp_path: Path) -> None:
    proc = jitsynth("report", "--seeds", "1", "--against", str(tmp_path / "nothing-here"))
    assert proc.returncode == 2 and "--against" in proc.stderr and "does not exist" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = jitsynth("report", "--seeds", "1", "--against", str(tmp_path / "empty"))
    assert proc.returncode == 2 and "--against" in proc.stderr and "no committed records" in proc.stderr
    proc = jitsynth("report", "--seeds", "1", "--validate", "ptx,bogus")
    assert proc.returncode == 2 and "bogus" in proc.stderr
