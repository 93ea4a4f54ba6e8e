"""``jitsynth dedup URL``: the cross-producer duplicate pass (see ``stream.dataset.crossdedup``).

``stream.cli.app`` imports this module and calls ``register(app)``. Exit status: 0 done
(duplicates found or not), 2 bad usage or configuration, 1 a storage failure, or ids
that one producer committed twice (a fault this pass must not hide).
"""

from __future__ import annotations

import json
import typing
from typing import Annotated, Any

import typer

Opt = typer.Option


def _fail(code: int, message: str) -> typing.NoReturn:
    typer.echo(f"jitsynth: error: {message}", err=True)
    raise typer.Exit(code)


def dedup(url: str,
          endpoint_url: Annotated[str | None, Opt(envvar="AWS_ENDPOINT_URL", help="S3 endpoint (or $AWS_ENDPOINT_URL)")] = None,
          dry_run: Annotated[bool, Opt("--dry-run", help="Report only; do not write dedup/duplicates.json")] = False,
          as_json: Annotated[bool, Opt("--json", help="Print the summary as one JSON object")] = False,
          near: Annotated[bool, Opt("--near", help="Also cluster near-duplicates (MinHash LSH over token shingles) "
                                                   "into dedup/near-duplicates.json")] = False,
          threshold: Annotated[float | None, Opt(help="Jaccard similarity for --near (default 0.85)")] = None,
          workers: Annotated[int | None, Opt(help="Processes tokenising and hashing kernels for --near (default "
                                                  "1: in this process)")] = None,
          ) -> None:
    """Cross-producer duplicate pass: list repeats of an earlier producer's records in dedup/duplicates.json.

    Committed shards are not rewritten; read, verify, stats and export honour the list. With
    --near, near-duplicate clusters go to dedup/near-duplicates.json: readers keep one record
    of each, and splits keep each cluster whole.
    """
    import anyio

    from sinks.base import SinkConfigError, SinkError
    from sinks.read.shardio import CorruptShard
    from sinks.url import opened_sink
    from stream.dataset.crossdedup import DEDUP_KEY, exclusions, run_dedup
    from stream.cli.extras import NEAR_DUPLICATES, missing_data_extra
    from stream.logs import configure
    from stream.dataset.neardup import DEFAULT_THRESHOLD, NearParams, run_near

    if (threshold is not None or workers is not None) and not near:
        _fail(2, "--threshold and --workers apply to --near only")
    if workers is not None and workers < 1:
        _fail(2, f"--workers {workers}: use 1 or more")
    if threshold is not None and not 0 < threshold <= 1:
        _fail(2, f"--threshold {threshold}: use a Jaccard similarity in (0, 1], e.g. 0.85")
    if near and (missing := missing_data_extra("jitsynth dedup --near", NEAR_DUPLICATES)):
        _fail(2, missing)
    params = NearParams(threshold=DEFAULT_THRESHOLD if threshold is None else threshold)

    async def main() -> Any:
        async with opened_sink(url, endpoint_url, create=False) as sink:
            exact = await run_dedup(sink, write=not dry_run)
            if not near:
                return exact, None
            # the exact duplicates just found, not the stored file (unwritten under --dry-run)
            return exact, await run_near(sink, params, write=not dry_run, excluded=exclusions(exact.document()),
                                         workers=workers or 1)

    configure("auto", "warning")
    try:
        result, near_result = anyio.run(main, backend="asyncio")
    except SinkConfigError as exc:
        _fail(2, str(exc))
    except (SinkError, CorruptShard) as exc:
        _fail(1, str(exc))
    doc = result.document()
    summary = {k: doc[k] for k in ("commits", "records", "unique", "n_duplicates", "duplicates_by_producer")}
    summary.update(same_producer=len(result.same_producer), written=None if dry_run else DEDUP_KEY)
    if near_result is not None:
        summary["near"] = _near_summary(near_result, dry_run)
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        where = "not written (--dry-run)" if dry_run else f"listed in {DEDUP_KEY}"
        typer.echo(f"{result.commits} commits, {result.records} records, {result.unique} unique, "
                   f"{len(result.duplicates)} cross-producer duplicates {where}")
        for producer, n in summary["duplicates_by_producer"].items():
            typer.echo(f"  producer {producer}: {n} duplicates of an earlier producer's records")
        if near_result is not None:
            n = summary["near"]
            typer.echo(f"near-duplicates (Jaccard >= {n['threshold']}): {n['near_duplicates']} of {n['records']} "
                       f"records ({n['share']:.2%}) in {n['clusters']} clusters, "
                       + ("not written (--dry-run)" if dry_run else f"listed in {n['written']}"))
    if result.same_producer:
        first = result.same_producer[0]
        _fail(1, f"{len(result.same_producer)} ids were committed twice by one producer (e.g. {first['id']} in "
                 f"{first['shard']} and {first['first_shard']}); this pass does not hide them: run `jitsynth verify`")


def _near_summary(near: Any, dry_run: bool) -> dict[str, Any]:
    from sinks.read.nearfile import NEAR_KEY

    return {"threshold": near.params.threshold, "records": near.records, "clusters": len(near.clusters),
            "near_duplicates": near.near_duplicates, "share": round(near.share, 6),
            "written": None if dry_run else NEAR_KEY}


def register(app: typer.Typer) -> None:
    app.command()(dedup)
