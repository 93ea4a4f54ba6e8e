"""Shared fixtures: a real SeaweedFS S3 server on loopback (one per session), helpers
to run the real ``jitsynth`` CLI in a subprocess, and dataset readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from sinks.seaweed import SeaweedServer

ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY = "jitsynth-test-key"
SECRET_KEY = "jitsynth-test-secret-0123456789"


@dataclass
class S3Env:
    server: SeaweedServer
    bucket: str

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def url(self, prefix: str | None = None) -> str:
        return f"s3://{self.bucket}/{prefix or uuid.uuid4().hex[:10]}"

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.endpoint}

    def client(self):  # noqa: ANN201
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Env]:
    server = SeaweedServer("jitsynth-test", ACCESS_KEY, SECRET_KEY, data_dir=tmp_path_factory.mktemp("weed"))
    server.start()
    try:
        yield S3Env(server, "jitsynth-test")
    finally:
        server.cleanup()


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JITSYNTH_", "AWS_", "JOB_COMPLETION"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def jitsynth(*args: str, env: dict[str, str] | None = None, timeout: float = 600,
             check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real CLI as a user would."""
    proc = subprocess.run([sys.executable, "-m", "stream.cli.app", *args], capture_output=True, text=True,
                          env=cli_env(env), timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"jitsynth {' '.join(args)} exited {proc.returncode}\n{proc.stderr[-3000:]}")
    return proc


def read_local_dataset(root: Path) -> tuple[list[dict], list[dict]]:
    """(commits, records) of a local dataset, read by following the commits."""
    commits = [json.loads(p.read_bytes()) for p in sorted((root / "commits").rglob("*.json"))]
    records = []
    for commit in commits:
        data = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress((root / commit["shard"]).read_bytes())
        records += [json.loads(line) for line in data.splitlines()]
    return commits, records


def free_port() -> int:
    from sinks.seaweed import free_port as _free

    return _free()
