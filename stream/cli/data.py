"""Commands for people who use datasets: ``stats``, ``card``, ``export``, ``config show``.

``stream.cli.app`` imports this module and calls ``register(app)``. Exit status follows the
CLI contract: 0 done, 2 bad usage or configuration (one line), 1 a runtime failure.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

Opt = typer.Option
EndpointOpt = Annotated[str | None, Opt(envvar="AWS_ENDPOINT_URL", help="S3 endpoint (or $AWS_ENDPOINT_URL)")]
SkipCorruptOpt = Annotated[bool, Opt("--skip-corrupt", help="Go past corrupt or missing shards (say how many "
                                                              "records were skipped) instead of exit 1")]


def _fail(code: int, message: str) -> typing.NoReturn:
    typer.echo(f"jitsynth: error: {message}", err=True)
    raise typer.Exit(code)


def _run_async(fn: Any, *args: Any) -> Any:
    """Run a coroutine function the way reader commands do, mapping storage errors to exit codes."""
    import anyio

    from sinks.base import SinkConfigError, SinkError
    from sinks.read.shardio import CorruptShard
    from stream.logs import configure

    configure("auto", "warning")
    try:
        return anyio.run(fn, *args, backend="asyncio")
    except SinkConfigError as exc:
        _fail(2, str(exc))
    except (SinkError, FileNotFoundError, CorruptShard) as exc:
        _fail(1, str(exc))


def _skipped(skip_corrupt: bool) -> Any:
    from sinks.read.shardio import SkippedShards

    return SkippedShards() if skip_corrupt else None


def _warn_skipped(skipped: Any) -> None:
    if skipped is not None and skipped.shards:
        typer.echo(f"jitsynth: warning: {skipped.message()}", err=True)


async def _with_sink(url: str, endpoint_url: str | None, work: Any) -> Any:
    from sinks.url import opened_sink

    async with opened_sink(url, endpoint_url, create=False) as sink:
        return await work(sink)


def stats(url: str, as_json: Annotated[bool, Opt("--json", help="One JSON object for machines")] = False,
          endpoint_url: EndpointOpt = None, skip_corrupt: SkipCorruptOpt = False,
          read_records: Annotated[bool, Opt("--read-records", help="Read every record instead of merging the "
                                                                   "summaries commits carry (same figures)")] = False,
          ) -> None:
    """Figures about a dataset: counts, bytes, features, builtins, sizes, validation, failures.
    Merges each commit's summary of its records (one LIST checks the shards are there with
    the committed size and ETag); reads the records of commits without one."""
    from stream.dataset.stats import collect, markdown

    skipped = _skipped(skip_corrupt)
    st = _run_async(_with_sink, url, endpoint_url,
                    lambda sink: collect(sink, url, skipped=skipped, read_records=read_records))
    if st.commits == 0:
        _fail(1, f"no commits under {url}: not a jitsynth dataset, or nothing committed yet")
    summary = st.summary()
    typer.echo(json.dumps(summary, indent=1) if as_json else markdown(summary))
    _warn_skipped(skipped)


def card(url: str, endpoint_url: EndpointOpt = None,
         config: Annotated[Path | None, Opt(help="The producer's TOML config, to list its generator knobs")] = None,
         license_id: Annotated[str, Opt("--license", help="License id for the front matter")] = "apache-2.0",
         name: Annotated[str | None, Opt(help="Title of the card")] = None,
         plots: Annotated[bool, Opt("--plots/--no-plots", help="Render PNG plots")] = True,
         skip_corrupt: SkipCorruptOpt = False) -> None:
    """Write the dataset card (README.md, dataset.json, card/*.png) at the dataset prefix."""
    from stream.dataset.card import write_card
    from stream.config import ConfigError, load_settings
    from stream.cli.extras import PLOTS, missing_data_extra

    if plots and (missing := missing_data_extra("jitsynth card (plots)", PLOTS, hint=", or pass --no-plots")):
        _fail(2, missing)
    try:
        gen_config = load_settings({}, config).generator_config()
    except ConfigError as exc:
        _fail(2, str(exc))

    skipped = _skipped(skip_corrupt)

    async def work(sink: Any) -> Any:
        return await write_card(sink, url, gen_config=gen_config, license_id=license_id, pretty_name=name,
                                with_plots=plots, skipped=skipped)

    result = _run_async(_with_sink, url, endpoint_url, work)
    if result["commits"] == 0:
        _fail(1, f"no commits under {url}: nothing to describe")
    base = url.rstrip("/")
    for key in result["written"]:
        typer.echo(f"wrote {base}/{key}")
    typer.echo(f"card for {result['records']:,} records in {result['commits']:,} shards, "
               f"{len(result['plots'])} plots")
    _warn_skipped(skipped)


def export(url: str, to: Annotated[Path, Opt(help="Directory to write the samples to")],
           layout: Annotated[str, Opt(help="Only 'per-sample': one JSON file per record and backend")] = "per-sample",
           backend: Annotated[str, Opt(help="cpu, cuda or both")] = "both",
           where: Annotated[str | None, Opt(help="Only records matching this expression (see `read --where`)")] = None,
           limit: Annotated[int | None, Opt(help="Stop after N records")] = None,
           endpoint_url: EndpointOpt = None, skip_corrupt: SkipCorruptOpt = False,
           fmt: Annotated[str, Opt("--format", help="json (the --layout) or parquet (one file per split and "
                                                     "a dataset card, for the Hugging Face Hub)")] = "json",
           split: Annotated[str | None, Opt(help="Only this split: train, validation or test")] = None,
           split_fractions: Annotated[str | None, Opt(help="Split fractions train/validation/test, default "
                                                           "98/1/1")] = None) -> None:
    """Write the older one-file-per-sample layout (python_source, cpp_ir_full, cpp_ir_forward...), or Parquet."""
    from sinks.base import SinkConfigError, SinkError
    from sinks.read.shardio import CorruptShard
    from sinks.read.splits import SplitError, split_options
    from sinks.read.where import WhereError, compile_where
    from stream.dataset.export import BACKENDS, export_per_sample
    from stream.cli.extras import PARQUET, missing_data_extra
    from stream.logs import configure

    configure("auto", "warning")  # logs to stderr, as the other readers: stdout is for the summary
    if fmt not in ("json", "parquet"):
        _fail(2, f"--format {fmt!r}: use json or parquet")
    if layout != "per-sample":
        _fail(2, f"--layout {layout!r}: the only layout is 'per-sample'")
    if backend not in (*BACKENDS, "both"):
        _fail(2, f"--backend {backend!r}: use cpu, cuda or both")
    if fmt == "parquet" and backend != "both":
        _fail(2, "--backend applies to --format json: Parquet rows hold both backends")
    if fmt == "parquet" and (missing := missing_data_extra("jitsynth export --format parquet", PARQUET)):
        _fail(2, missing)
    try:
        keep = compile_where(where) if where else None
        fractions = split_options(split, split_fractions)
    except (WhereError, SplitError) as exc:
        _fail(2, str(exc))
    backends = BACKENDS if backend == "both" else (backend,)
    skipped = _skipped(skip_corrupt)
    try:
        if fmt == "parquet":
            return _export_parquet(url, to, endpoint_url, fractions, split, keep, limit, skipped)
        result = export_per_sample(url, to, endpoint_url=endpoint_url, backends=backends, where=keep, limit=limit,
                                   split=split, fractions=fractions, skipped=skipped)
    except SinkConfigError as exc:
        _fail(2, str(exc))
    except (SinkError, FileNotFoundError, CorruptShard) as exc:
        _fail(1, str(exc))
    except OSError as exc:
        _fail(1, f"writing to {to}: {exc.strerror or exc}")
    files = ", ".join(f"{n:,} in {to / b}" for b, n in result.files.items())
    typer.echo(f"exported {result.records:,} records: {files}")
    _warn_skipped(skipped)


def _export_parquet(url: str, to: Path, endpoint_url: str | None, fractions: dict[str, float], split: str | None,
                    keep: Any, limit: int | None, skipped: Any) -> None:
    from stream.dataset.parquet import export_parquet, write_card

    result = export_parquet(url, to, endpoint_url=endpoint_url, fractions=fractions,
                            splits=(split,) if split else None, where=keep, limit=limit, skipped=skipped)
    if not result.total:
        _fail(1, f"no records to export from {url}: not a jitsynth dataset, nothing committed yet, or none matched")
    card_path = write_card(to, result, url)
    for name, n in result.records.items():
        path = result.files.get(name)
        typer.echo(f"{name}: {n:,} records, {result.row_groups[name]} row groups, {result.bytes[name]:,} bytes in "
                   f"{to / path}" if path else f"{name}: no records, no file")
    typer.echo(f"exported {result.total:,} records; card {card_path}")
    _warn_skipped(skipped)


# -- config show ---------------------------------------------------------------------------------
_SECRET = re.compile(r"secret|password|token|credential", re.I)


def mask(value: str, keep: int = 0) -> str:
    return (value[:keep] + "****") if value else value


def _mask_url(url: str) -> str:
    return re.sub(r"//([^/@:]+)(:[^/@]*)?@", lambda m: f"//{m.group(1)}:****@" if m.group(2) else "//****@", url)


def _env_names(name: str, info: Any) -> list[str]:
    """The environment variables pydantic-settings reads for a field: with a validation
    alias, the alias names themselves (no prefix); otherwise JITSYNTH_<NAME>."""
    choices = getattr(info.validation_alias, "choices", None)
    if choices:
        return [c for c in choices if isinstance(c, str)]
    return [f"JITSYNTH_{name.upper()}"]


def _sources(cli: dict[str, Any], config_file: Path | None) -> tuple[dict[str, str], dict[str, Any]]:
    from stream.config import Settings

    file_keys: dict[str, Any] = {}
    if config_file is not None and config_file.is_file():
        file_keys = tomllib.loads(config_file.read_text())
    env = {k.upper(): k for k in os.environ}
    where: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        names = {name, *(c for c in getattr(info.validation_alias, "choices", []) or [] if isinstance(c, str))}
        env_hit = next((env[e.upper()] for e in _env_names(name, info) if e.upper() in env), None)
        if any(cli.get(n) is not None for n in names):
            where[name] = "flag"
        elif env_hit:
            where[name] = f"env {env_hit}"
        elif names & set(file_keys):
            where[name] = f"file {config_file}"
        else:
            where[name] = "derived" if name in ("seed_start", "max_in_flight", "workers") else "default"
    return where, file_keys


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(value)


def resolved_config(cli: dict[str, Any], config_file: Path | None) -> dict[str, dict[str, Any]]:
    """Every setting with its value (secrets masked) and where it came from."""
    from dataclasses import asdict

    from stream.config import load_settings

    settings = load_settings(cli, config_file)
    where, _ = _sources(cli, config_file)
    out: dict[str, dict[str, Any]] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value") or (_SECRET.search(name) and value is not None):
            value = "****" if value is not None else None
        elif name == "generator":
            continue
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, str) and "://" in value:
            value = _mask_url(value)
        out[name] = {"value": value, "source": where[name]}
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        out["aws_access_key_id"] = {"value": mask(os.environ["AWS_ACCESS_KEY_ID"], 4), "source": "env AWS_ACCESS_KEY_ID"}
    if os.environ.get("AWS_PROFILE"):
        out["aws_profile"] = {"value": os.environ["AWS_PROFILE"], "source": "env AWS_PROFILE"}
    gen = settings.generator_config()
    out["generator"] = {"value": asdict(gen), "source": where["generator"], "config_hash": gen.config_hash}
    return out


def _config_show_command(run_callback: Any) -> Any:
    """``config show`` takes exactly the flags of ``run`` (so it shows what that run would use)."""
    sig = inspect.signature(run_callback, eval_str=True)
    hints = typing.get_type_hints(run_callback, include_extras=True)
    json_param = inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False,
                                   annotation=Annotated[bool, Opt("--json", help="One JSON object")])
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()] + [json_param]

    def show(**kwargs: Any) -> None:
        from stream.config import ConfigError

        as_json = kwargs.pop("as_json", False)
        config_file = kwargs.pop("config", None)
        try:
            resolved = resolved_config(kwargs, config_file)
        except ConfigError as exc:
            _fail(2, str(exc))
        if as_json:
            typer.echo(json.dumps(resolved, indent=1, default=str))
            return
        typer.echo("# jitsynth settings as `run` would use them; precedence: flag > env (JITSYNTH_*, AWS_*) > "
                   "--config file > default")
        gen = resolved.pop("generator")
        for name, item in resolved.items():
            line = f"{name} = {_toml(item['value'])}" if item["value"] is not None else f"# {name} = (unset)"
            typer.echo(f"{line:<48} # {item['source']}")
        typer.echo(f"\n[generator]                                      # {gen['source']}; "
                   f"config_hash {gen['config_hash']}")
        for name, value in gen["value"].items():
            typer.echo(f"{name} = {_toml(value)}")

    show.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    show.__annotations__ = {**hints, "as_json": json_param.annotation}
    show.__doc__ = "Print the resolved settings (flags, JITSYNTH_* env, --config TOML, defaults), secrets masked."
    return show


def register(app: typer.Typer) -> None:
    app.command()(stats)
    app.command()(card)
    app.command()(export)
    run = next((c.callback for c in app.registered_commands if c.callback and c.callback.__name__ == "run"), None)
    if run is not None:
        config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
        config_app.command("show")(_config_show_command(run))
        app.add_typer(config_app, name="config")
