"""``jitsynth export --format parquet``: Hub-friendly Parquet, one file per split.

``DIR/data/{split}-00000-of-00001.parquet`` (the Hugging Face Hub's file naming) for
each split of ``sinks.read.splits`` (near-duplicate clusters whole, their members skipped like
every reader skips them), plus ``DIR/README.md`` whose ``configs`` front matter names the
files, so ``datasets.load_dataset(DIR)`` gives a DatasetDict of the splits.

Columns are the record's fields, with the same names. ``cpu``/``cuda`` (three strings),
``validation`` and ``metadata`` are Arrow structs, so DuckDB and the Hub viewer address
``metadata.loc`` directly. Parts whose shape varies from record to record are JSON
strings instead: ``examples`` (inputs and outputs of any dtype and shape per kernel),
``metadata.source`` and ``validation.errors`` (open sets of keys). One Arrow type per
column must hold every record, and a struct union of all keys ever seen would grow a
column per key. Fields this schema does not name (records add fields over time) go to
the JSON column ``extra`` as ``{"field" or "struct.field": value}``, so nothing is lost;
``record_of(row)`` turns a row back into the record.

Rows are buffered per split and written a row group at a time (``ROW_GROUP_ROWS`` rows
or ``ROW_GROUP_BYTES`` of text, whichever first): memory is bounded by one row group
per split, and streaming readers fetch one row group at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sinks.read.reader import SkippedShards, iter_records
from sinks.read.splits import splitter_for

ROW_GROUP_ROWS = 1000
ROW_GROUP_BYTES = 64 << 20
DATA_DIR = "data"
COMPRESSION = "zstd"
# Measured on 9,250 records of ds10k: level 1 (pyarrow's default) 6.2 KB/record, level 9
# 4.3 KB in 6 s, level 19 3.0 KB in 395 s. 9: most of the gain at a write cost near reading's.
COMPRESSION_LEVEL = 9

_STR = pa.string()
_BACKEND = pa.struct([("forward", _STR), ("backward", _STR), ("full", _STR)])
_STRUCTS: dict[str, pa.StructType] = {
    "cpu": _BACKEND,
    "cuda": _BACKEND,
    "validation": pa.struct([("codegen", pa.bool_()), ("cuda_ptx", pa.bool_()), ("cpu_compile", pa.bool_()),
                             ("executed", pa.bool_()), ("execution", _STR), ("errors", _STR)]),
    "metadata": pa.struct([("loc", pa.int64()), ("n_params", pa.int64()), ("param_types", pa.list_(_STR)),
                           ("features", pa.list_(_STR)), ("builtins", pa.list_(_STR)), ("complexity", pa.int64()),
                           ("warp_version", _STR),
                           ("generator", pa.struct([("name", _STR), ("version", _STR), ("config_hash", _STR)])),
                           ("dedup_key_version", _STR), ("origin", _STR), ("source", _STR)]),
}
SCHEMA = pa.schema([("id", _STR), ("schema_version", pa.int64()), ("seed", pa.int64()), ("producer", _STR),
                    ("kernel_name", _STR), ("python_source", _STR), ("cpu", _STRUCTS["cpu"]),
                    ("cuda", _STRUCTS["cuda"]), ("validation", _STRUCTS["validation"]),
                    ("metadata", _STRUCTS["metadata"]), ("ptx", _STR), ("examples", _STR), ("extra", _STR)])
# (struct, field) held as JSON text; ``metadata.source`` is absent from synthetic records (null here)
_JSON_FIELDS = {(None, "examples"), ("validation", "errors"), ("metadata", "source")}
_OPTIONAL = {("metadata", "source")}


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def row_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as a row of ``SCHEMA``."""
    row: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in record.items():
        struct = _STRUCTS.get(name)
        if name not in SCHEMA.names or name == "extra":
            extra[name] = value
        elif struct is not None and isinstance(value, Mapping):
            known = {struct.field(i).name for i in range(struct.num_fields)}
            row[name] = {k: (_dump(v) if (name, k) in _JSON_FIELDS else v) for k, v in value.items() if k in known}
            extra.update({f"{name}.{k}": v for k, v in value.items() if k not in known})
        else:
            row[name] = _dump(value) if (None, name) in _JSON_FIELDS else value
    row["extra"] = _dump(extra) if extra else None
    return row


def record_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The record a row of ``SCHEMA`` was made from (``row_of``'s inverse)."""
    record: dict[str, Any] = {}
    for name in SCHEMA.names:
        if name == "extra" or name not in row:
            continue
        value = row[name]
        if name in _STRUCTS and value is not None:
            value = {k: (json.loads(v) if (name, k) in _JSON_FIELDS and v is not None else v)
                     for k, v in value.items() if not ((name, k) in _OPTIONAL and v is None)}
        elif (None, name) in _JSON_FIELDS and value is not None:
            value = json.loads(value)
        record[name] = value
    for path, value in json.loads(row.get("extra") or "{}").items():
        struct, _, key = path.partition(".")
        if key:
            record.setdefault(struct, {})[key] = value
        else:
            record[path] = value
    return record


def _text_size(row: Mapping[str, Any]) -> int:
    """Characters of text in a row: the row-group size bound (code dominates a record)."""
    size = 0
    for value in row.values():
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, Mapping):
            size += sum(len(v) for v in value.values() if isinstance(v, str))
    return size


def split_file(split: str) -> str:
    return f"{DATA_DIR}/{split}-00000-of-00001.parquet"


