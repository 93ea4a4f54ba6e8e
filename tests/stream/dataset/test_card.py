"""Issue 8: ``jitsynth stats``, ``jitsynth card`` and ``jitsynth export --layout per-sample``
on a small two-producer dataset with one real failure (a worker segfault on seed 5).
Every figure is checked against the records and commits read independently."""

from __future__ import annotations

import json
import struct
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import jitsynth, read_local_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("card") / "ds"
    state = out.parent / "state"
    jitsynth("run", "--out", str(out), "--count", "40", "--workers", "2", "--shard-records", "20",
             "--state-dir", str(state / "0"), env={"JITSYNTH_FAULT_INJECT": "segv:5"}, check=True)
    jitsynth("run", "--out", str(out), "--count", "10", "--workers", "1", "--shard-records", "10", "--producer", "1",
             "--seed-start", "1000000", "--state-dir", str(state / "1"), check=True)
    return out


@pytest.fixture(scope="module")
def truth(dataset: Path) -> tuple[list[dict], list[dict]]:
    return read_local_dataset(dataset)


@pytest.fixture(scope="module")
def stats(dataset: Path) -> dict:
    return json.loads(jitsynth("stats", str(dataset), "--json", check=True).stdout)


def test_stats_counts_match_the_commits(stats: dict, truth: tuple) -> None:
    commits, records = truth
    assert stats["records"] == len(records) == 50
    assert stats["commits"] == len(commits) == 3
    assert stats["producers"]["0"]["records"] == 40 and stats["producers"]["1"]["records"] == 10
    assert stats["producers"]["1"]["commits"] == 1
    assert stats["bytes"]["stored"] == sum(c["bytes"] for c in commits)
    assert stats["bytes"]["raw"] == sum(c["raw_bytes"] for c in commits) > stats["bytes"]["stored"]
    assert stats["seeds"]["consumed"] == sum(c["seed_end"] - c["seed_start"] for c in commits)
    assert stats["seeds"]["consumed"] == stats["records"] + stats["seeds"]["duplicates"] + stats["seeds"]["failures"]


def test_stats_failures_by_reason(stats: dict, truth: tuple) -> None:
    commits, _ = truth
    failures = [f for c in commits for f in c["failures"]]
    assert len(failures) == stats["seeds"]["failures"] >= 1
    assert sum(f["count"] for f in stats["failures_by_reason"]) == len(failures)
    segv = [f for f in stats["failures_by_reason"] if f["example_seed"] == 5]
    assert len(segv) == 1 and "died" in segv[0]["reason"]
    assert not any(ch.isdigit() for ch in segv[0]["reason"])  # numbers are folded so reasons group


def test_stats_histograms_and_distributions(stats: dict, truth: tuple) -> None:
    _, records = truth
    assert stats["features"] == dict(Counter(f for r in records for f in r["metadata"]["features"]))
    assert stats["builtins"] == dict(Counter(b for r in records for b in r["metadata"]["builtins"]))
    assert list(stats["builtins"].values()) == sorted(stats["builtins"].values(), reverse=True)
    locs = sorted(r["metadata"]["loc"] for r in records)
    loc = stats["distributions"]["loc"]
    assert (loc["n"], loc["min"], loc["max"]) == (50, locs[0], locs[-1])
    assert loc["min"] <= loc["p10"] <= loc["p50"] <= loc["p90"] <= loc["max"]
    fwd = stats["distributions"]["chars.cuda.forward"]
    assert fwd["max"] == max(len(r["cuda"]["forward"]) for r in records)
    assert stats["validation"]["codegen"] == {"pass": 50, "fail": 0, "not_checked": 0, "pass_rate": 1.0}
    assert stats["validation"]["executed"]["pass_rate"] is None
    assert stats["warp_versions"] == {records[0]["metadata"]["warp_version"]: 50}


def test_stats_text_is_readable_tables(dataset: Path) -> None:
    text = jitsynth("stats", str(dataset), check=True).stdout
    assert "| records | 50 |" in text and "**Failures by reason**" in text and "| loc |" in text
    missing = jitsynth("stats", str(dataset.parent / "nothing-here"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    (dataset.parent / "empty").mkdir(exist_ok=True)
    empty = jitsynth("stats", str(dataset.parent / "empty"))
    assert empty.returncode == 1 and "no commits" in empty.stderr


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_card_writes_readme_front_matter_and_plots(dataset: Path, truth: tuple, stats: dict, tmp_path: Path) -> None:
    commits, records = truth
    proc = jitsynth("card", str(dataset), check=True)
    assert "card for 50 records in 3 shards, 5 plots" in proc.stdout
    text = (dataset / "README.md").read_text()
    front, body = text.split("\n---\n", 1)
    assert front.startswith("---\n") and "license: apache-2.0" in front and "- n<1K" in front
    listed = [line.strip()[3:-1] for line in front.splitlines() if line.strip().startswith('- "shards/')]
    assert listed == [c["shard"] for c in commits]
    assert "## Schema" in body and "`python_source`" in body and "| records | 50 |" in body
    assert records[0]["metadata"]["generator"]["config_hash"] in body
    assert "Knobs of configuration" in body  # default config: its knobs are listed
    plots = sorted((dataset / "card").glob("*.png"))
    assert len(plots) >= 3
    for plot in plots:
        width, height = _png_size(plot.read_bytes())
        assert width >= 500 and height >= 250 and plot.stat().st_size > 10_000
        assert f"(card/{plot.name})" in body
    assert json.loads((dataset / "dataset.json").read_text())["features"] == stats["features"]
    # The front matter is a working HF dataset config: load the directory itself.
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(dataset), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 50 and sorted(ds["id"]) == sorted(r["id"] for r in records)


def test_export_per_sample_layout(dataset: Path, truth: tuple, tmp_path: Path) -> None:
    _, records = truth
    out = tmp_path / "export"
    proc = jitsynth("export", str(dataset), "--layout", "per-sample", "--to", str(out), check=True)
    assert "exported 50 records" in proc.stdout
    for backend, forward in (("cpu", "cpp_ir_forward"), ("cuda", "cuda_ir_forward")):
        files = sorted((out / backend).glob("*.json"))
        assert {f.stem for f in files} == {r["id"] for r in records}
        by_id = {r["id"]: r for r in records}
        sample = json.loads(files[0].read_text())
        record = by_id[files[0].stem]
        assert {"python_source", "kernel_name", "cpp_ir_full", forward, "metadata"} <= set(sample)
        assert sample["python_source"] == record["python_source"] and sample["kernel_name"] == record["kernel_name"]
        assert sample["cpp_ir_full"] == record[backend]["full"] and sample[forward] == record[backend]["forward"]
        assert sample["metadata"]["backend"] == backend and sample["metadata"]["loc"] == record["metadata"]["loc"]
    assert "cuda_ir_forward" not in json.loads(next((out / "cpu").glob("*.json")).read_text())
    some = tmp_path / "some"
    proc = jitsynth("export", str(dataset), "--to", str(some), "--backend", "cuda", "--where", "producer == '1'",
                    "--limit", "4", check=True)
    assert "exported 4 records" in proc.stdout and not (some / "cpu").exists()
    assert all(json.loads(f.read_text())["metadata"]["producer"] == "1" for f in (some / "cuda").glob("*.json"))
    bad = jitsynth("export", str(dataset), "--to", str(tmp_path / "x"), "--layout", "sharded")
    assert bad.returncode == 2 and "per-sample" in bad.stderr
