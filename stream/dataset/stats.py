"""``jitsynth stats``: figures about a dataset, computed by following its commits.

One streaming pass: commits give counts, bytes, seeds, duplicates and failures; each
committed record adds its metadata (features, builtins, LOC, sizes, validation).
Only small per-record numbers are kept, so memory stays modest for big datasets.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sinks.checkpoints import list_commits
from sinks.read.dedupfile import load_exclusions
from sinks.read.nearfile import clusters, uncovered
from sinks.read.nearfile import load as load_near
from sinks.read.reader import committed_lines
from sinks.read.shardio import DEFAULT_CONCURRENCY, CorruptShard, SkippedShards, listed_mismatch
from stream.recordstats import SIZE_KEYS, VALIDATION_KEYS, RecordFacts, columns, record_facts


def reason_class(reason: str) -> str:
    """Group failure reasons that differ only in numbers (seeds, line numbers, sizes)."""
    return re.sub(r"\d+", "N", reason.strip())[:160]


@dataclass
class DatasetStats:
    url: str = ""
    commits: int = 0
    records: int = 0
    stored_bytes: int = 0
    raw_bytes: int = 0
    seeds: int = 0
    duplicates: int = 0
    failures: int = 0
    cross_duplicates: int = 0  # records skipped as listed by `jitsynth dedup` (not in ``records``)
    near_duplicates: int = 0  # near-duplicate cluster members skipped (`jitsynth dedup --near`; not in ``records``)
    after_near_pass: int = 0  # records committed after the near pass ran (not clustered yet)
    failure_reasons: Counter = field(default_factory=Counter)
    failure_example: dict[str, int] = field(default_factory=dict)
    producers: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(Counter))
    per_commit: list[dict[str, Any]] = field(default_factory=list)
    features: Counter = field(default_factory=Counter)
    builtins: Counter = field(default_factory=Counter)
    param_types: Counter = field(default_factory=Counter)
    validation: dict[str, Counter] = field(default_factory=lambda: {k: Counter() for k in VALIDATION_KEYS})
    generators: Counter = field(default_factory=Counter)
    warp_versions: Counter = field(default_factory=Counter)
    loc: array = field(default_factory=lambda: array("l"))
    complexity: array = field(default_factory=lambda: array("l"))
    n_params: array = field(default_factory=lambda: array("l"))
    sizes: dict[str, array] = field(default_factory=lambda: {k: array("l") for k in SIZE_KEYS})
    skipped: SkippedShards | None = None  # corrupt shards gone past (``--skip-corrupt``)

    # -- accumulation ------------------------------------------------------------------------------
    def add_commit(self, commit: dict[str, Any]) -> None:
        failures = commit.get("failures") or []
        seeds = int(commit["seed_end"]) - int(commit["seed_start"])
        self.commits += 1
        self.stored_bytes += int(commit["bytes"])
        self.raw_bytes += int(commit.get("raw_bytes") or 0)
        self.seeds += seeds
        self.duplicates += int(commit.get("duplicates") or 0)
        self.failures += len(failures)
        for failure in failures:
            cls = reason_class(str(failure.get("reason", "")))
            self.failure_reasons[cls] += 1
            self.failure_example.setdefault(cls, int(failure.get("seed", -1)))
        p = self.producers[str(commit["producer"])]
        p["commits"] += 1
        p["records"] += int(commit["count"])
        p["bytes"] += int(commit["bytes"])
        p["seeds"] += seeds
        p["duplicates"] += int(commit.get("duplicates") or 0)
        p["failures"] += len(failures)
        self.per_commit.append({"producer": str(commit["producer"]), "seq": int(commit["seq"]),
                                "shard": commit["shard"], "records": int(commit["count"]),
                                "duplicates": int(commit.get("duplicates") or 0), "failures": len(failures),
                                "bytes": int(commit["bytes"]), "seeds": seeds, "config_hash": commit.get("config_hash"),
                                "created_at": commit.get("created_at")})

    def add_record(self, line: bytes) -> None:
        self.add_facts(record_facts(line))

    def add_facts(self, f: RecordFacts) -> None:
        self.records += 1
        self.features.update(f.features)
        self.builtins.update(f.builtins)
        self.param_types.update(f.param_types)
        self.generators[f.generator] += 1
        self.warp_versions[f.warp_version] += 1
        for key, tri in zip(VALIDATION_KEYS, f.validation, strict=True):
            self.validation[key][tri] += 1
        for column, value in zip(self._columns(), f.values, strict=True):
            column.append(value)

    def add_summary(self, summary: dict[str, Any], values: list[array]) -> None:
        """A commit's summary of its records (``stream.recordstats.commit_summary``) and its
        unpacked columns (``columns``): the same totals, first-seen orders and values as
        ``add_record`` over those records."""
        self.records += summary["records"]
        self.features.update(summary["features"])
        self.builtins.update(summary["builtins"])
        self.param_types.update(summary["param_types"])
        self.generators.update(summary["generators"])
        self.warp_versions.update(summary["warp_versions"])
        for key in VALIDATION_KEYS:
            self.validation[key].update(summary["validation"].get(key, {}))
        for column, found in zip(self._columns(), values, strict=True):
            column.fromlist(found.tolist())

    def _columns(self) -> list[array]:
        return [self.loc, self.complexity, self.n_params, *(self.sizes[k] for k in SIZE_KEYS)]

    # -- results -----------------------------------------------------------------------------------
    def pass_rates(self) -> dict[str, dict[str, Any]]:
        out = {}
        for key, c in self.validation.items():
            checked = c["pass"] + c["fail"]
            out[key] = {"pass": c["pass"], "fail": c["fail"], "not_checked": c["null"],
                        "pass_rate": round(c["pass"] / checked, 4) if checked else None}
        return out

    def summary(self) -> dict[str, Any]:
        """Everything as plain JSON-able values (``stats --json``, ``dataset.json``)."""
        seeds = self.seeds or 1
        return {
            "url": self.url,
            "commits": self.commits,
            "records": self.records,
            "cross_producer_duplicates": self.cross_duplicates,
            "near_duplicates": self.near_duplicates,
            "after_near_pass": self.after_near_pass,
            # share of the exact-unique records that repeat a kept one nearly (0 when --near never ran)
            "near_duplicate_share": round(self.near_duplicates / (self.records + self.near_duplicates), 4)
            if self.records + self.near_duplicates else 0.0,
            "producers": {k: dict(v) for k, v in sorted(self.producers.items())},
            "bytes": {"stored": self.stored_bytes, "raw": self.raw_bytes,
                      "compression_ratio": round(self.raw_bytes / self.stored_bytes, 2) if self.stored_bytes else None,
                      "stored_per_record": round(self.stored_bytes / self.records) if self.records else None},
            "seeds": {"consumed": self.seeds, "records": self.records, "duplicates": self.duplicates,
                      "failures": self.failures, "yield": round(self.records / seeds, 4),
                      "duplicate_rate": round(self.duplicates / seeds, 4),
                      "failure_rate": round(self.failures / seeds, 4)},
            "failures_by_reason": [{"reason": r, "count": n, "example_seed": self.failure_example[r]}
                                   for r, n in self.failure_reasons.most_common()],
            "validation": self.pass_rates(),
            "features": dict(self.features.most_common()),
            "builtins": dict(self.builtins.most_common()),
            "param_types": dict(self.param_types.most_common()),
            "generators": dict(self.generators),
            "warp_versions": dict(self.warp_versions),
            "distributions": {"loc": distribution(self.loc), "complexity": distribution(self.complexity),
                              "n_params": distribution(self.n_params),
                              **{f"chars.{k}" if k != "record" else "bytes.record": distribution(v)
                                 for k, v in self.sizes.items()}},
            **({"skipped_corrupt": {"shards": self.skipped.shards, "records": self.skipped.records}}
               if self.skipped is not None and self.skipped.shards else {}),
        }


def distribution(values: array | list[int]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "min": None, "p10": None, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)
    n = len(ordered)

    def q(p: float) -> int:
        return ordered[min(n - 1, int(p * (n - 1) + 0.5))]

    return {"n": n, "min": ordered[0], "p10": q(0.10), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99),
            "max": ordered[-1], "mean": round(sum(ordered) / n, 1)}


async def collect(sink, url: str = "", limit: int = DEFAULT_CONCURRENCY,  # noqa: ANN001
                  skipped: SkippedShards | None = None, read_records: bool = False) -> DatasetStats:
    """One pass over the committed dataset behind ``sink``; ``skipped``: go past corrupt
    shards (tallied there and in the summary) instead of raising ``CorruptShard``.

    A commit with a summary of its records (``Commit.stats``) is merged without fetching its
    shard, once one LIST of the shards shows the shard there with the committed size (and,
    on S3, ETag); a commit without one (written before summaries), with one this code
    cannot use, with records excluded by the dedup or near-duplicate file, or whose
    shard's ETag differs, has its records read. ``read_records``: read every shard."""
    stats = DatasetStats(url=url or getattr(sink, "url", ""), skipped=skipped)
    excluded = await load_exclusions(sink)  # cross-producer duplicates listed by `jitsynth dedup`
    near_doc = await load_near(sink)  # near-duplicate clusters written by `jitsynth dedup --near`
    near = clusters(near_doc).skip
    commits = await list_commits(sink, limit, with_ids=not read_records)  # summaries travel with the ids
    stats.after_near_pass = uncovered(near_doc, commits)
    for _key, commit in commits:
        stats.add_commit(commit)
    listed = {} if read_records else await sink.list_info("shards/")
    to_read: list[tuple[str, dict[str, Any]]] = []
    plan: list[tuple[str, dict[str, Any], str, Any]] = []  # (key, commit, "summary"|"read"|"skip", columns)
    for key, commit in commits:
        how = "read"
        values = None if read_records else columns(commit.get("stats"), int(commit["count"]))
        if values is not None and not excluded.get(commit["shard"]) and not near.get(commit["shard"]):
            found = listed_mismatch(commit, key, listed.get(commit["shard"]))
            if isinstance(found, CorruptShard):
                if skipped is None:
                    raise found
                skipped.add(found, int(commit["count"]))
                how = "skip"
            elif found is None:
                how = "summary"
        plan.append((key, commit, how, values))
        if how == "read":
            to_read.append((key, commit))
    lines = committed_lines(sink, to_read, limit, skipped).__aiter__()
    pending = await anext(lines, None)
    for key, commit, how, values in plan:  # in commit order: counters keep the record path's first-seen order
        if how == "summary":
            stats.add_summary(commit["stats"], values)
            continue
        while how == "read" and pending is not None and pending[0] == key:
            _stats_line(stats, commit, pending[2], excluded, near)
            pending = await anext(lines, None)
    return stats


