"""The producer against a real S3 server (SeaweedFS on loopback)."""

from __future__ import annotations

import json

from sinks.read.reader import iter_records
from tests.conftest import S3Env, jitsynth


def test_run_to_s3_then_read_and_verify(s3: S3Env, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    url = s3.url("ds1")
    jitsynth("run", "--out", url, "--endpoint-url", s3.endpoint, "--count", "40", "--workers", "2",
             "--shard-records", "20", "--state-dir", str(tmp_path / "state"), env=s3.env(), check=True)
    keys = sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=s3.bucket, Prefix="ds1/")["Contents"])
    # the end-of-run commit-log checkpoint (and its ids object), the commits, the shards
    assert keys[:2] == ["ds1/checkpoints/0/00000001.ids.json", "ds1/checkpoints/0/00000001.json"]
    assert keys[2:4] == ["ds1/commits/0/00000000.json", "ds1/commits/0/00000001.json"]
    assert [k[:len("ds1/shards/0/00000000-")] for k in keys[4:]] == ["ds1/shards/0/00000000-", "ds1/shards/0/00000001-"]
    commit = json.loads(s3.client().get_object(Bucket=s3.bucket, Key="ds1/commits/0/00000001.json")["Body"].read())
    assert commit["count"] == 20 and commit["seq"] == 1 and len(commit["ids"]) == 20

    verify = jitsynth("verify", url, env=s3.env())
    assert verify.returncode == 0, verify.stdout + verify.stderr
    read = jitsynth("read", url, env=s3.env(), check=True)
    assert len(read.stdout.splitlines()) == 40

    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    records = list(iter_records(url, endpoint_url=s3.endpoint))
    assert len(records) == 40 and len({r["id"] for r in records}) == 40


def test_resume_against_s3_continues_the_same_dataset(s3: S3Env, tmp_path) -> None:  # noqa: ANN001
    url = s3.url("ds2")
    args = ["run", "--out", url, "--workers", "2", "--shard-records", "10", "--state-dir", str(tmp_path / "st")]
    jitsynth(*args, "--count", "20", env=s3.env(), check=True)
    # Lose the local state as well: the bucket alone must be enough.
    jitsynth(*[a if a != str(tmp_path / "st") else str(tmp_path / "other") for a in args], "--count", "30",
             env=s3.env(), check=True)
    read = jitsynth("read", url, env=s3.env(), check=True)
    ids = [json.loads(line)["id"] for line in read.stdout.splitlines()]
    assert len(ids) == 30 and len(set(ids)) == 30


def test_stale_multipart_uploads_are_aborted_on_start(s3: S3Env, tmp_path) -> None:  # noqa: ANN001
    client = s3.client()
    stale = client.create_multipart_upload(Bucket=s3.bucket, Key="ds3/shards/0/00000000-deadbeef.jsonl.zst")
    other = client.create_multipart_upload(Bucket=s3.bucket, Key="ds3/shards/7/00000000-deadbeef.jsonl.zst")
    jitsynth("run", "--out", s3.url("ds3"), "--count", "4", "--workers", "1", "--shard-records", "4",
             "--state-dir", str(tmp_path / "st"), env=s3.env(), check=True)
    uploads = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=s3.bucket, Prefix="ds3/").get("Uploads", [])}
    assert stale["UploadId"] not in uploads
    assert other["UploadId"] in uploads  # another producer's upload is not ours to abort
