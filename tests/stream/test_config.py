"""One configuration object: flags > JITSYNTH_* env > TOML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.config import SEED_STRIDE, ConfigError, load_settings


def test_precedence_flags_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text('workers = 3\nshard_records = 50\nzstd_level = 9\n[generator]\nmax_statements = 5\n')
    monkeypatch.setenv("JITSYNTH_SHARD_RECORDS", "70")
    monkeypatch.setenv("JITSYNTH_ZSTD_LEVEL", "7")
    settings = load_settings({"zstd_level": 5}, config)
    assert settings.workers == 3  # file
    assert settings.shard_records == 70  # env beats file
    assert settings.zstd_level == 5  # flag beats env
    assert settings.generator_config().max_statements == 5


def test_producer_index_partitions_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    settings = load_settings({})
    assert settings.producer == "2" and settings.seed_start == 2 * SEED_STRIDE
    assert load_settings({"producer": "alpha"}).seed_start == 0
    assert load_settings({"seed_start": 5}).seed_start == 5


def test_errors_are_one_readable_line() -> None:
    with pytest.raises(ConfigError, match="shard_bytes"):
        load_settings({"shard_bytes": "12 parsecs"})
    with pytest.raises(ConfigError, match="generator"):
        load_settings({"generator": {"no_such_knob": 1}})
    assert load_settings({"shard_bytes": "8MiB"}).shard_bytes == 8 << 20


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JITSYNTH_VALIDATE_TIERS", "codegen,ptx")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("VALIDATE", "execute")  # an unprefixed name must not leak in
    settings = load_settings({})
    assert settings.validate_tiers == ["codegen", "ptx"]
    assert settings.endpoint_url == "http://127.0.0.1:9000" and settings.region == "eu-west-1"
    monkeypatch.setenv("JITSYNTH_ENDPOINT_URL", "http://127.0.0.1:9999")
    assert load_settings({}).endpoint_url == "http://127.0.0.1:9999"
    assert load_settings({"endpoint_url": "http://127.0.0.1:1"}).endpoint_url == "http://127.0.0.1:1"


def test_producer_ids_without_leading_zeros() -> None:
    with pytest.raises(ConfigError, match="leading zeros"):
        load_settings({"producer": "07"})
    assert load_settings({"producer": "7"}).seed_start == 7 * SEED_STRIDE
    assert load_settings({"producer": "0"}).seed_start == 0


def test_max_rate_from_flag_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings({}).max_rate is None  # unlimited by default
    config = tmp_path / "c.toml"
    config.write_text("max_rate = 0.5\n")
    assert load_settings({}, config).max_rate == 0.5  # below one kernel per second is fine
    monkeypatch.setenv("JITSYNTH_MAX_RATE", "12")
    assert load_settings({}, config).max_rate == 12.0
    assert load_settings({"max_rate": 3.5}, config).max_rate == 3.5
    for bad in ("0", "-1", "nan", "inf"):
        monkeypatch.setenv("JITSYNTH_MAX_RATE", bad)
        with pytest.raises(ConfigError, match="max_rate"):
            load_settings({})