def _stats_line(stats: DatasetStats, commit: dict[str, Any], line: bytes, excluded: dict, near: dict) -> None:
    skip, skip_near = excluded.get(commit["shard"]), near.get(commit["shard"])
    if skip or skip_near:
        rid = msgspec.json.decode(line)["id"]
        if skip and rid in skip:
            stats.cross_duplicates += 1
            return
        if skip_near and rid in skip_near:
            stats.near_duplicates += 1
            return
    stats.add_record(line)


def _num(n: float | int | None) -> str:
    if n is None:
        return "-"
    return f"{n:,}" if isinstance(n, int) else f"{n:,.1f}"


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def markdown(summary: dict[str, Any], top_builtins: int = 25) -> str:
    """The numbers as Markdown tables: ``jitsynth stats`` output and the card's body."""
    s, b = summary["seeds"], summary["bytes"]
    lines = [
        "| | |", "|---|---|",
        f"| records | {_num(summary['records'])} |",
        f"| commits (shards) | {_num(summary['commits'])} |",
        f"| producers | {len(summary['producers'])} |",
        f"| stored (zstd) | {human_bytes(b['stored'])} ({_num(b['stored_per_record'])} B/record) |",
        f"| uncompressed JSONL | {human_bytes(b['raw'])} (ratio {b['compression_ratio']}) |",
        f"| seeds consumed | {_num(s['consumed'])} |",
        f"| duplicates dropped | {_num(s['duplicates'])} ({s['duplicate_rate']:.2%} of seeds) |",
        f"| failures | {_num(s['failures'])} ({s['failure_rate']:.2%} of seeds) |",
        f"| cross-producer duplicates (listed by `jitsynth dedup`, not counted) | "
        f"{_num(summary.get('cross_producer_duplicates', 0))} |",
        f"| near-duplicates (listed by `jitsynth dedup --near`, not counted) | {_num(summary.get('near_duplicates', 0))} "
        f"({summary.get('near_duplicate_share', 0):.2%}) |",
        *([f"| records committed after the near pass (rerun `jitsynth dedup --near`) | "
           f"{_num(summary['after_near_pass'])} |"] if summary.get("after_near_pass") else []),
        "", "**Producers**", "", "| producer | commits | records | stored | seeds | duplicates | failures |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for pid, p in summary["producers"].items():
        lines.append(f"| {pid} | {p['commits']} | {_num(p['records'])} | {human_bytes(p['bytes'])} | "
                     f"{_num(p['seeds'])} | {_num(p['duplicates'])} | {_num(p['failures'])} |")
    lines += ["", "**Validation**", "", "| check | pass | fail | not checked | pass rate |",
              "|---|---:|---:|---:|---:|"]
    for key, v in summary["validation"].items():
        rate = "-" if v["pass_rate"] is None else f"{v['pass_rate']:.2%}"
        lines.append(f"| {key} | {_num(v['pass'])} | {_num(v['fail'])} | {_num(v['not_checked'])} | {rate} |")
    lines += ["", "**Failures by reason**", ""]
    if summary["failures_by_reason"]:
        lines += ["| count | reason | example seed |", "|---:|---|---:|"]
        lines += [f"| {f['count']} | `{f['reason'].replace('|', '/')}` | {f['example_seed']} |"
                  for f in summary["failures_by_reason"]]
    else:
        lines.append("none")
    lines += ["", "**Distributions**", "", "| quantity | min | p10 | median | p90 | p99 | max | mean |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, d in summary["distributions"].items():
        lines.append(f"| {name} | " + " | ".join(_num(d[k]) for k in ("min", "p10", "p50", "p90", "p99", "max",
                                                                           "mean")) + " |")
    n = summary["records"] or 1
    lines += ["", "**Features** (share of records)", "", "| feature | records | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {_num(v)} | {v / n:.1%} |" for k, v in summary["features"].items()]
    lines += ["", f"**Builtins** (top {top_builtins} of {len(summary['builtins'])})", "",
              "| builtin | records | share |", "|---|---:|---:|"]
    lines += [f"| `{k}` | {_num(v)} | {v / n:.1%} |" for k, v in list(summary["builtins"].items())[:top_builtins]]
    lines += ["", "**Generators**: " + ", ".join(f"{k}: {_num(v)}" for k, v in summary["generators"].items()),
              "", "**Warp**: " + ", ".join(f"{k}: {_num(v)}" for k, v in summary["warp_versions"].items())]
    return "\n".join(lines) + "\n"
