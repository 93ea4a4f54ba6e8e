"""``jitsynth dedup URL``: the cross-producer duplicate pass (see ``stream.crossdedup``).

``stream.cli`` imports this module and calls ``register(app)``. Exit status: 0 done
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
          as_json: Annotated[bool, Opt("--json", help="Print the summary as one JSON object")] = False) -> None:
    """Cross-producer duplicate pass: list repeats of an earlier producer's records in dedup/duplicates.json.

    Committed shards are not rewritten; read, verify, stats and export honour the list.
    """
    import anyio

    from sinks.base import SinkConfigError, SinkError
    from sinks.url import opened_sink
    from stream.crossdedup import DEDUP_KEY, run_dedup
    from stream.logs import configure

    async def main() -> Any:
        async with opened_sink(url, endpoint_url) as sink:
            return await run_dedup(sink, write=not dry_run)

    configure("auto", "warning")
    try:
        result = anyio.run(main, backend="asyncio")
    except SinkConfigError as exc:
        _fail(2, str(exc))
    except SinkError as exc:
        _fail(1, str(exc))
    doc = result.document()
    summary = {k: doc[k] for k in ("commits", "records", "unique", "n_duplicates", "duplicates_by_producer")}
    summary.update(same_producer=len(result.same_producer), written=None if dry_run else DEDUP_KEY)
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        where = "not written (--dry-run)" if dry_run else f"listed in {DEDUP_KEY}"
        typer.echo(f"{result.commits} commits, {result.records} records, {result.unique} unique, "
                   f"{len(result.duplicates)} cross-producer duplicates {where}")
        for producer, n in summary["duplicates_by_producer"].items():
            typer.echo(f"  producer {producer}: {n} duplicates of an earlier producer's records")
    if result.same_producer:
        first = result.same_producer[0]
        _fail(1, f"{len(result.same_producer)} ids were committed twice by one producer (e.g. {first['id']} in "
                 f"{first['shard']} and {first['first_shard']}); this pass does not hide them: run `jitsynth verify`")


def register(app: typer.Typer) -> None:
    app.command()(dedup)
