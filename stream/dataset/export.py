"""``jitsynth export --layout per-sample``: the older one-JSON-file-per-sample layout.

For users of the prototype's datasets: one file per record and backend,

    DIR/cpu/<id>.json   {python_source, kernel_name, cpp_ir_full, cpp_ir_forward, cpp_ir_backward, metadata}
    DIR/cuda/<id>.json  {python_source, kernel_name, cpp_ir_full, cuda_ir_forward, cuda_ir_backward, metadata}

``cpp_ir_full`` is the whole generated file of that backend (C++ or CUDA, as in the old
layout); ``metadata`` is the record's metadata plus ``backend``, ``id``, ``seed`` and
``producer``. The ``*_backward`` fields are additions (the old layout had none).
Records are read by following the commits, like every reader.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sinks.read.reader import SkippedShards, iter_records

BACKENDS = ("cpu", "cuda")
_PREFIX = {"cpu": "cpp", "cuda": "cuda"}


def per_sample(record: dict[str, Any], backend: str) -> dict[str, Any]:
    """One record as the older layout's sample for ``backend``."""
    src = record[backend]
    prefix = _PREFIX[backend]
    meta = dict(record.get("metadata") or {})
    meta.update(backend=backend, id=record["id"], seed=record["seed"], producer=record["producer"])
    return {
        "python_source": record["python_source"],
        "kernel_name": record["kernel_name"],
        "cpp_ir_full": src["full"],
        f"{prefix}_ir_forward": src["forward"],
        f"{prefix}_ir_backward": src["backward"],
        "metadata": meta,
    }


@dataclass
class ExportResult:
    records: int = 0
    files: dict[str, int] = field(default_factory=dict)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export_per_sample(url: str, to: Path, *, endpoint_url: str | None = None, backends: tuple[str, ...] = BACKENDS,
                      where: str | Callable[[dict[str, Any]], bool] | None = None,
                      limit: int | None = None, split: str | None = None,
                      fractions: Mapping[str, float] | None = None,
                      skipped: SkippedShards | None = None) -> ExportResult:
    result = ExportResult(files={b: 0 for b in backends})
    for backend in backends:
        (to / backend).mkdir(parents=True, exist_ok=True)
    for record in iter_records(url, endpoint_url, where=where, split=split, fractions=fractions, skipped=skipped):
        if limit is not None and result.records >= limit:
            break
        for backend in backends:
            sample = per_sample(record, backend)
            _write(to / backend / f"{record['id']}.json", json.dumps(sample, indent=1).encode() + b"\n")
            result.files[backend] += 1
        result.records += 1
    return result
