"""LocalSink: a dataset in a local directory, the embedded default (no server).

Durability: shards go to a temp file that is fsync'd and renamed; commits are written
to a temp file, fsync'd, then hard-linked to their final name. ``link`` fails if the
name exists, which gives the same exclusive create as ``O_EXCL`` but never leaves a
half-written commit visible after a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path

import anyio

from sinks.base import ObjectInfo, SinkConfigError, SinkError, SinkPermanentError

TMP_MARK = ".tmp-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _wrap_os_error(exc: OSError, what: str) -> SinkError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                     errno.ENOTDIR, errno.EEXIST):
        return SinkPermanentError(f"{what}: {exc.strerror} ({exc.filename or ''}); free space or fix permissions, then rerun the same command to resume")
    return SinkError(f"{what}: {exc}")


class _LocalUpload:
    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(f"{final.name}{TMP_MARK}{uuid.uuid4().hex[:12]}")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.tmp, "wb")  # noqa: SIM115 - closed in commit/abort

    async def write(self, data: bytes) -> None:
        try:
            await anyio.to_thread.run_sync(self.fh.write, data)
        except OSError as exc:
            await self.abort()
            raise _wrap_os_error(exc, f"writing {self.final}") from exc

    def _commit_sync(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.final)
        _fsync_dir(self.final.parent)

    async def commit(self) -> None:
        try:
            await anyio.to_thread.run_sync(self._commit_sync)
        except OSError as exc:
            await self.abort()
            raise _wrap_os_error(exc, f"storing {self.final}") from exc

    async def abort(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


class LocalSink:
    min_part_size = 1 << 20

    def __init__(self, root: str | os.PathLike[str], create: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)
        self.create = create

    def _path(self, key: str) -> Path:
        return self.root / key

    async def open(self) -> None:
        if not self.create and not self.root.is_dir():
            # Exit 1 like an S3 prefix with no commits: there is nothing to read here.
            raise SinkPermanentError(f"no dataset at {self.root}: the directory does not exist (check the path)")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkConfigError(f"cannot create dataset directory {self.root}: {exc.strerror}; fix --out") from None
        if not os.access(self.root, os.W_OK):
            raise SinkConfigError(f"dataset directory {self.root} is not writable; fix --out or its permissions")

    async def close(self) -> None:
        return None

    async def open_shard(self, key: str) -> _LocalUpload:
        try:
            return _LocalUpload(self._path(key))
        except OSError as exc:
            raise _wrap_os_error(exc, f"opening shard {key}") from exc

    def _write_tmp(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}{TMP_MARK}{uuid.uuid4().hex[:12]}")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return tmp

    def _put_sync(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = self._write_tmp(path, data)
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    async def put(self, key: str, data: bytes) -> None:
        try:
            await anyio.to_thread.run_sync(self._put_sync, key, data)
        except OSError as exc:
            raise _wrap_os_error(exc, f"writing {key}") from exc

    def _put_if_absent_sync(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        tmp = self._write_tmp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return True

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            return await anyio.to_thread.run_sync(self._put_if_absent_sync, key, data)
        except OSError as exc:
            raise _wrap_os_error(exc, f"writing {key}") from exc

    async def get(self, key: str) -> bytes | None:
        try:
            return await anyio.Path(self._path(key)).read_bytes()
        except FileNotFoundError:
            return None

    async def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    async def stream(self, key: str, chunk_size: int = 1 << 18):  # noqa: ANN201 - AsyncIterator[bytes]
        try:
            f = await anyio.open_file(self._path(key), "rb")
        except FileNotFoundError:
            raise FileNotFoundError(f"{key} not found in {self.root}") from None
        async with f:
            while chunk := await f.read(chunk_size):
                yield chunk

    async def list(self, prefix: str, start_after: str | None = None) -> list[str]:
        base = self._path(prefix)
        if not base.exists():
            return []
        keys = [p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file()]
        return sorted(k for k in keys if TMP_MARK not in k.rsplit("/", 1)[-1] and (start_after is None or k > start_after))

    async def list_info(self, prefix: str) -> dict[str, ObjectInfo]:
        """Sizes from the file system; a directory has no ETags (readers check content there)."""
        out = {}
        for key in await self.list(prefix):
            with contextlib.suppress(FileNotFoundError):
                out[key] = ObjectInfo(self._path(key).stat().st_size, None)
        return out

    async def list_dirs(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    async def abort_stale_uploads(self, prefix: str) -> int:
        base = self._path(prefix)
        stale = [p for p in base.rglob(f"*{TMP_MARK}*")] if base.exists() else []
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def local_path(self, key: str) -> Path:
        """For readers that can open files directly (pandas, DuckDB)."""
        return self._path(key)
