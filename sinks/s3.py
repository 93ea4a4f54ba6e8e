"""S3Sink: shards and commits in S3-compatible object storage (AWS, MinIO, SeaweedFS).

Shards stream as multipart uploads (parts >= 5 MiB, the S3 minimum), so memory does
not grow with shard size; a shard smaller than one part is a single PUT. Commits use a
conditional create (``If-None-Match: *``). Transient failures (connection refused or
reset, timeouts, 5xx, throttling) are retried with capped exponential backoff and
jitter until ``retry_deadline`` passes; permanent ones (credentials, missing bucket,
access denied) raise ``SinkPermanentError`` at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aioboto3
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from sinks.base import ObjectInfo, SinkConfigError, SinkError, SinkPermanentError

log = structlog.get_logger("jitsynth.s3")
T = TypeVar("T")
PART_SIZE = 8 << 20
MAX_POOL = 64  # HTTP connections per client

_PERMANENT_CODES = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "NoSuchBucket",
    "AllAccessDisabled", "InvalidBucketName", "AuthorizationHeaderMalformed", "InvalidToken",
    "ExpiredToken", "Forbidden", "403", "AccountProblem",
}
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                    "ServiceUnavailable", "RequestTimeTooSkewed", "503", "500", "502", "504"}


def split_url(url: str) -> tuple[str, str]:
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in _PERMANENT_CODES:
            return False
        return code in _TRANSIENT_CODES or _status(exc) >= 500 or _status(exc) == 429
    if isinstance(exc, NoCredentialsError):
        return False
    return isinstance(exc, (BotoCoreError, OSError, TimeoutError))


class S3Sink:
    min_part_size = PART_SIZE

    def __init__(self, url: str, endpoint_url: str | None = None, region: str | None = None,
                 retry_deadline: float = 900.0, max_backoff: float = 20.0) -> None:
        self.url = url
        self.bucket, self.prefix = split_url(url)
        self.endpoint_url = endpoint_url
        self.region = region
        self.retry_deadline = retry_deadline
        self.max_backoff = max_backoff
        self.retries = 0  # transient failures retried, exported as a metric
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def open(self) -> None:
        core = get_session()
        # Timestamps stay strings: nothing here reads one, and botocore's dateutil parse of each
        # listed object's LastModified was ~40% of the client CPU of a 10,000-object LIST.
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
        session = aioboto3.Session(botocore_session=core)
        # Readers keep up to ~64 requests in flight (sinks.read.shardio); botocore's default pool is 10.
        config = AioConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60,
                           s3={"addressing_style": "path"}, max_pool_connections=MAX_POOL)
        self._client = await self._stack.enter_async_context(
            session.client("s3", endpoint_url=self.endpoint_url, region_name=self.region or "us-east-1", config=config))
        try:
            await self._check_bucket()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _check_bucket(self) -> None:
        """Fail fast at start-up, without the long retry loop: a wrong endpoint, bucket or
        key is a configuration mistake the user fixes, not an outage to wait out."""
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _code(exc) or str(_status(exc))
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise SinkConfigError(f"bucket {self.bucket!r} does not exist at {self._where()}: create it or "
                                      "fix --out") from None
            if code in ("403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
                raise SinkConfigError(f"access to bucket {self.bucket!r} at {self._where()} denied ({code}): check "
                                      "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy") from None
            raise SinkConfigError(f"S3 at {self._where()} answered {code} for bucket {self.bucket!r}") from None
        except NoCredentialsError:
            raise SinkConfigError("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                                  "(or AWS_PROFILE)") from None
        except (BotoCoreError, OSError) as exc:
            raise SinkConfigError(f"cannot reach S3 at {self._where()} ({type(exc).__name__}): is the server "
                                  "running? check --endpoint-url / AWS_ENDPOINT_URL") from None

    def _where(self) -> str:
        return self.endpoint_url or "the default AWS endpoint"

    async def close(self) -> None:
        await self._stack.aclose()

    def _explain(self, what: str, exc: BaseException) -> str:
        if isinstance(exc, ClientError):
            code = _code(exc) or str(_status(exc))
            hint = {
                "NoSuchBucket": "create the bucket or fix --out",
                "404": "the bucket does not exist: create it or fix --out",
                "InvalidAccessKeyId": "check AWS_ACCESS_KEY_ID",
                "SignatureDoesNotMatch": "check AWS_SECRET_ACCESS_KEY",
                "403": "check the credentials and the bucket policy",
                "AccessDenied": "check the credentials and the bucket policy",
            }.get(code, "see the S3 error above")
            return f"S3 {what} on s3://{self.bucket}/{self.prefix}: {code}: {hint}"
        if isinstance(exc, NoCredentialsError):
            return "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        return f"S3 {what} on s3://{self.bucket}/{self.prefix} failed: {exc}"

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one S3 operation with retries for transient failures."""

        def before_sleep(state: Any) -> None:
            self.retries += 1
            log.warning("s3 retry", op=what, attempt=state.attempt_number,
                        error=str(state.outcome.exception())[:200])

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(is_transient),
                wait=wait_exponential_jitter(multiplier=0.2, max=self.max_backoff, jitter=0.5),
                stop=stop_after_delay(self.retry_deadline),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    return await fn()
        except ClientError as exc:
            if is_transient(exc):
                raise SinkError(self._explain(what, exc)) from exc
            raise SinkPermanentError(self._explain(what, exc)) from exc
        except (BotoCoreError, OSError, TimeoutError) as exc:
            if isinstance(exc, NoCredentialsError):
                raise SinkPermanentError(self._explain(what, exc)) from exc
            raise SinkError(self._explain(what, exc)) from exc
        raise AssertionError("unreachable")

    async def open_shard(self, key: str) -> _S3Upload:
        return _S3Upload(self, self._key(key))

    async def put(self, key: str, data: bytes) -> None:
        await self.call("put", lambda: self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data))

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        async def attempt() -> bool:
            try:
                await self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
            except ClientError as exc:
                if _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict") or _status(exc) in (409, 412):
                    return False
                raise
            return True

        return await self.call("conditional put", attempt)

    async def get(self, key: str) -> bytes | None:
        async def attempt() -> bytes | None:
            try:
                response = await self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            async with response["Body"] as body:
                return await body.read()

        return await self.call("get", attempt)

    async def size(self, key: str) -> int | None:
        async def attempt() -> int | None:
            try:
                response = await self._client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
            return int(response["ContentLength"])

        return await self.call("head", attempt)

    async def stream(self, key: str, chunk_size: int = 1 << 18):  # noqa: ANN201 - AsyncIterator[bytes]
        """Chunks of one GET body; a transient failure mid-body resumes with a ranged GET
        from the first byte not yet handed out (the retry budget is the sink's)."""
        offset = 0
        while True:
            async def attempt() -> Any:
                extra = {"Range": f"bytes={offset}-"} if offset else {}
                try:
                    return await self._client.get_object(Bucket=self.bucket, Key=self._key(key), **extra)
                except ClientError as exc:
                    if _code(exc) in ("NoSuchKey", "404"):
                        return None  # not raised in here: FileNotFoundError is an OSError, which is retried
                    raise

            response = await self.call("get", attempt)
            if response is None:
                raise FileNotFoundError(f"{key} not found in s3://{self.bucket}/{self.prefix}")
            try:
                async with response["Body"] as body:
                    async for chunk in body.iter_chunks(chunk_size):
                        offset += len(chunk)
                        yield chunk
                return
            except Exception as exc:  # noqa: BLE001 - only transient failures are retried
                if not is_transient(exc):
                    raise
                self.retries += 1
                log.warning("s3 stream interrupted, resuming", key=key, offset=offset, error=str(exc)[:200])

    async def list(self, prefix: str, start_after: str | None = None) -> list[str]:
        async def attempt() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            strip = len(self.prefix) + 1 if self.prefix else 0
            extra = {"StartAfter": self._key(start_after)} if start_after else {}
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix), **extra):
                keys += [obj["Key"][strip:] for obj in page.get("Contents", [])]
            return sorted(keys)

        return await self.call("list", attempt)

    async def list_info(self, prefix: str) -> dict[str, ObjectInfo]:
        """Key -> (size, ETag) from LIST pages (1,000 objects a request, no HEAD per object)."""
        async def attempt() -> dict[str, ObjectInfo]:
            found: dict[str, ObjectInfo] = {}
            paginator = self._client.get_paginator("list_objects_v2")
            strip = len(self.prefix) + 1 if self.prefix else 0
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for obj in page.get("Contents", []):
                    found[obj["Key"][strip:]] = ObjectInfo(int(obj["Size"]), str(obj.get("ETag", "")).strip('"') or None)
            return dict(sorted(found.items()))

        return await self.call("list", attempt)

    async def list_dirs(self, prefix: str) -> list[str]:
        async def attempt() -> list[str]:
            names: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            base = self._key(prefix)
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=base, Delimiter="/"):
                names += [p["Prefix"][len(base):].rstrip("/") for p in page.get("CommonPrefixes", [])]
            return sorted(names)

        return await self.call("list", attempt)

    async def abort_stale_uploads(self, prefix: str) -> int:
        async def attempt() -> int:
            response = await self._client.list_multipart_uploads(Bucket=self.bucket, Prefix=self._key(prefix))
            uploads = response.get("Uploads", [])
            for upload in uploads:
                await self._client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                          UploadId=upload["UploadId"])
            return len(uploads)

        return await self.call("abort stale uploads", attempt)


