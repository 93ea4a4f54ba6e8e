"""One configuration object for a run, from (highest precedence first) CLI flags,
``JITSYNTH_*`` environment variables, an optional TOML file, then defaults.
Validated once at start; a bad value is a one-line message and exit status 2."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AliasChoices, ByteSize, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from sinks.shard import DEFAULT_LEVEL

# Producers given by index (Kubernetes JOB_COMPLETION_INDEX) own disjoint seed ranges of
# this width; 2**40 seeds is far more than any producer consumes.
SEED_STRIDE = 1 << 40
TIERS = ("codegen", "ptx", "cpu-compile", "execute")
_PRODUCER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ConfigError(ValueError):
    """Bad configuration: reported as one line, exit status 2."""


class Settings(BaseSettings):
    # populate_by_name: flags and TOML use field names; the aliases below are the extra
    # environment names (AWS conventions) that the JITSYNTH_ prefix does not cover.
    model_config = SettingsConfigDict(env_prefix="JITSYNTH_", extra="forbid", validate_default=True,
                                      populate_by_name=True)
    config_file: ClassVar[Path | None] = None

    out: str = "./dataset"
    count: int | None = Field(None, gt=0)
    workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1, le=256)
    producer: str = Field(default_factory=lambda: os.environ.get("JOB_COMPLETION_INDEX", "0"))
    seed_start: int | None = Field(None, ge=0)
    shard_records: int = Field(10_000, ge=1)
    shard_bytes: ByteSize = ByteSize(64 << 20)
    shard_age: float = Field(300.0, gt=0)
    # A commit-log checkpoint every N commits and at the end of a run (sinks/checkpoints.py).
    checkpoint_every: int = Field(100, ge=1)
    # NoDecode: the env value is "codegen,ptx", split by the validator below, not JSON.
    validate_tiers: Annotated[list[str], NoDecode] = ["codegen"]
    keep_ptx: bool = False  # store NVRTC PTX in records; reaches workers as the "keep-ptx" pseudo-tier
    state_dir: Path | None = None
    endpoint_url: str | None = Field(None, validation_alias=AliasChoices("JITSYNTH_ENDPOINT_URL",
                                                                         "AWS_ENDPOINT_URL"))
    region: str | None = Field(None, validation_alias=AliasChoices("JITSYNTH_REGION", "AWS_REGION",
                                                                  "AWS_DEFAULT_REGION"))
    aws_secret_access_key: SecretStr | None = Field(None, validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY"),
                                                    exclude=True)
    # Seeds per worker task, and so records per zstd frame (stream/framing.py): frames of
    # 32 records store 4% more bytes than one frame per shard; frames of 4 would store 60% more.
    batch_size: int = Field(32, ge=1, le=1024)
    max_in_flight: int | None = Field(None, ge=1)
    # Kernels (seeds) per second the submitter may hand to the pool; None: as fast as it goes.
    max_rate: float | None = Field(None, gt=0, allow_inf_nan=False)
    task_timeout: float = Field(120.0, gt=0)
    worker_max_tasks: int = Field(500, ge=1)
    grace_period: float = Field(25.0, gt=0)
    retry_deadline: float = Field(900.0, gt=0)
    # Workers compress each batch at this level (`jitsynth bench` compression table): on
    # frames of 32 records, level 11 stores 6% fewer bytes than level 9 for ~0.1 ms more of a
    # worker's CPU per record; long-distance mode would cost a 128 MiB window.
    zstd_level: int = Field(DEFAULT_LEVEL, ge=1, le=22)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    progress: Literal["auto", "on", "off"] = "auto"
    # Exit status when SIGTERM/SIGINT stops a run before --count is reached. The contract
    # default is 0; a Kubernetes Job may set 3 so an evicted pod is restarted, not counted
    # as a completed index.
    incomplete_exit_code: int = Field(0, ge=0, le=255)
    generator: dict[str, Any] = Field(default_factory=dict)
    # Where kernels come from: "generator" (synth.gen.generator) or "variants:SPEC", mutations of the
    # real kernels of SPEC (comma-separated ingested datasets: paths or s3:// URLs; issue 15),
    # tuned by the [variants] table (synth.gen.config.VariantConfig).
    source: str = "generator"
    variants: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.config_file))
        return tuple(sources)

    @field_validator("validate_tiers", mode="before")
    @classmethod
    def _split_tiers(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [t.strip() for t in value.split(",") if t.strip()]
        unknown = [t for t in value if t not in TIERS]
        if unknown:
            raise ValueError(f"unknown tier(s) {unknown}; choose from {', '.join(TIERS)}")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        kind, _, spec = value.partition(":")
        if value == "generator" or kind == "variants" and any(p.strip() for p in spec.split(",")):
            return value
        raise ValueError("use 'generator' or 'variants:DATASET[,DATASET...]' (datasets of ingested real kernels)")

    @field_validator("producer")
    @classmethod
    def _producer_id(cls, value: str) -> str:
        if not _PRODUCER_RE.match(value):
            raise ValueError("use 1-64 characters of letters, digits, '.', '_' or '-' (starting alphanumeric)")
        if value.isdigit() and value != str(int(value)):
            # "07" and "7" would share the seed partition of index 7.
            raise ValueError(f"numeric producer ids have no leading zeros: use {int(value)}")
        return value

    @field_validator("out")
    @classmethod
    def _out_url(cls, value: str) -> str:
        if value.startswith("s3://"):
            bucket = value[5:].split("/", 1)[0]
            if len(bucket) < 3:
                raise ValueError(f"bucket name {bucket!r} must be at least 3 characters (s3://bucket/prefix)")
        elif "://" in value and not value.startswith("file://"):
            raise ValueError("use s3://bucket/prefix or a local directory path")
        return value

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        if self.seed_start is None:
            # Numeric producer ids (Kubernetes Indexed Jobs) get disjoint seed partitions.
            self.seed_start = int(self.producer) * SEED_STRIDE if self.producer.isdigit() else 0
        if self.keep_ptx and "keep-ptx" not in self.validate_tiers:
            self.validate_tiers = [*self.validate_tiers, "keep-ptx"]
        if self.max_in_flight is None:
            self.max_in_flight = self.workers * 3
        if self.shard_bytes < 1024:
            raise ValueError("shard_bytes must be at least 1 KiB")
        from synth.gen.config import GeneratorConfig

        try:
            GeneratorConfig(**self.generator).validate()
        except TypeError as exc:
            raise ValueError(f"generator: {exc}") from exc
        self.variant_config().validate()
        return self

    def variant_config(self) -> Any:
        from synth.gen.config import VariantConfig

        try:
            return VariantConfig(**self.variants)
        except TypeError as exc:
            raise ValueError(f"variants: {exc}") from exc

    def source_spec(self) -> list[str]:
        """The datasets of ``variants:SPEC`` (empty for the generator)."""
        kind, _, spec = self.source.partition(":")
        return [p.strip() for p in spec.split(",") if p.strip()] if kind == "variants" else []

    def generator_config(self) -> Any:
        from synth.gen.config import GeneratorConfig

        return GeneratorConfig(**self.generator)

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        import hashlib

        tag = hashlib.sha256(self.out.encode()).hexdigest()[:12]
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return base / "jitsynth" / f"{tag}-{self.producer}"


def load_settings(cli: dict[str, Any], config_file: Path | None = None) -> Settings:
    """Build and validate the settings; raise ConfigError with one readable line."""
    from pydantic import ValidationError

    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"--config {config_file}: file not found")
    Settings.config_file = config_file
    try:
        return Settings(**{k: v for k, v in cli.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise ConfigError(f"invalid {where}: {first['msg']}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. malformed TOML
        raise ConfigError(f"invalid configuration: {exc}") from None
    finally:
        Settings.config_file = None
