"""Issue 16 (A): the README's "Reading a dataset" recipes for training, run as written, on a
local directory and on S3 (real SeaweedFS): ``ShardedRecords`` under a torch-style
multi-worker loop (workers simulated: torch is not installed), Hugging Face streaming
with ``split_dataset_by_node``, DuckDB over S3 through fsspec, and a follower reading an
S3 dataset while a producer writes it."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from sinks.read.reader import committed_shards, iter_records
from sinks.read.training import ShardedRecords
from tests.conftest import ROOT, S3Env, cli_env, read_local_dataset
from tests.sinks.read.test_readers import s3_env  # noqa: F401 - the fixture: AWS_* set for in-process readers
from tests.sinks.read.test_training import Follower, produce

WORLD, WORKERS = 3, 2


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recipes") / "ds"  # 7 shards: not a multiple of 3 ranks or 6 workers
    return Path(produce(str(out), out.parent / "state", 33, 5))


@pytest.fixture(scope="module")
def on_s3(s3: S3Env, tmp_path_factory: pytest.TempPathFactory) -> str:
    # 6 shards: a multiple of 3 ranks
    return produce(s3.url("recipes"), tmp_path_factory.mktemp("recipes-state"), 30, 5, env=s3.env())


def all_ids(url: str) -> list[str]:
    return [r["id"] for r in iter_records(url)]


def torch_style_loop(url: str, epoch: int) -> list[str]:
    """The README's training loop, each DataLoader worker simulated by its own reader."""
    seen = []
    for rank in range(WORLD):
        for worker in range(WORKERS):  # under torch: one reader, worker taken from get_worker_info()
            records = ShardedRecords(url, rank=rank, world_size=WORLD, worker_id=worker, num_workers=WORKERS, seed=0)
            records.set_epoch(epoch)
            seen += [record["id"] for record in records]
    return seen


def hf_streaming(url: str, storage_options: dict | None, cache: Path) -> list[list[str]]:
    """The README's HF recipe: stream the committed shards, one split per node."""
    import datasets
    from datasets.distributed import split_dataset_by_node

    kwargs = {"storage_options": storage_options} if storage_options else {}
    ds = datasets.load_dataset("json", data_files=committed_shards(url), split="train", streaming=True,
                               cache_dir=str(cache), **kwargs)
    return [[row["id"] for row in split_dataset_by_node(ds, rank=rank, world_size=WORLD)] for rank in range(WORLD)]


def test_torch_style_multi_worker_loop_local(local: Path) -> None:
    commits, _ = read_local_dataset(local)
    assert len(commits) == 7
    expected = Counter(all_ids(str(local)))
    assert sum(expected.values()) == 33
    orders = [torch_style_loop(str(local), epoch) for epoch in (0, 1)]
    assert all(Counter(order) == expected for order in orders) and orders[0] != orders[1]


def test_hf_streaming_split_by_node_local(local: Path, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    nodes = hf_streaming(str(local), None, tmp_path / "hf")
    assert all(nodes) and Counter(i for ids in nodes for i in ids) == Counter(all_ids(str(local)))


@pytest.mark.usefixtures("s3_env")
def test_torch_style_loop_and_hf_streaming_on_s3(on_s3: str, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    from sinks.read.hfcompat import storage_options

    expected = Counter(all_ids(on_s3))
    assert sum(expected.values()) == 30
    assert Counter(torch_style_loop(on_s3, 0)) == expected
    nodes = hf_streaming(on_s3, storage_options(), tmp_path / "hf")  # the options the README gives
    assert [len(ids) for ids in nodes] == [10, 10, 10]  # 6 shards: two whole shards per node
    assert Counter(i for ids in nodes for i in ids) == expected


@pytest.mark.usefixtures("s3_env")
def test_hf_streaming_on_s3_fails_without_the_session_option(s3: S3Env, on_s3: str, tmp_path: Path) -> None:
    """Why ``sinks.read.hfcompat`` exists: plain s3fs options break at the first zstd file (if
    this starts passing, datasets fixed huggingface/datasets#7295 and the option can go)."""
    pytest.importorskip("datasets")
    env = s3.env()
    plain = {"key": env["AWS_ACCESS_KEY_ID"], "secret": env["AWS_SECRET_ACCESS_KEY"],
             "client_kwargs": {"endpoint_url": env["AWS_ENDPOINT_URL"]}}
    with pytest.raises(TypeError, match="requote_redirect_url"):
        hf_streaming(on_s3, plain, tmp_path / "hf")


@pytest.mark.usefixtures("s3_env")
def test_duckdb_over_s3_through_fsspec(on_s3: str) -> None:
    duckdb = pytest.importorskip("duckdb")
    fsspec = pytest.importorskip("fsspec")
    from sinks.read.hfcompat import storage_options

    shards = committed_shards(on_s3)
    con = duckdb.connect()
    con.register_filesystem(fsspec.filesystem("s3", **storage_options()))
    rows = con.sql(f"SELECT id, metadata.loc AS loc FROM read_json({shards!r}) WHERE metadata.loc > 0").fetchall()
    records = list(iter_records(on_s3))
    assert sorted(i for i, _ in rows) == sorted(r["id"] for r in records if r["metadata"]["loc"] > 0)
    assert len(rows) > 0


@pytest.mark.usefixtures("s3_env")
def test_a_follower_reads_an_s3_dataset_while_a_producer_writes_it(s3: S3Env, tmp_path: Path) -> None:
    url = s3.url("follow")
    seen, total = threading.Condition(), [0]
    follower = Follower(ShardedRecords(url, follow=True, poll_interval=0.05, max_poll_interval=0.5), seen, total)
    follower.start()
    proc = subprocess.run([sys.executable, "-m", "stream.cli.app", "run", "--out", url, "--count", "12", "--workers", "1",
                           "--shard-records", "4", "--state-dir", str(tmp_path / "state")],
                          env=cli_env(s3.env()), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = all_ids(url)
    assert len(expected) == 12
    with seen:  # event: caught up with every commit of the finished producer
        assert seen.wait_for(lambda: total[0] >= len(expected) or follower.error is not None, timeout=300)
    follower.reader.stop()
    follower.join(timeout=60)
    assert not follower.is_alive() and follower.error is None, follower.error
    assert follower.ids == expected

