"""Deterministic train / validation / test splits without near-duplicate leakage.

A record's split is a pure function of its dedup key (the record ``id``, a digest of
the kernel's canonical form): a keyed BLAKE2b hash of the key mapped to [0, 1) and cut
at the cumulative fractions. So every copy of a kernel lands in one split, whichever
producer committed it, and the split never changes when the dataset grows. Members of
a near-duplicate cluster (``sinks.read.nearfile``) take their representative's split, so a
cluster stays whole inside one split: no validation kernel has a near-twin in train.

``split_of(key, fractions)`` and ``Splitter`` are pure (training readers call them);
``load_splitter(sink, fractions)`` adds the cluster file of a dataset.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from sinks.read.nearfile import load_clusters

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.98, "validation": 0.01, "test": 0.01}
_PERSON = b"jitsynth-split"  # keyed hash: split positions are independent of how ids were made


class SplitError(ValueError):
    """Fractions or a split name that cannot be used (a one-line message for the CLI)."""


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    out = {str(k): float(v) for k, v in fractions.items()}
    if not out or any(not math.isfinite(v) or v < 0 for v in out.values()) or not math.isclose(sum(out.values()), 1.0,
                                                                                               abs_tol=1e-6):
        raise SplitError(f"split fractions {out} must be non-negative and sum to 1 (e.g. 98/1/1)")
    return out


def parse_fractions(text: str) -> dict[str, float]:
    """``98/1/1`` or ``0.9/0.05/0.05`` (train/validation/test, scaled to sum 1), or named:
    ``train=0.9,validation=0.05,test=0.05``."""
    try:
        if "=" in text:
            pairs = [part.split("=", 1) for part in re.split(r"[,\s]+", text.strip()) if part]
            raw = {name.strip(): float(value) for name, value in pairs}
        else:
            values = [float(v) for v in text.strip().split("/")]
            if len(values) != len(SPLITS):
                raise ValueError
            raw = dict(zip(SPLITS, values, strict=True))
    except ValueError:
        raise SplitError(f"--split-fractions {text!r}: use train/validation/test like 98/1/1, "
                         "or names like train=0.9,validation=0.05,test=0.05") from None
    total = sum(raw.values())
    if total <= 0 or any(v < 0 for v in raw.values()):
        raise SplitError(f"--split-fractions {text!r}: fractions must be non-negative with a positive sum")
    return check_fractions({k: v / total for k, v in raw.items()})


def unit_interval(key: str, salt: str = "") -> float:
    """The key's position in [0, 1): 64 bits of a keyed BLAKE2b of ``salt`` + key."""
    digest = hashlib.blake2b(f"{salt}\0{key}".encode(), digest_size=8, person=_PERSON).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def split_of(key: str, fractions: Mapping[str, float] = DEFAULT_FRACTIONS, salt: str = "") -> str:
    """The split of a dedup key (a record id) under ``fractions`` (in their order)."""
    u = unit_interval(key, salt)
    cumulative = 0.0
    names = list(fractions)
    for name in names:
        cumulative += fractions[name]
        if u < cumulative:
            return name
    return names[-1]  # u within rounding of 1.0


@dataclass(frozen=True)
class Splitter:
    """Splits of record ids: a near-duplicate member goes where its representative goes."""

    fractions: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FRACTIONS))
    representative: Mapping[str, str] = field(default_factory=dict)
    salt: str = ""

    def split(self, record_id: str) -> str:
        return split_of(self.representative.get(record_id, record_id), self.fractions, self.salt)

    def check(self, name: str) -> str:
        if name not in self.fractions:
            raise SplitError(f"--split {name!r}: not one of {', '.join(self.fractions)}")
        return name


async def load_splitter(sink, fractions: Mapping[str, float] | None = None,  # noqa: ANN001 - any Sink
                        salt: str = "") -> Splitter:
    """The splitter of ``sink``'s dataset: ``fractions`` plus its near-duplicate clusters."""
    return Splitter(check_fractions(fractions or DEFAULT_FRACTIONS), (await load_clusters(sink)).representative, salt)


class _Id(msgspec.Struct):
    id: str


_decode_id = msgspec.json.Decoder(_Id).decode


def record_id(line: bytes) -> str:
    """The ``id`` of a JSONL record line, without decoding the rest of it."""
    return _decode_id(line).id


def split_options(split: str | None, fractions_text: str | None) -> dict[str, float]:
    """The fractions of ``--split-fractions`` (default 98/1/1), with ``--split`` checked
    against their names; ``SplitError`` (one line) otherwise. For the CLI commands."""
    fractions = parse_fractions(fractions_text) if fractions_text else dict(DEFAULT_FRACTIONS)
    if split is not None:
        Splitter(fractions).check(split)
    return fractions


def splitter_for(url: str, endpoint_url: str | None = None, fractions: Mapping[str, float] | None = None,
                 salt: str = "") -> Splitter:
    """``load_splitter`` for a dataset URL, from synchronous code (training readers, export)."""
    import anyio

    from sinks.url import opened_sink

    async def load() -> Splitter:
        async with opened_sink(url, endpoint_url, create=False) as sink:
            return await load_splitter(sink, fractions, salt)

    return anyio.run(load)
