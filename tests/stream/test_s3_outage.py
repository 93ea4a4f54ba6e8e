"""The S3 server goes away for 30+ seconds mid-run and comes back (same data directory,
same ports): the run completes with nothing lost, and memory stays bounded meanwhile.
The server stops on an event (the fifth commit), and ``--max-rate`` keeps the run going
well past it on any machine."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psutil
import pytest

from sinks.seaweed import SeaweedServer
from tests.conftest import ACCESS_KEY, SECRET_KEY, jitsynth
from tests.faults import log_events, reaped, start, wait_event, wait_for

COUNT, SHARD = 300, 20
OUTAGE_AT = 5  # commits before the server stops
OUTAGE_S = 32.0


@pytest.fixture()
def own_server(tmp_path: Path):  # noqa: ANN201
    server = SeaweedServer("outage", ACCESS_KEY, SECRET_KEY, data_dir=tmp_path / "weed").start()
    yield server
    server.cleanup()


def _env(server: SeaweedServer) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": server.endpoint}


class PeakRss:
    """Samples a process's RSS in a thread; ``peak()`` gives the highest value since the last call."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.process, self.interval = psutil.Process(pid), interval
        self._peak, self._lock, self._done = 0, threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                rss = self.process.memory_info().rss
            except psutil.Error:
                return
            with self._lock:
                self._peak = max(self._peak, rss)

    def peak(self) -> int:
        with self._lock:
            peak, self._peak = self._peak, 0
        return peak

    def close(self) -> None:
        self._done.set()
        self._thread.join()


def test_outage_of_30s_loses_nothing_and_memory_stays_flat(own_server: SeaweedServer, tmp_path: Path) -> None:
    common = ["--count", str(COUNT), "--workers", "2", "--shard-records", str(SHARD), "--batch-size", "2"]
    args = ["run", "--out", "s3://outage/ds", "--state-dir", str(tmp_path / "st"), *common]
    log = tmp_path / "run.log"
    # 20 kernels/s: the 200 records left at the event take > 9 s, far longer than stopping the
    # server (~2.5 s here), so the run cannot end before the outage.
    proc = start([*args, "--max-rate", "20", "--log-format", "json"], env=_env(own_server), log=log)
    rss = None
    with reaped(proc):
        try:
            wait_event(proc, lambda: len(log_events(log, "committed")) >= 1, "commit 0", log=log)
            rss = PeakRss(proc.pid)  # the baseline: steady state, from commit 0 to the outage
            wait_event(proc, lambda: len(log_events(log, "committed")) >= OUTAGE_AT, f"commit {OUTAGE_AT - 1}",
                       log=log)
            own_server.stop()  # the fault, right on the event
            committed_at_outage = log_events(log, "committed")[-1]["total"]
            running_at_outage = proc.poll() is None
            normal = rss.peak()
            assert running_at_outage and committed_at_outage < COUNT, "the outage must start mid-run"
            assert not wait_for(lambda: proc.poll() is not None, OUTAGE_S), "the producer must wait out the outage"
            during = rss.peak()
        finally:
            if rss is not None:
                rss.close()
        own_server.start()
        assert proc.wait(300) == 0, log.read_text()[-3000:]
    assert "s3 retry" in log.read_text()
    assert log_events(log, "committed")[-1]["total"] == COUNT
    print(f"outage from {committed_at_outage}/{COUNT} records committed; main-process peak RSS: "
          f"normal {normal / 2**20:.1f} MiB, during outage {during / 2**20:.1f} MiB")
    assert during <= normal * 1.2, (normal, during)

    verify = jitsynth("verify", "s3://outage/ds", env=_env(own_server))
    assert verify.returncode == 0, verify.stdout
    read = jitsynth("read", "s3://outage/ds", env=_env(own_server), check=True)
    ids = [json.loads(line)["id"] for line in read.stdout.splitlines()]
    assert len(ids) == COUNT == len(set(ids))
    # Same records, same order, as an uninterrupted local run of the same seeds.
    jitsynth("run", "--out", str(tmp_path / "ref"), "--state-dir", str(tmp_path / "refst"), *common, check=True)
    ref = jitsynth("read", str(tmp_path / "ref"), check=True)
    assert ids == [json.loads(line)["id"] for line in ref.stdout.splitlines()]