class SplitWriter:
    """One split's Parquet file, written a row group at a time to a temporary name and
    renamed into place by ``close`` (an interrupted export leaves no half file)."""

    def __init__(self, path: Path, rows: int = ROW_GROUP_ROWS, nbytes: int = ROW_GROUP_BYTES) -> None:
        self.path, self.rows, self.nbytes = path, rows, nbytes
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.writer = pq.ParquetWriter(self.tmp, SCHEMA, compression=COMPRESSION,
                                      compression_level=COMPRESSION_LEVEL)
        self.buffer: list[dict[str, Any]] = []
        self.buffered_bytes = 0
        self.count = 0
        self.row_groups = 0

    def add(self, row: dict[str, Any]) -> None:
        self.buffer.append(row)
        self.buffered_bytes += _text_size(row)
        if len(self.buffer) >= self.rows or self.buffered_bytes >= self.nbytes:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.writer.write_table(pa.Table.from_pylist(self.buffer, schema=SCHEMA), row_group_size=len(self.buffer))
            self.count += len(self.buffer)
            self.row_groups += 1
            self.buffer, self.buffered_bytes = [], 0

    def close(self) -> bool:
        """Put the file in place; a split with no rows gets no file (and loses an older one):
        ``datasets`` refuses a configured split without data."""
        self.flush()
        self.writer.close()
        if not self.count:
            self.tmp.unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)
            return False
        os.replace(self.tmp, self.path)
        return True

    def abort(self) -> None:
        self.writer.close()
        self.tmp.unlink(missing_ok=True)


@dataclass
class ParquetExport:
    fractions: dict[str, float]
    records: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # split -> path relative to DIR (none if empty)
    bytes: dict[str, int] = field(default_factory=dict)
    row_groups: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.records.values())


def export_parquet(url: str, to: Path, *, endpoint_url: str | None = None, fractions: Mapping[str, float],
                   splits: tuple[str, ...] | None = None, where: str | Callable[[dict[str, Any]], bool] | None = None,
                   limit: int | None = None, rows: int = ROW_GROUP_ROWS,
                   nbytes: int = ROW_GROUP_BYTES, skipped: SkippedShards | None = None) -> ParquetExport:
    """Stream the dataset's records (dedup and near-dedup honoured) into one Parquet file per split."""
    splitter = splitter_for(url, endpoint_url, fractions)
    wanted = tuple(splits or splitter.fractions)
    result = ParquetExport(fractions=dict(splitter.fractions))
    (to / DATA_DIR).mkdir(parents=True, exist_ok=True)
    writers = {split: SplitWriter(to / split_file(split), rows, nbytes) for split in wanted}
    try:
        n = 0
        for record in iter_records(url, endpoint_url, where=where, skipped=skipped):
            if limit is not None and n >= limit:
                break
            writer = writers.get(splitter.split(record["id"]))
            if writer is not None:
                writer.add(row_of(record))
                n += 1
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    for split, writer in writers.items():
        placed = writer.close()
        result.records[split], result.row_groups[split] = writer.count, writer.row_groups
        if placed:
            result.files[split] = split_file(split)
            result.bytes[split] = writer.path.stat().st_size
    return result


def render_card(result: ParquetExport, source_url: str, license_id: str = "apache-2.0",
                pretty_name: str = "jitsynth: Warp kernels with generated C++/CUDA") -> str:
    """README.md for the export directory: ``configs`` names one Parquet file per split."""
    from stream.dataset.card import SCHEMA as FIELDS
    from stream.dataset.card import front_matter
    from stream.dataset.stats import human_bytes

    files = {split: [path] for split, path in result.files.items()}
    out = [front_matter({"records": result.total}, [], license_id, pretty_name, data_files=files),
           f"# {pretty_name}", "",
           f"{result.total:,} records exported from `{source_url}` by `jitsynth export --format parquet`, one "
           "Parquet file per split (zstd, row groups of up to "
           f"{ROW_GROUP_ROWS:,} rows). A record's split is a hash of its dedup key; near-duplicate clusters "
           "(`jitsynth dedup --near`) stay whole in their representative's split, and only the representative "
           "is exported, so no validation or test kernel has a near-twin in train.", "",
           "| split | fraction | records | file | size |", "|---|---:|---:|---|---:|"]
    out += [f"| {split} | {result.fractions.get(split, 0):.2%} | {result.records[split]:,} | `{path}` | "
            f"{human_bytes(result.bytes[split])} |" for split, path in result.files.items()]
    out += ["", "## Loading", "", "```python", "import datasets",
            "ds = datasets.load_dataset(\"<this directory or repo>\")   # a DatasetDict of the splits above",
            "import duckdb",
            f"duckdb.sql(\"SELECT count(*), avg(metadata.loc) FROM '{DATA_DIR}/*.parquet'\")", "```", "",
            "## Columns", "",
            "The record's fields, same names. `cpu`, `cuda`, `validation` and `metadata` are structs. "
            "`examples`, `validation.errors` and `metadata.source` are JSON text (their shape varies per record); "
            "`extra` is JSON text holding any field this export's schema does not name (usually null).", "",
            "| field | type | meaning |", "|---|---|---|"]
    out += [f"| `{name}` | {typ} | {meaning} |" for name, typ, meaning in FIELDS]
    return "\n".join(out) + "\n"


def write_card(to: Path, result: ParquetExport, source_url: str, license_id: str = "apache-2.0") -> Path:
    path = to / "README.md"
    tmp = path.with_name(".README.md.tmp")
    tmp.write_text(render_card(result, source_url, license_id))
    os.replace(tmp, path)
    return path
