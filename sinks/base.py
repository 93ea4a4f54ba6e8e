"""The Sink protocol: the whole surface the pipeline and readers use to reach storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol


class ObjectInfo(NamedTuple):
    """What a listing says about one stored object."""

    size: int
    etag: str | None  # S3: hex MD5 of a single-part upload, md5-of-part-md5s "-N" for multipart


class SinkError(RuntimeError):
    """A storage failure retries could not overcome."""


class SinkPermanentError(SinkError):
    """Retrying cannot help (bad credentials, missing bucket, access denied, full disk)."""


class SinkConfigError(SinkPermanentError):
    """The sink cannot be used as configured (found at start-up: unreachable endpoint,
    unknown bucket, wrong credentials). Reported like a bad flag: exit status 2."""


class ShardUpload(Protocol):
    """One shard being stored; invisible to readers until ``commit``."""

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None:
        """Make the stored object durable and visible under its key."""

    async def abort(self) -> None: ...


class Sink(Protocol):
    url: str
    min_part_size: int  # the writer hands ``write`` chunks at least this big (but the last)

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def open_shard(self, key: str) -> ShardUpload: ...

    async def put(self, key: str, data: bytes) -> None:
        """Create or replace an object (index snapshots, dataset card)."""

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create an object only if the key is free: True if created, False if it existed."""

    async def get(self, key: str) -> bytes | None: ...

    def stream(self, key: str, chunk_size: int = 1 << 18) -> AsyncIterator[bytes]:
        """The object's bytes in chunks of at most ``chunk_size``, never all at once
        (raises FileNotFoundError when there is no such object)."""

    async def size(self, key: str) -> int | None: ...

    async def list(self, prefix: str, start_after: str | None = None) -> list[str]:
        """Keys under ``prefix`` (relative to the sink root), sorted; with ``start_after``,
        only the keys after that one (one S3 LIST from there, not from the start)."""

    async def list_info(self, prefix: str) -> dict[str, ObjectInfo]:
        """Key -> (size, ETag) of every object under ``prefix``, from the listing itself (no
        request per object); ``etag`` is None where the store has none (a local directory)."""

    async def list_dirs(self, prefix: str) -> list[str]:
        """The next path level under ``prefix`` ("commits/" -> ["p0", "p1"]), sorted."""

    async def abort_stale_uploads(self, prefix: str) -> int:
        """Drop unfinished shard uploads under ``prefix`` left by a crashed run."""
