"""S3 storage options under which Hugging Face ``datasets`` can stream zstd shards.

The failure: ``load_dataset("json", data_files=[s3 URLs of *.zst], streaming=True,
storage_options=...)`` stops at the first file with ``TypeError: AioSession._create_client()
got an unexpected keyword argument 'requote_redirect_url'``. The cause is in ``datasets``,
not in an s3fs/aiobotocore pairing: in streaming mode a ``.zst`` file is opened through
datasets' compression filesystem (``zstd://::s3://...``), whose constructor
(``datasets/filesystems/compression.py``) adds aiohttp ``ClientSession`` options,
``requote_redirect_url`` and ``trust_env`` (meant for HTTP, datasets PR #5459), to the
``client_kwargs`` of *whatever* filesystem is underneath. s3fs hands ``client_kwargs`` to
``AioSession.create_client`` unchanged, as botocore client arguments (``s3fs/core.py``,
``set_session``), and there is no such argument. datasets has added the two keys since PR
#5459 (2023) and still does in 5.2 (upstream: huggingface/datasets#7295, open); an
s3fs/aiobotocore version pin cannot help, as neither is at fault. The non-streaming path
(files downloaded first) never takes this route.

The fix stays inside s3fs's own options: s3fs accepts ``session=`` (the aiobotocore
session it creates clients from). ``storage_options()`` passes one whose
``create_client`` drops exactly those two HTTP-session keys (they mean nothing to an S3
client) and passes everything else unchanged. It pickles as a fresh session, so data
loader workers started by spawn get one too. No global registration, no patching.
"""

from __future__ import annotations

import os
from typing import Any

from aiobotocore.session import AioSession

HTTP_SESSION_KEYS = frozenset({"requote_redirect_url", "trust_env"})


class S3ClientSession(AioSession):
    """An aiobotocore session that ignores aiohttp ``ClientSession`` options in client kwargs."""

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        return super().create_client(*args, **{k: v for k, v in kwargs.items() if k not in HTTP_SESSION_KEYS})

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return type(self), ()  # sessions hold no state worth shipping; a worker builds its own


def storage_options(endpoint_url: str | None = None, key: str | None = None, secret: str | None = None,
                    region: str | None = None) -> dict[str, Any]:
    """s3fs storage options for ``datasets``, pandas, DuckDB-through-fsspec: the usual
    ``AWS_*`` variables unless given, and a session that streaming ``datasets`` can use.
    A fresh dict each call (``datasets`` adds keys to the one it is given)."""
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    client_kwargs = {k: v for k, v in (("endpoint_url", endpoint_url), ("region_name", region)) if v}
    opts: dict[str, Any] = {"session": S3ClientSession(), "client_kwargs": client_kwargs}
    key, secret = key or os.environ.get("AWS_ACCESS_KEY_ID"), secret or os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        opts.update(key=key, secret=secret)
    return opts
