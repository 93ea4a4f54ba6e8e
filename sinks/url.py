"""Pick the sink for an output URL: ``s3://bucket/prefix`` or a local path."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sinks.local import LocalSink
from sinks.s3 import S3Sink


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def sink_for(url: str, endpoint_url: str | None = None, region: str | None = None,
             retry_deadline: float = 900.0, create: bool = True) -> LocalSink | S3Sink:
    """``create``: a local dataset directory is made if missing (producers); readers pass
    False so a mistyped path is an error, not a new empty dataset."""
    if is_s3(url):
        return S3Sink(url, endpoint_url=endpoint_url, region=region, retry_deadline=retry_deadline)
    return LocalSink(url.removeprefix("file://"), create=create)


@contextlib.asynccontextmanager
async def opened_sink(url: str, endpoint_url: str | None = None, region: str | None = None,
                      retry_deadline: float = 900.0, create: bool = True) -> AsyncIterator[LocalSink | S3Sink]:
    """The sink for ``url``, opened (start-up checks done) and closed again on exit."""
    sink = sink_for(url, endpoint_url, region, retry_deadline, create)
    await sink.open()
    try:
        yield sink
    finally:
        await sink.close()
