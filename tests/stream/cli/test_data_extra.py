"""Issue 18: the producer's install (and image) leaves out the dataset tools' heavy libraries,
pyproject.toml's ``data`` extra. The producer and the readers work without them; the three
features that need them say so in one line naming the extra (exit 2, no traceback) before
touching the dataset.

"Not installed" is simulated, not made by uninstalling: a ``sitecustomize`` on PYTHONPATH
(run by every interpreter start, spawned workers included) puts None in ``sys.modules`` for
each module of the extra, so importing one raises ModuleNotFoundError."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import warp
from packaging.requirements import Requirement

from stream.cli.extras import DATA_EXTRA_MODULES, INSTALL_DATA_EXTRA
from tests.conftest import ROOT, cli_env, jitsynth, read_local_dataset

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
COUNT = 6


def _names(requirements: list[str]) -> set[str]:
    return {re.sub(r"[-_.]+", "-", Requirement(r).name).lower() for r in requirements}


@pytest.fixture(scope="module")
def no_data_extra(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for a CLI subprocess in which the data extra is not installed."""
    site = tmp_path_factory.mktemp("no-data-extra")
    (site / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in DATA_EXTRA_MODULES))
    return {"PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, no_data_extra: dict[str, str]) -> Path:
    """A small dataset produced by `jitsynth run` without the data extra (worker processes too)."""
    work = tmp_path_factory.mktemp("produced")
    jitsynth("run", "--out", str(work / "ds"), "--state-dir", str(work / "st"), "--count", str(COUNT),
             "--workers", "1", "--shard-records", "3", "--progress", "off", env=no_data_extra, check=True)
    return work / "ds"


def test_the_data_extra_is_optional_and_the_test_extra_pulls_it_in() -> None:
    extras = PYPROJECT["optional-dependencies"]
    assert _names(extras["data"]) == set(DATA_EXTRA_MODULES)  # the module names are the distributions'
    assert not _names(PYPROJECT["dependencies"]) & set(DATA_EXTRA_MODULES)
    assert "numpy" in _names(PYPROJECT["dependencies"])  # Warp and the execute tier need it
    assert any(Requirement(r).name == "jitsynth" and Requirement(r).extras == {"data"} for r in extras["test"])


def test_the_simulation_really_hides_each_module(no_data_extra: dict[str, str]) -> None:
    """Guards the other tests here: they would prove nothing if the modules stayed importable."""
    for name in DATA_EXTRA_MODULES:
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, check=False,
                              env=cli_env(no_data_extra), timeout=120)
        assert proc.returncode == 1 and "ModuleNotFoundError" in proc.stderr, (name, proc.stderr[-500:])


def test_producer_and_readers_work_without_the_data_extra(dataset: Path, no_data_extra: dict[str, str],
                                                          tmp_path: Path) -> None:
    _commits, records = read_local_dataset(dataset)
    assert len(records) == COUNT
    url = str(dataset)
    read = jitsynth("read", url, env=no_data_extra, check=True)
    assert [json.loads(line)["id"] for line in read.stdout.splitlines()] == [r["id"] for r in records]
    assert "0 faults" in jitsynth("verify", url, env=no_data_extra, check=True).stdout
    dedup = json.loads(jitsynth("dedup", url, "--json", env=no_data_extra, check=True).stdout)
    assert dedup["records"] == COUNT and dedup["n_duplicates"] == 0
    assert json.loads(jitsynth("stats", url, "--json", env=no_data_extra, check=True).stdout)["records"] == COUNT
    card = jitsynth("card", url, "--no-plots", env=no_data_extra, check=True)
    assert "0 plots" in card.stdout and (dataset / "README.md").is_file()
    jitsynth("export", url, "--to", str(tmp_path / "samples"), env=no_data_extra, check=True)
    assert len(list((tmp_path / "samples" / "cpu").glob("*.json"))) == COUNT


def test_ingest_works_without_the_data_extra(no_data_extra: dict[str, str], tmp_path: Path) -> None:
    wave = Path(warp.__file__).parent / "examples" / "core" / "example_wave.py"
    proc = jitsynth("ingest", str(wave), "--out", str(tmp_path / "ds"), "--state-dir", str(tmp_path / "st"),
                    "--workers", "1", env=no_data_extra, check=True)
    assert "0 failed" in proc.stdout
    assert read_local_dataset(tmp_path / "ds")[1]


@pytest.mark.parametrize(("args", "needs", "writes"), [
    (["dedup", "{url}", "--near"], "datasketch and scipy", "{url}/dedup/near-duplicates.json"),
    (["export", "{url}", "--format", "parquet", "--to", "{tmp}/parquet"], "pyarrow", "{tmp}/parquet"),
    (["card", "{url}"], "matplotlib", "{url}/card"),
], ids=["dedup-near", "export-parquet", "card-plots"])
def test_a_feature_of_the_data_extra_says_how_to_install_it(args: list[str], needs: str, writes: str,
                                                           dataset: Path, no_data_extra: dict[str, str],
                                                           tmp_path: Path) -> None:
    fill = {"url": str(dataset), "tmp": str(tmp_path)}
    proc = jitsynth(*(a.format(**fill) for a in args), env=no_data_extra)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.startswith("jitsynth: error: ") and f"needs {needs}, " in proc.stderr
    assert INSTALL_DATA_EXTRA in proc.stderr and ("--no-plots" in proc.stderr) == (args[0] == "card")
    assert not Path(writes.format(**fill)).exists()  # checked before any work: nothing written
