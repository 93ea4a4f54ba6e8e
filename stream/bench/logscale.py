"""``jitsynth bench --log-scale N``: how long a dataset of N commits takes to open and read.

Writes N synthetic commits in the real layout (``--log-producers`` producers, one small
real record per shard, commit-log checkpoints every 100 commits as a producer writes
them) to a local directory or a SeaweedFS the bench starts, then times, each with a
fresh sink that counts its requests:

- ``open``: the commit list (checkpoints + the commits after them), and the same with
  checkpoints hidden and one request at a time (what readers did before checkpoints and
  parallel fetches: the side-by-side baseline);
- ``first_record``: open plus the first record out of ``aiter_records``;
- ``stats`` and ``verify``: full passes, also side by side with the baseline, which reads
  every record (``stats --read-records``) and fetches every commit and shard (``verify
  --deep``), as both did before commits carried summaries and ETags.

The latency model turns a loopback measurement into an estimate for a remote S3 region:
``measured + GETs x latency / concurrency + LIST pages x latency`` (GETs run ``concurrency``
at a time; LIST pages are sequential, so they are charged in full).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import zstandard

from sinks.checkpoints import CheckpointWriter, list_commits
from sinks.shard import s3_etag
from sinks.read.shardio import DEFAULT_CONCURRENCY, ordered_map
from stream.commitlog import Commit, commit_key, encode_commit, now_iso, shard_key
from stream.recordstats import commit_summary, record_facts

LATENCIES_MS = (2, 20)


class CountingSink:
    """A sink wrapper that counts requests (GETs, streamed GETs, LIST pages) and can hide
    the checkpoints (``hide_checkpoints``: the dataset as readers saw it before them)."""

    def __init__(self, inner: Any, hide_checkpoints: bool = False) -> None:
        self.inner, self.hide = inner, hide_checkpoints
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get(self, key: str) -> bytes | None:
        self.calls["get"] += 1
        return await self.inner.get(key)

    async def stream(self, key: str, chunk_size: int = 1 << 18):  # noqa: ANN201
        self.calls["get"] += 1
        async for chunk in self.inner.stream(key, chunk_size):
            yield chunk

    async def list(self, prefix: str, start_after: str | None = None) -> list[str]:
        if self.hide and prefix.startswith("checkpoints"):
            return []
        keys = await self.inner.list(prefix, start_after)
        self.calls["list_pages"] += 1 + len(keys) // 1000
        return keys

    async def list_info(self, prefix: str) -> dict[str, Any]:
        found = await self.inner.list_info(prefix)
        self.calls["list_pages"] += 1 + len(found) // 1000
        return found

    async def list_dirs(self, prefix: str) -> list[str]:
        self.calls["list_pages"] += 1
        return await self.inner.list_dirs(prefix)


def _record_line(template: dict[str, Any], producer: str, seq: int) -> tuple[str, bytes]:
    record_id = hashlib.blake2b(f"{producer}/{seq}".encode(), digest_size=16).hexdigest()
    return record_id, json.dumps({**template, "id": record_id, "seed": seq}).encode() + b"\n"


async def write_dataset(sink: Any, commits: int, producers: int, template: dict[str, Any],
                        checkpoint_every: int = 100, limit: int = DEFAULT_CONCURRENCY) -> None:
    """N commits spread over ``producers``, written ``limit`` at a time, with checkpoints."""
    per = [commits // producers + (1 if p < commits % producers else 0) for p in range(producers)]
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)

    async def one(item: tuple[str, int]) -> tuple[str, dict[str, Any]]:
        producer, seq = item
        record_id, line = _record_line(template, producer, seq)
        data = compressor.compress(line)
        shard = shard_key(producer, seq, seq, "logscale")
        await sink.put(shard, data)
        commit = Commit(producer=producer, seq=seq, shard=shard, seed_start=seq, seed_end=seq + 1, count=1,
                        bytes=len(data), raw_bytes=len(line), sha256=hashlib.sha256(data).hexdigest(),
                        ids=[record_id], config_hash="logscale", warp_version="logscale", created_at=now_iso(),
                        etag=s3_etag([hashlib.md5(data, usedforsecurity=False).digest()]),
                        stats=commit_summary([record_facts(line)]))
        key = commit_key(producer, seq)
        await sink.put(key, encode_commit(commit))
        return key, json.loads(encode_commit(commit))

    for p, n in enumerate(per):
        producer = f"p{p:03d}"
        writer = CheckpointWriter(sink, producer, checkpoint_every)
        async for key, commit in ordered_map([(producer, s) for s in range(n)], one, limit):
            await writer.add(key, commit)
        await writer.write()


async def _timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = await fn()
    return time.perf_counter() - t0, result


def _model(seconds: float, calls: Counter[str], concurrency: int) -> dict[str, float]:
    out = {"measured_s": round(seconds, 3), "gets": calls["get"], "list_pages": calls["list_pages"]}
    for ms in LATENCIES_MS:
        out[f"at_{ms}ms_s"] = round(seconds + calls["get"] * ms / 1000 / max(1, concurrency)
                                    + calls["list_pages"] * ms / 1000, 2)
    return out


async def measure(open_sink: Callable[[], Any], concurrency: int = DEFAULT_CONCURRENCY) -> dict[str, Any]:
    """Open / first record / stats / verify, with checkpoints and parallel fetches, and the baseline."""
    from sinks.read.reader import committed_lines
    from stream.dataset.stats import collect
    from stream.dataset.verify import verify

    results: dict[str, Any] = {}
    for mode, hide, limit in (("now", False, concurrency), ("baseline", True, 1)):
        async with open_sink() as inner:
            sink = CountingSink(inner, hide)
            seconds, commits = await _timed(lambda: list_commits(sink, limit))  # noqa: B023
            results[f"open_{mode}"] = _model(seconds, sink.calls, limit) | {"commits": len(commits)}

            async def first() -> bytes:
                listed = await list_commits(sink, limit)  # noqa: B023
                async for _k, _c, line in committed_lines(sink, listed, limit):  # noqa: B023
                    return line
                return b""

            sink.calls.clear()
            seconds, _ = await _timed(first)
            results[f"first_record_{mode}"] = _model(seconds, sink.calls, limit)
            old = mode == "baseline"  # the baseline also reads every record and fetches every commit and shard
            for name, fn in (("stats", lambda: collect(sink, "", limit, read_records=old)),  # noqa: B023
                             ("verify", lambda: verify(sink, limit, deep=old))):  # noqa: B023
                sink.calls.clear()
                seconds, out = await _timed(fn)
                results[f"{name}_{mode}"] = _model(seconds, sink.calls, limit)
                if name == "verify":
                    results[f"{name}_{mode}"]["faults"] = len(out.faults)
    for name in ("open", "first_record", "stats", "verify"):
        base, now = results[f"{name}_baseline"]["measured_s"], results[f"{name}_now"]["measured_s"]
        results[f"{name}_speedup"] = round(base / now, 1) if now else None
    return results


def run_log_scale(commits: int, producers: int, s3: bool, work_dir: Any,
                  concurrency: int = DEFAULT_CONCURRENCY) -> dict[str, Any]:
    """Write the dataset (local dir, or a SeaweedFS started here) and measure it."""
    import contextlib
    import os

    import anyio
    import msgspec

    from sinks.url import opened_sink
    from synth.gen.config import GeneratorConfig
    from synth.worker import WorkerSettings, build_record, init_worker

    settings = WorkerSettings(GeneratorConfig(families={"plain": 1.0}), "logscale")
    init_worker(settings)
    template = msgspec.to_builtins(build_record(3, settings))  # one small real record
    server, endpoint = None, None
    if s3:
        from sinks.seaweed import SeaweedServer

        server = SeaweedServer("logscale", "logscalekey", "logscalesecret0", data_dir=work_dir / "weed").start()
        os.environ.update(AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key)
        url, endpoint = "s3://logscale/ds", server.endpoint
    else:
        url = str(work_dir / "ds")

    def open_sink() -> Any:
        return opened_sink(url, endpoint_url=endpoint)

    async def main() -> dict[str, Any]:
        async with open_sink() as sink:
            seconds, _ = await _timed(lambda: write_dataset(sink, commits, producers, template))
        out = await measure(open_sink, concurrency)
        return {"write_s": round(seconds, 1), **out}

    try:
        result = anyio.run(main, backend="asyncio")
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                server.cleanup()
    return {"commits": commits, "producers": producers, "storage": "seaweedfs (loopback)" if s3 else "local dir",
            "concurrency": concurrency, **result}


def table(r: dict[str, Any]) -> str:
    lines = [f"{r['commits']:,} commits, {r['producers']} producers, {r['storage']}, {r['concurrency']} in flight "
             f"(written in {r['write_s']} s)", "",
             "| step | baseline (no checkpoints, 1 in flight) s | now s | speed-up | now: GETs / LIST pages | "
             f"now at {LATENCIES_MS[1]} ms/request s |", "|---|---|---|---|---|---|"]
    for name in ("open", "first_record", "stats", "verify"):
        b, n = r[f"{name}_baseline"], r[f"{name}_now"]
        lines.append(f"| {name} | {b['measured_s']} | {n['measured_s']} | {r[f'{name}_speedup']}x | "
                     f"{n['gets']} / {n['list_pages']} | {n[f'at_{LATENCIES_MS[1]}ms_s']} |")
    return "\n".join(lines)
