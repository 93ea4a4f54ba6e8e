"""``jitsynth card``: the dataset card, ``README.md`` at the dataset prefix.

Hugging Face dataset-card front matter (license, tags, size category, and a ``configs``
entry listing the committed shards, so ``datasets.load_dataset(<dir or repo>)`` reads
exactly the committed records), then the schema, the generator configuration, the
numbers from ``jitsynth stats`` and PNG plots stored under ``card/`` next to it. The
same numbers go to ``dataset.json`` for machines. Everything is written with the
sink's ``put``, so it works the same on a local directory and on S3.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Any

from sinks.read.shardio import SkippedShards
from stream.dataset.stats import DatasetStats, collect, human_bytes, markdown

CARD_KEY, JSON_KEY, PLOT_DIR = "README.md", "dataset.json", "card"
# Beyond this many shards the front matter uses a glob instead of the explicit list.
MAX_LISTED_SHARDS = 2000

SCHEMA = [
    ("id", "string", "hex digest of the kernel's canonical form (the dedup key)"),
    ("schema_version", "int", "1"),
    ("seed", "int", "generator seed; with `metadata.generator.config_hash` it reproduces the sample"),
    ("producer", "string", "id of the producer that wrote the record"),
    ("kernel_name", "string", "entry point name, normalised"),
    ("python_source", "string", "the full module: imports, `@wp.func` helpers, structs, the `@wp.kernel`"),
    ("cpu.forward / cpu.backward", "string", "forward and adjoint functions extracted from Warp's generated C++"),
    ("cpu.full", "string", "the whole generated C++ file"),
    ("cuda.forward / cuda.backward / cuda.full", "string", "the same for Warp's generated CUDA"),
    ("ptx", "string or null", "NVRTC PTX of the CUDA module when `validation.cuda_ptx` ran"),
    ("validation", "object", "`codegen`, `cuda_ptx`, `cpu_compile`, `executed`: true, false or null (not run)"),
    ("examples", "list or null", "inputs and outputs of a CPU run of the kernel, when executed"),
    ("metadata", "object", "`loc`, `n_params`, `param_types`, `features`, `builtins`, `complexity`, "
                           "`warp_version`, `generator` {name, version, config_hash}, `dedup_key_version`"),
]


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for bound, label in bounds if n < bound), "n>1T" if n >= 10**12 else "1B<n<10B")


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def front_matter(summary: dict[str, Any], shards: list[str], license_id: str, pretty_name: str,
                 data_files: dict[str, list[str]] | None = None) -> str:
    """Card front matter; ``configs`` lists ``data_files`` ({split: files}), by default every
    shard as one ``train`` split (JSONL shards mix splits; `export --format parquet` separates them)."""
    lines = ["---", f"pretty_name: {_q(pretty_name)}", f"license: {license_id}", "language:", "- en",
             "task_categories:", "- text-generation", "tags:",
             *[f"- {t}" for t in ("code", "compilers", "nvidia-warp", "cuda", "cpp", "synthetic")],
             "size_categories:", f"- {size_category(summary['records'])}",
             "configs:", "- config_name: default", "  data_files:"]
    if data_files is None:
        data_files = {"train": shards if len(shards) <= MAX_LISTED_SHARDS else ["shards/*/*.jsonl.zst"]}
    for split, files in data_files.items():
        lines += [f"  - split: {split}", "    path:", *[f"    - {_q(f)}" for f in files]]
    lines += ["---", ""]
    return "\n".join(lines)


def _generator_section(summary: dict[str, Any], gen_config: Any | None) -> list[str]:
    hashes = sorted({k.rsplit("(", 1)[-1].rstrip(")") for k in summary["generators"]})
    lines = ["## Generator configuration", "",
             "Records carry `metadata.generator` = {name, version, config_hash}; the same (seed, config, Warp "
             "version) gives byte-identical records.", "",
             "| generator | records |", "|---|---:|"]
    lines += [f"| `{k}` | {v:,} |" for k, v in summary["generators"].items()]
    lines += ["", "Warp: " + ", ".join(f"`{k}` ({v:,} records)" for k, v in summary["warp_versions"].items()), ""]
    if gen_config is not None and gen_config.config_hash in hashes:
        lines += [f"Knobs of configuration `{gen_config.config_hash}` (TOML `[generator]` table of `--config`):", "",
                  "```json", json.dumps(asdict(gen_config), indent=2, sort_keys=True), "```", ""]
    elif gen_config is not None:
        lines += [f"The knobs are not shown: the configuration given to `jitsynth card` hashes to "
                  f"`{gen_config.config_hash}`, not to the dataset's {', '.join(f'`{h}`' for h in hashes)}; "
                  "pass the producer's `--config FILE`.", ""]
    return lines


def _cross_note(summary: dict[str, Any]) -> list[str]:
    n = summary.get("cross_producer_duplicates") or 0
    if not n:
        return []
    return [f"**Note:** {n:,} records repeat a kernel that an earlier producer committed; `jitsynth dedup` listed "
            "them in `dedup/duplicates.json` and they are not counted here. `jitsynth read`, `iter_records` and "
            "`jitsynth export` skip them; readers that open the shards in place (the file list below, pandas, "
            "DuckDB) still see them: drop the listed ids.", ""]


def render(st: DatasetStats, shards: list[str], *, gen_config: Any | None = None, license_id: str = "apache-2.0",
           pretty_name: str = "jitsynth: Warp kernels with generated C++/CUDA", plots: list[str] | None = None) -> str:
    summary = st.summary()
    b = summary["bytes"]
    out = [front_matter(summary, shards, license_id, pretty_name), f"# {pretty_name}", "",
           f"{summary['records']:,} synthetic [NVIDIA Warp](https://github.com/NVIDIA/warp) kernels, each paired "
           "with the C++ (CPU) and CUDA source that Warp's code generator emits for it, forward and adjoint "
           f"(backward) functions extracted. {summary['commits']:,} zstd-compressed JSONL shards, "
           f"{human_bytes(b['stored'])} stored ({human_bytes(b['raw'])} uncompressed), written by "
           f"{len(summary['producers'])} producer(s). Produced by `jitsynth`; "
           f"{summary['validation']['codegen']['pass']:,} records passed Warp codegen for both backends, and "
           "records are unique by a canonical form of the kernel (renamed copies collide).", "",
           f"Card generated {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} from the dataset's commits.", "",
           *_cross_note(summary),
           "## Loading", "",
           "Only shards that have a commit under `commits/` belong to the dataset; the list in the front matter "
           "above is exactly those. In Python:", "",
           "```python",
           "import datasets",
           "ds = datasets.load_dataset(\"<this directory or repo>\", split=\"train\")   # uses the list above",
           "",
           "from sinks.read.reader import iter_records, committed_shards   # pip install jitsynth",
           "for record in iter_records(\"<dataset URL>\", where=\"'loops' in metadata.features\"):",
           "    ...",
           "import pandas, duckdb",
           "frame = pandas.concat(pandas.read_json(f, lines=True, compression=\"zstd\")",
           "                      for f in committed_shards(\"<dataset URL>\"))",
           "duckdb.sql(f\"SELECT count(*) FROM read_json({committed_shards('<dataset URL>')!r})\")",
           "```", "",
           "From the shell: `jitsynth read URL --where \"metadata.loc > 40\"` prints committed records as JSONL; "
           "`jitsynth export URL --layout per-sample --to DIR` writes the older one-file-per-sample layout.", "",
           "## Schema (one JSON object per line, `schema_version` 1)", "",
           "| field | type | meaning |", "|---|---|---|"]
    out += [f"| `{name}` | {typ} | {meaning} |" for name, typ, meaning in SCHEMA]
    out += ["", "Layout: `shards/{producer}/{seq}...jsonl.zst` (one zstd frame each) and "
                "`commits/{producer}/{seq}.json` (count, bytes, sha256, record ids, seed range, duplicates, "
                "failures); `jitsynth verify URL` checks every shard against its commit.", ""]
    out += _generator_section(summary, gen_config)
    out += ["## Numbers", "", markdown(summary)]
    if plots:
        from stream.dataset.plots import PLOTS

        out += ["## Plots", ""]
        for name in plots:
            out += [f"### {PLOTS[name][0]}", "", f"![{PLOTS[name][0]}]({PLOT_DIR}/{name})", ""]
    return "\n".join(out)


def relative_shards(commits: list[dict[str, Any]]) -> list[str]:
    return [c["shard"] for c in commits]


async def write_card(sink, url: str, *, gen_config: Any | None = None, license_id: str = "apache-2.0",  # noqa: ANN001
                     pretty_name: str | None = None, with_plots: bool = True,
                     skipped: SkippedShards | None = None) -> dict[str, Any]:
    """Compute the stats, render plots and card, store them; returns what was written.
    ``skipped``: go past corrupt shards (the card then counts only what was read)."""
    import anyio

    from stream.dataset.plots import PLOTS

    st = await collect(sink, url, skipped=skipped)
    if st.commits == 0:  # not a dataset (or nothing committed yet): write nothing
        return {"written": [], "records": 0, "commits": 0, "plots": []}
    written: list[str] = []
    plots: list[str] = []
    if with_plots and st.records:
        for name, (_title, draw) in PLOTS.items():
            png = await anyio.to_thread.run_sync(draw, st)
            await sink.put(f"{PLOT_DIR}/{name}", png)
            written.append(f"{PLOT_DIR}/{name}")
            plots.append(name)
    shards = relative_shards(st.per_commit)
    kwargs = {"gen_config": gen_config, "license_id": license_id, "plots": plots}
    if pretty_name:
        kwargs["pretty_name"] = pretty_name
    text = render(st, shards, **kwargs)
    summary = st.summary()
    if gen_config is not None:
        summary["generator_config"] = {"config_hash": gen_config.config_hash, "knobs": asdict(gen_config)}
    await sink.put(JSON_KEY, json.dumps(summary, indent=1).encode() + b"\n")
    await sink.put(CARD_KEY, text.encode())
    written += [JSON_KEY, CARD_KEY]
    return {"written": written, "records": st.records, "commits": st.commits, "plots": plots}
