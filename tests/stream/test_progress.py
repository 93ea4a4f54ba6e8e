"""Issue 8, operator experience: the live progress display in a pseudo-terminal, JSON log
lines in a pipe, the Prometheus endpoint scraped during a run, and ``config show``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import socket
import struct
import http.client
import subprocess
import sys
import termios
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, cli_env, free_port, jitsynth

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_pty(*args: str, timeout: float = 300) -> tuple[int, str]:
    """Run the real CLI with stdin/stdout/stderr on a pseudo-terminal; (exit status, raw output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = cli_env({"TERM": "xterm-256color"})
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli.app", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=ROOT)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


@pytest.fixture(scope="module")
def tty_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    out = tmp_path_factory.mktemp("tty") / "ds"
    rc, raw = run_in_pty("run", "--out", str(out), "--count", "20", "--workers", "2", "--shard-records", "10",
                         "--state-dir", str(out.parent / "state"))
    return out, rc, raw


def test_progress_display_on_a_terminal(tty_run: tuple[Path, int, str]) -> None:
    out, rc, raw = tty_run
    assert rc == 0, raw[-2000:]
    assert "\x1b[?25l" in raw  # rich hides the cursor while the live display runs...
    assert "\x1b[2K" in raw or "\x1b[1A" in raw  # ...and redraws it in place
    text = ANSI.sub("", raw)
    for label in ("committed", "kernels/s", "duplicates", "failures", "shard", "ETA", "elapsed"):
        assert label in text, label
    assert "20/20 (100%)" in text and "seq 1 committed (10 records)" in text
    # Log lines are rendered for humans (not JSON) and printed above the display.
    assert "[info" in text and "done" in text
    assert not any(line.lstrip().startswith('{"') for line in text.splitlines())
    assert len(list((out / "commits" / "0").glob("*.json"))) == 2


def test_log_format_json_on_a_terminal_has_no_display(tty_run: tuple[Path, int, str]) -> None:
    out, _, _ = tty_run
    rc, raw = run_in_pty("run", "--out", str(out), "--count", "20", "--workers", "2", "--shard-records", "10",
                         "--state-dir", str(out.parent / "state"), "--log-format", "json")
    assert rc == 0, raw[-2000:]
    assert "\x1b[?25l" not in raw and "kernels/s" not in raw
    events = [json.loads(line) for line in raw.splitlines() if line.startswith("{")]
    assert any(e["event"] == "dataset already complete" and e["committed"] == 20 for e in events)


def test_json_logs_in_a_pipe_and_metrics_scraped_during_the_run(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "ds"
    # --max-rate 10 in batches of 2: the run lasts > 1.5 s on any machine, so scrapes land
    # while it processes.
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli.app", "run", "--out", str(out), "--count", "20",
                             "--workers", "1", "--shard-records", "10", "--state-dir", str(tmp_path / "state"),
                             "--metrics-port", str(port), "--max-rate", "10", "--batch-size", "2"],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=cli_env(), cwd=ROOT)
    scrapes: list[str] = []
    listening: set[str] = set()

    def scrape() -> None:
        while proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    scrapes.append(resp.read().decode())
                listening.update(c.laddr.ip for c in psutil.Process(proc.pid).net_connections("tcp")
                                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port)
            except (OSError, psutil.Error, http.client.HTTPException):
                pass  # the producer may exit mid-response; later scrapes decide
            time.sleep(0.2)

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    stdout, stderr = proc.communicate(timeout=300)
    scraper.join(timeout=10)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert stdout == b""  # stdout is for data; logs go to stderr
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines if line.startswith("{")]
    # Every structlog line is JSON (Warp's own start-up warning is its only other output).
    assert all(line.startswith("{") or line.startswith("Warp") for line in lines), lines
    committed = [e for e in events if e["event"] == "committed"]
    assert [e["seq"] for e in committed] == [0, 1] and committed[-1]["total"] == 20
    assert all({"level", "timestamp"} <= set(e) for e in events)
    assert events[-1]["event"] == "done" and events[-1]["committed"] == 20
    # The endpoint answered while the run was going, on loopback only.
    assert scrapes, "the metrics endpoint never answered"
    assert listening == {"127.0.0.1"}
    last = scrapes[-1]
    for name in ("jitsynth_kernels_processed_total", "jitsynth_duplicates_total", "jitsynth_failures_total",
                 "jitsynth_dataset_records", "jitsynth_commit_seconds_bucket"):
        assert name in last, name
    processed = [float(m) for s in scrapes for m in re.findall(r"^jitsynth_kernels_processed_total (\S+)$", s, re.M)]
    assert max(processed) > 0


def test_metrics_port_in_use_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = jitsynth("run", "--out", str(tmp_path / "ds"), "--count", "1", "--metrics-port", str(port))
    assert proc.returncode == 2 and f"--metrics-port {port}" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "ds" / "commits").exists()


def test_config_show_precedence_and_masked_secrets(tmp_path: Path) -> None:
    config = tmp_path / "jitsynth.toml"
    config.write_text('shard_records = 55\nworkers = 3\nbatch_size = 9\n[generator]\nmax_helpers = 1\n')
    env = {"JITSYNTH_SHARD_RECORDS": "77", "JITSYNTH_BATCH_SIZE": "5", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY",
           "AWS_SECRET_ACCESS_KEY": "very-secret-value-123", "AWS_ENDPOINT_URL": "http://user:pw-secret@127.0.0.1:9"}
    proc = jitsynth("config", "show", "--config", str(config), "--batch-size", "12", "--out", "s3://bucket/p",
                    env=env, check=True)
    text = proc.stdout
    for secret in ("very-secret-value-123", "pw-secret", "AKIAEXAMPLEKEY"):
        assert secret not in text
    assert re.search(r'^batch_size = 12\s+# flag$', text, re.M)  # flag beats env and file
    assert re.search(r'^shard_records = 77\s+# env JITSYNTH_SHARD_RECORDS$', text, re.M)  # env beats file
    assert re.search(rf'^workers = 3\s+# file {re.escape(str(config))}$', text, re.M)
    assert re.search(r'^shard_age = 300.0\s+# default$', text, re.M)
    assert re.search(r'^max_helpers = 1$', text, re.M)
    resolved = json.loads(jitsynth("config", "show", "--json", "--config", str(config), env=env, check=True).stdout)
    assert resolved["aws_secret_access_key"] == {"value": "****", "source": "env AWS_SECRET_ACCESS_KEY"}
    assert resolved["aws_access_key_id"]["value"] == "AKIA****"
    assert resolved["endpoint_url"]["value"] == "http://user:****@127.0.0.1:9"
    assert resolved["shard_records"]["value"] == 77 and resolved["generator"]["value"]["max_helpers"] == 1
    bad = jitsynth("config", "show", "--workers", "0")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
