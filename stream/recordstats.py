"""What ``jitsynth stats`` takes from each record, and a commit's summary of it.

``record_facts`` is the one place a record's line is turned into the numbers and names
``stats`` aggregates (features, builtins, parameter types, generator, Warp version,
validation, LOC, complexity, sizes). A pool worker calls it on each record it produces
(``stream/framing.py``), the producer's main process folds the facts of a shard's kept
records into ``commit_summary`` when it commits, and the commit stores that summary
(``Commit.stats``), so ``stats`` merges summaries instead of fetching every shard. Reading
the records themselves goes through the same ``record_facts``, which is why the two paths
give the same figures: counters keep first-seen order (merging commits in order replays
it), and distributions keep every value, so quantiles stay exact. Those values are stored
as base64 of little-endian int32 columns (``pack``): ~60 bytes per record in the commit and in
memory, where JSON lists of ints would hold ~400 bytes per record in a reader's memory.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from collections import Counter
from typing import Any, NamedTuple

import msgspec

VALIDATION_KEYS = ("codegen", "cuda_ptx", "cpu_compile", "executed")
SIZE_KEYS = ("record", "python_source", "cpu.forward", "cpu.backward", "cpu.full", "cuda.forward", "cuda.backward",
             "cuda.full")
VALUE_KEYS = ("loc", "complexity", "n_params", *SIZE_KEYS)  # per-record numbers, in this order in RecordFacts
COUNTER_KEYS = ("features", "builtins", "param_types", "generators", "warp_versions")
SUMMARY_FORMAT = 1


class _Backend(msgspec.Struct, frozen=True):
    forward: str = ""
    backward: str = ""
    full: str = ""


class _Generator(msgspec.Struct, frozen=True):
    name: str = ""
    version: str = ""
    config_hash: str = ""


class _Meta(msgspec.Struct, frozen=True):
    loc: int = 0
    n_params: int = 0
    param_types: list[str] = []
    features: list[str] = []
    builtins: list[str] = []
    complexity: int = 0
    warp_version: str = ""
    generator: _Generator = _Generator()


class _Record(msgspec.Struct):
    python_source: str = ""
    cpu: _Backend = _Backend()
    cuda: _Backend = _Backend()
    validation: dict[str, bool | None] = {}
    metadata: _Meta = _Meta()


_decode = msgspec.json.Decoder(_Record).decode


class RecordFacts(NamedTuple):
    """One record as ``stats`` sees it (a tuple: it crosses the pool's pipe per record)."""

    features: list[str]
    builtins: list[str]
    param_types: list[str]
    generator: str
    warp_version: str
    validation: tuple[str, ...]  # "pass" / "fail" / "null" per VALIDATION_KEYS
    values: tuple[int, ...]  # per VALUE_KEYS


def _tri(value: bool | None) -> str:
    return "null" if value is None else ("pass" if value else "fail")


def record_facts(line: bytes) -> RecordFacts:
    rec = _decode(line)
    meta = rec.metadata
    gen = meta.generator
    return RecordFacts(
        meta.features, meta.builtins, meta.param_types, f"{gen.name} {gen.version} ({gen.config_hash})",
        meta.warp_version, tuple(_tri(rec.validation.get(k)) for k in VALIDATION_KEYS),
        (meta.loc, meta.complexity, meta.n_params, len(line), len(rec.python_source),
         len(rec.cpu.forward), len(rec.cpu.backward), len(rec.cpu.full),
         len(rec.cuda.forward), len(rec.cuda.backward), len(rec.cuda.full)))


def commit_summary(facts: list[RecordFacts]) -> dict[str, Any]:
    """The summary a commit stores of its records' facts (in record order)."""
    return summary_of([partial_of(facts)])


class Partial(NamedTuple):
    """The fold of a run of records' facts, made in the pool worker that produced them (one per
    batch, or per rebuilt segment), so the producer's main process unpickles and merges one
    per batch instead of one ``RecordFacts`` per record (issue 18). ``summary_of`` merges the
    partials of a shard, in order, into its commit's summary."""

    records: int
    complete: bool  # False: a record's facts were unreadable, so its commit gets no summary
    counters: tuple[dict[str, int], ...]  # per COUNTER_KEYS, first-seen order
    validation: tuple[dict[str, int], ...]  # per VALIDATION_KEYS
    values: tuple[bytes, ...]  # per VALUE_KEYS: native int32 columns


def partial_of(facts: list[RecordFacts | None]) -> Partial:
    known = [f for f in facts if f is not None]
    counters: dict[str, Counter] = {k: Counter() for k in COUNTER_KEYS}
    validation: dict[str, Counter] = {k: Counter() for k in VALIDATION_KEYS}
    for f in known:
        counters["features"].update(f.features)
        counters["builtins"].update(f.builtins)
        counters["param_types"].update(f.param_types)
        counters["generators"][f.generator] += 1
        counters["warp_versions"][f.warp_version] += 1
        for key, tri in zip(VALIDATION_KEYS, f.validation, strict=True):
            validation[key][tri] += 1
    by_key = list(zip(*(f.values for f in known), strict=True)) or [()] * len(VALUE_KEYS)
    return Partial(len(facts), len(known) == len(facts), tuple(dict(counters[k]) for k in COUNTER_KEYS),
                   tuple(dict(validation[k]) for k in VALIDATION_KEYS),
                   tuple(array("i", col).tobytes() for col in by_key))


def summary_of(partials: list[Partial]) -> dict[str, Any] | None:
    """A commit's summary from its partials in record order (None if a record's facts were unreadable)."""
    if not all(p.complete for p in partials):
        return None
    counters: dict[str, Counter] = {k: Counter() for k in COUNTER_KEYS}
    validation: dict[str, Counter] = {k: Counter() for k in VALIDATION_KEYS}
    values = [array("i") for _ in VALUE_KEYS]
    for p in partials:
        for key, part in zip(COUNTER_KEYS, p.counters, strict=True):
            counters[key].update(part)
        for key, part in zip(VALIDATION_KEYS, p.validation, strict=True):
            validation[key].update(part)
        for column, raw in zip(values, p.values, strict=True):
            column.frombytes(raw)
    return {"format": SUMMARY_FORMAT, "records": sum(p.records for p in partials),
            **{k: dict(c) for k, c in counters.items()},
            "validation": {k: dict(c) for k, c in validation.items()},
            "values": {k: pack(col) for k, col in zip(VALUE_KEYS, values, strict=True)}}


def pack(values: tuple[int, ...] | list[int] | array) -> str:
    """Non-negative per-record numbers (sizes, counts) as base64 of little-endian int32."""
    column = array("i", values)
    if sys.byteorder == "big":
        column.byteswap()
    return base64.b64encode(column.tobytes()).decode()


def unpack(text: str) -> array:
    column = array("i", binascii.a2b_base64(text, strict_mode=True))  # raises ValueError on any stray byte
    if sys.byteorder == "big":
        column.byteswap()
    return column


def columns(summary: Any, count: int) -> list[array] | None:
    """The per-record columns (in VALUE_KEYS order) of a summary this code can merge, of
    exactly ``count`` records; None for any other (``stats`` then reads the shard)."""
    try:
        if summary["format"] != SUMMARY_FORMAT or summary["records"] != count \
                or not all(isinstance(summary[k], dict) for k in (*COUNTER_KEYS, "validation")):
            return None
        found = [unpack(summary["values"][k]) for k in VALUE_KEYS]
    except (KeyError, TypeError, ValueError):
        return None
    return found if all(len(c) == count for c in found) else None
