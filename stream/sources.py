"""Kernel sources of a run (``--source``): the random generator, or variants of real kernels.

``variants:SPEC`` names ingested datasets (comma-separated paths or ``s3://`` URLs, e.g. the
output of ``jitsynth ingest warp.examples``). Their committed records are read here, in the
main process (``synth/`` knows nothing of storage), and handed to every pool worker once,
with its initialiser, inside a ``synth.variants.VariantSource``; the worker asks it for each
seed's kernel (``synth.worker.kernel_for``). The run's config hash is the source's, which
covers the exact parent set and the ``[variants]`` knobs, so resume, shards and commits work
as for any run and a run never resumes into a dataset built from other parents.
"""

from __future__ import annotations

import os
from typing import Any

import structlog

from stream.config import ConfigError

log = structlog.get_logger("jitsynth.sources")


def read_parents(urls: list[str], endpoint_url: str | None) -> list[Any]:
    """The parent corpus: every usable committed record of ``urls``, in reading order."""
    from sinks.reader import iter_records
    from synth.variants import parent_from_record

    parents = []
    for url in urls:
        if not url.startswith("s3://") and not os.path.isdir(url.removeprefix("file://")):
            raise ConfigError(f"--source variants:{url}: no dataset at {url}; ingest real kernels first, "
                              f"e.g. `jitsynth ingest warp.examples --out {url}`")
        before = len(parents)
        try:
            for record in iter_records(url, endpoint_url):
                parent = parent_from_record(record)
                if parent is not None:
                    parents.append(parent)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a usage problem here: say which URL
            raise ConfigError(f"--source variants:{url}: {type(exc).__name__}: {exc}") from None
        if len(parents) == before:
            raise ConfigError(f"--source variants:{url}: no committed records there; ingest real kernels first, "
                              f"e.g. `jitsynth ingest warp.examples --out {url}`")
        log.info("parent corpus read", url=url, kernels=len(parents) - before)
    return parents


def kernel_source(settings: Any) -> Any:
    """The worker's kernel source for ``settings.source`` (None: the generator)."""
    if settings.source == "generator":
        return None
    from synth.variants import VariantSource

    return VariantSource(read_parents(settings.source_spec(), settings.endpoint_url), settings.variant_config(),
                         settings.source)


def work_spec(settings: Any) -> Any:
    """What ``stream.pipeline.Producer`` runs for ``settings.source`` (None: its default, the generator)."""
    source = kernel_source(settings)
    if source is None:
        return None
    from stream.pipeline import WorkSpec
    from synth.worker import WorkerSettings, init_worker, process_batch

    worker = WorkerSettings(settings.generator_config(), settings.producer, tuple(settings.validate_tiers),
                            source=source)
    return WorkSpec(process_batch, init_worker, (worker,), source.config_hash)
