"""Issue 16 (A): ``jitsynth read / stats / card / export`` on a damaged dataset. A committed
shard with one byte appended, one truncated, or deleted: exit 1 with one line naming the
shard (no traceback); with ``--skip-corrupt`` the command goes on over the other shards
and its last stderr line says how many records it skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import jitsynth, read_local_dataset
from tests.sinks.read.test_training import produce

DAMAGE = ("appended", "truncated", "deleted")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corrupt") / "ds"
    produce(str(out), out.parent / "state", 24, 8)
    return out


def damaged(dataset: Path, tmp_path: Path, damage: str) -> tuple[Path, dict]:
    root = tmp_path / "ds"
    shutil.copytree(dataset, root)
    commits, _ = read_local_dataset(root)
    bad = commits[1]  # the middle shard: records come before and after it
    path = root / bad["shard"]
    if damage == "appended":
        path.write_bytes(path.read_bytes() + b"\0")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-9])
    else:
        path.unlink()
    return root, bad


def command(name: str, root: Path, tmp_path: Path) -> list[str]:
    extra = {"read": [], "stats": ["--json"], "card": ["--no-plots"], "export": ["--to", str(tmp_path / "out")]}
    return [name, str(root), *extra[name]]


def kept_records(name: str, stdout: str) -> int:
    """How many records the command says it read."""
    if name == "read":
        return len(stdout.splitlines())
    if name == "stats":
        return json.loads(stdout)["records"]
    line = stdout.splitlines()[-1]  # "card for N records in ..." / "exported N records: ..."
    return int(line.split(" records")[0].rsplit(" ", 1)[1].replace(",", ""))


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("name", ["read", "stats", "card", "export"])
def test_a_damaged_shard_stops_the_command_with_one_line(dataset: Path, tmp_path: Path, name: str,
                                                         damage: str) -> None:
    root, bad = damaged(dataset, tmp_path, damage)
    proc = jitsynth(*command(name, root, tmp_path))
    assert proc.returncode == 1, (proc.stdout[-500:], proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"jitsynth: error: shard {bad['shard']} (committed by commits/0/00000001.json) "
                               "is corrupt: ")
    assert ("the shard is missing" if damage == "deleted" else "the commit says") in lines[0]
    assert "`jitsynth verify URL`" in lines[0]


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("name", ["read", "stats", "card", "export"])
def test_skip_corrupt_goes_on_and_says_how_much_it_skipped(dataset: Path, tmp_path: Path, name: str,
                                                           damage: str) -> None:
    root, bad = damaged(dataset, tmp_path, damage)
    proc = jitsynth(*command(name, root, tmp_path), "--skip-corrupt")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"jitsynth: warning: skipped {bad['count']} records of 1 corrupt shard(s) ({bad['shard']}); "
        "`jitsynth verify URL` lists every damaged shard")
    assert kept_records(name, proc.stdout) == 24 - bad["count"] == 16
    if name == "read":  # the records of the other shards, in order
        commits, _ = read_local_dataset(dataset)
        assert [json.loads(line)["id"] for line in proc.stdout.splitlines()] == commits[0]["ids"] + commits[2]["ids"]
    if name == "stats":
        assert json.loads(proc.stdout)["skipped_corrupt"] == {"shards": [bad["shard"]], "records": bad["count"]}
    if name == "export":
        assert len(list((tmp_path / "out" / "cpu").iterdir())) == 16