class _S3Upload:
    """A shard upload: a single PUT if it fits one part, a multipart upload otherwise."""

    def __init__(self, sink: S3Sink, key: str) -> None:
        self.sink = sink
        self.key = key
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self._held: bytes | None = None  # first chunk, kept until we know whether a 2nd comes

    async def _start(self) -> None:
        c, b = self.sink._client, self.sink.bucket
        response = await self.sink.call("start multipart", lambda: c.create_multipart_upload(Bucket=b, Key=self.key))
        self.upload_id = response["UploadId"]

    async def _part(self, data: bytes) -> None:
        number = len(self.parts) + 1
        c, b = self.sink._client, self.sink.bucket
        response = await self.sink.call("upload part", lambda: c.upload_part(
            Bucket=b, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data))
        self.parts.append({"PartNumber": number, "ETag": response["ETag"]})

    async def write(self, data: bytes) -> None:
        if self.upload_id is None and self._held is None:
            self._held = data
            return
        if self.upload_id is None:
            await self._start()
            held, self._held = self._held, None
            await self._part(held)
        await self._part(data)

    async def commit(self) -> None:
        c, b = self.sink._client, self.sink.bucket
        if self.upload_id is None:
            body = self._held or b""
            await self.sink.call("put shard", lambda: c.put_object(Bucket=b, Key=self.key, Body=body))
            return
        parts = {"Parts": self.parts}
        await self.sink.call("complete multipart", lambda: c.complete_multipart_upload(
            Bucket=b, Key=self.key, UploadId=self.upload_id, MultipartUpload=parts))

    async def abort(self) -> None:
        if self.upload_id is not None:
            c, b, uid = self.sink._client, self.sink.bucket, self.upload_id
            with contextlib.suppress(Exception):
                await c.abort_multipart_upload(Bucket=b, Key=self.key, UploadId=uid)
