"""Kernel sources of a run (``--source``): the random generator, or variants of real kernels.

``variants:SPEC`` names ingested datasets (comma-separated paths or ``s3://`` URLs, e.g. the
output of ``jitsynth ingest warp.examples``), or packages and paths of Python code to ingest
first (``variants:warp.examples``: ``jitsynth ingest`` into the run's state directory, once;
a rerun finds that dataset complete). Their committed records are read here, in the
main process (``synth/`` knows nothing of storage), and handed to every pool worker once,
with its initialiser, inside a ``synth.variants.source.VariantSource``; the worker asks it for each
seed's kernel (``synth.worker.kernel_for``). The run's config hash is the source's, which
covers the exact parent set and the ``[variants]`` knobs, so resume, shards and commits work
as for any run and a run never resumes into a dataset built from other parents.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import structlog

from stream.config import ConfigError

log = structlog.get_logger("jitsynth.sources")


def _is_dataset(item: str) -> bool:
    return item.startswith("s3://") or os.path.isdir(os.path.join(item.removeprefix("file://"), "commits"))


def ingested(item: str, state_dir: Path, workers: int) -> str:
    """The dataset of ``item``: itself when it is one, else the ingest of the package or path it
    names (``jitsynth ingest``, as a user would run it) into ``state_dir/parents``."""
    if _is_dataset(item):
        return item
    from synth.ingest.discover import DiscoveryError, resolve_target

    try:
        resolve_target(item)
    except DiscoveryError:
        raise ConfigError(f"--source variants:{item}: no dataset at {item} and no package or path of that name; "
                          f"ingest real kernels first, e.g. `jitsynth ingest warp.examples --out DIR`") from None
    name = re.sub(r"[^A-Za-z0-9._-]", "_", item.strip("/"))
    out = state_dir / "parents" / name
    log.info("ingesting parents first", what=item, out=str(out))
    proc = subprocess.run([sys.executable, "-m", "stream.cli.app", "ingest", item, "--out", str(out), "--workers",
                           str(workers), "--progress", "off", "--state-dir", str(state_dir / "parents-state" / name)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["exit status " + str(proc.returncode)])[-1]
        raise ConfigError(f"--source variants:{item}: ingesting it failed: {last}")
    return str(out)


def read_parents(urls: list[str], endpoint_url: str | None) -> list[Any]:
    """The parent corpus: every usable committed record of the datasets ``urls``, in reading order."""
    from sinks.read.reader import iter_records
    from synth.variants.source import parent_from_record

    parents = []
    for url in urls:
        if not _is_dataset(url):
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
    from synth.variants.source import VariantSource

    datasets = [ingested(item, settings.resolved_state_dir(), settings.workers) for item in settings.source_spec()]
    return VariantSource(read_parents(datasets, settings.endpoint_url), settings.variant_config(), settings.source)


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
