"""Shard writer: JSONL lines in, one zstd frame (content checksum on) out, streamed to a
ShardUpload in parts so memory does not grow with the shard."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import zstandard

from sinks.base import ShardUpload

DEFAULT_LEVEL = 9


@dataclass(frozen=True, slots=True)
class StoredShard:
    key: str
    count: int
    raw_bytes: int
    bytes: int  # stored (compressed) size
    sha256: str


class ShardWriter:
    def __init__(self, upload: ShardUpload, key: str, part_size: int, level: int = DEFAULT_LEVEL) -> None:
        self._upload = upload
        self.key = key
        self._part_size = part_size
        self._compressor = zstandard.ZstdCompressor(level=level, write_checksum=True).compressobj()
        self._pending = bytearray()
        self._sha = hashlib.sha256()
        self.count = 0
        self.raw_bytes = 0
        self.stored_bytes = 0

    async def add(self, line: bytes) -> None:
        self.count += 1
        self.raw_bytes += len(line)
        self._pending += self._compressor.compress(line)
        if len(self._pending) >= self._part_size:
            await self._flush_part()

    async def _flush_part(self) -> None:
        part = bytes(self._pending)
        self._pending.clear()
        self._sha.update(part)
        self.stored_bytes += len(part)
        await self._upload.write(part)

    async def finish(self) -> StoredShard:
        """End the zstd frame, store the remainder and make the shard durable."""
        self._pending += self._compressor.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        await self._flush_part()
        await self._upload.commit()
        return StoredShard(self.key, self.count, self.raw_bytes, self.stored_bytes, self._sha.hexdigest())

    async def abort(self) -> None:
        await self._upload.abort()
