"""The record (schema_version 1): typed, and serialised in exactly one place.

Field names are a contract with readers (DESIGN.md): add fields, never rename.
"""

from __future__ import annotations

import msgspec

SCHEMA_VERSION = 1


class BackendSource(msgspec.Struct, frozen=True):
    forward: str
    backward: str
    full: str


class Validation(msgspec.Struct, frozen=True):
    codegen: bool | None = None
    cuda_ptx: bool | None = None
    cpu_compile: bool | None = None
    executed: bool | None = None
    # Added with the validation tiers (issue 6). How the CPU run ended: ok | nonfinite (ran,
    # some output is NaN/Inf) | crashed | timeout | error | not-compiled; and, per tier that
    # failed ("ptx", "cpu-compile", "execute"), why.
    execution: str | None = None
    errors: dict[str, str] | None = None


class GeneratorInfo(msgspec.Struct, frozen=True):
    name: str
    version: str
    config_hash: str


class Metadata(msgspec.Struct, frozen=True):
    loc: int
    n_params: int
    param_types: list[str]
    features: list[str]
    builtins: list[str]
    complexity: int
    warp_version: str
    generator: GeneratorInfo
    dedup_key_version: str
    origin: str = "synthetic"


class Record(msgspec.Struct, frozen=True):
    id: str
    schema_version: int
    seed: int
    producer: str
    kernel_name: str
    python_source: str
    cpu: BackendSource
    cuda: BackendSource
    validation: Validation
    metadata: Metadata
    ptx: str | None = None
    examples: list[dict] | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


def encode_line(record: Record) -> bytes:
    """One JSONL line (with trailing newline). The only place records become bytes."""
    return _encoder.encode(record) + b"\n"


def decode_line(line: bytes | str) -> Record:
    return _decoder.decode(line)
