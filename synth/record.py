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


class SourceInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """Provenance of a real (ingested) kernel: ``jitsynth ingest`` (issue 10)."""

    package: str | None  # dotted package name (or the directory ingested)
    version: str | None  # of the installed distribution, when there is one
    path: str  # the file, relative to the import root (so it starts with the package's path)
    line: int  # of the ``def``
    license: str | None = None  # SPDX identifier from the file header, else the distribution's
    qualname: str | None = None
    loader: str = "import"  # "lenient": the import failed; the file's definitions were run alone
    stubbed: list[str] = []  # missing third-party modules replaced by stubs (lenient loader)
    instances: int = 1  # kernels the module created from this definition (a factory); the first is used
    block_dim: int | None = None  # the launch's block size, when the file launches the kernel with one
    cpu_block_dim: int | None = None  # set when the CPU code needed Warp's CPU blocks (else block size 1)
    hoisted: bool = False  # defined inside a function but captures nothing: defined at module scope


class VariantInfo(msgspec.Struct, frozen=True):
    """How a variant (``--source variants:SPEC``, issue 15) came from its real parent."""

    parent: str  # the parent record's id
    parent_kernel: str
    mutations: list[str]  # each accepted mutation, in order ("builtin: wp.sin -> wp.cos")
    rejected: list[list[str]] = []  # [operator, reason] of each rejected try, in order


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
    # "real" records (jitsynth ingest) say where they came from; absent from synthetic ones.
    source: SourceInfo | msgspec.UnsetType = msgspec.UNSET
    # "variant" records: their parent and mutations (their source is the parent's).
    variant: VariantInfo | msgspec.UnsetType = msgspec.UNSET


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
