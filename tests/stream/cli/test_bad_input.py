"""Bad input: exit status 2, one line saying what to fix, no traceback, nothing written.
(No retry loop runs first: the S3 check at start-up is a single attempt.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import S3Env, free_port, jitsynth


def _assert_clean_usage_error(proc, expect: str) -> None:  # noqa: ANN001
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert expect.lower() in lines[0].lower(), lines[0]


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--count", "0"], "count"),
        (["--count", "-5"], "count"),
        (["--workers", "0"], "workers"),
        (["--workers", "-1"], "workers"),
        (["--shard-bytes", "lots"], "shard_bytes"),
        (["--shard-records", "0"], "shard_records"),
        (["--max-rate", "0"], "max_rate"),
        (["--max-rate", "-2.5"], "max_rate"),
        (["--validate", "codegen,bogus"], "unknown tier"),
        (["--producer", "a/b"], "producer"),
        (["--config", "/nonexistent/jitsynth.toml"], "not found"),
    ],
)
def test_bad_flags(tmp_path: Path, args: list[str], expect: str) -> None:
    out = tmp_path / "ds"
    proc = jitsynth("run", "--out", str(out), "--state-dir", str(tmp_path / "st"), *args)
    _assert_clean_usage_error(proc, expect)
    assert not out.exists() and not (tmp_path / "st").exists()


def test_a_state_directory_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = jitsynth("run", "--out", str(tmp_path / "ds"), "--state-dir", str(blocker / "st"), "--count", "1")
    _assert_clean_usage_error(proc, "--state-dir")


def test_unknown_url_scheme(tmp_path: Path) -> None:
    proc = jitsynth("run", "--out", "gs://bucket/prefix", "--state-dir", str(tmp_path / "st"))
    _assert_clean_usage_error(proc, "s3://bucket/prefix")


def test_broken_config_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("count = [unclosed\n")
    proc = jitsynth("run", "--out", str(tmp_path / "ds"), "--config", str(config))
    _assert_clean_usage_error(proc, "invalid configuration")
    config.write_text("workers = 'many'\n")
    proc = jitsynth("run", "--out", str(tmp_path / "ds"), "--config", str(config))
    _assert_clean_usage_error(proc, "workers")
    assert not (tmp_path / "ds").exists()


def test_unreachable_endpoint(tmp_path: Path, s3: S3Env) -> None:
    env = {**s3.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    proc = jitsynth("run", "--out", "s3://jitsynth-test/x", "--state-dir", str(tmp_path / "st"), env=env)
    _assert_clean_usage_error(proc, "cannot reach S3")
    assert not (tmp_path / "st").exists()


def test_unknown_bucket(tmp_path: Path, s3: S3Env) -> None:
    proc = jitsynth("run", "--out", "s3://no-such-bucket-here/x", "--state-dir", str(tmp_path / "st"), env=s3.env())
    _assert_clean_usage_error(proc, "does not exist")


def test_wrong_credentials(tmp_path: Path, s3: S3Env) -> None:
    env = {**s3.env(), "AWS_SECRET_ACCESS_KEY": "definitely-wrong"}
    proc = jitsynth("run", "--out", s3.url(), "--state-dir", str(tmp_path / "st"), env=env)
    _assert_clean_usage_error(proc, "denied")
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize("command", [["read"], ["stats"], ["verify"], ["dedup"], ["card"], ["export", "--to", "x"]])
def test_reading_commands_on_a_mistyped_path_make_nothing(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no-such-dataset"
    proc = jitsynth(command[0], str(missing), *command[1:])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr  # as an empty S3 prefix
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        f"jitsynth: error: no dataset at {missing}: the directory does not exist (check the path)"]
    assert not missing.exists()
