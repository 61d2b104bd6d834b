"""tools.backend against moto: real boto3 calls, idempotent bootstrap, check without changes."""

from __future__ import annotations

import json
import socket

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from tools.backend import DEFAULT_ALIAS, PUBLIC_ACCESS_BLOCK, Backend, main

REGION = "eu-west-1"
BUCKET = "team-pulumi-state"


pytestmark = pytest.mark.usefixtures("aws_credentials")


def assert_bucket_is_right(session: boto3.session.Session) -> None:
    s3, kms = session.client("s3", region_name=REGION), session.client("kms", region_name=REGION)
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    key = kms.describe_key(KeyId=DEFAULT_ALIAS)["KeyMetadata"]["KeyId"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == PUBLIC_ACCESS_BLOCK
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is True


@mock_aws
def test_bootstrap_creates_everything_then_changes_nothing() -> None:
    session = boto3.session.Session()
    first = Backend(session, BUCKET, REGION).run(fix=True)
    assert all(f.ok for f in first) and any(f.changed for f in first)
    assert_bucket_is_right(session)
    second = Backend(session, BUCKET, REGION).run(fix=True)
    assert all(f.ok for f in second) and not any(f.changed for f in second), [str(f) for f in second]


@mock_aws
def test_check_reports_what_is_missing_and_changes_nothing() -> None:
    session = boto3.session.Session()
    findings = Backend(session, BUCKET, REGION).run(fix=False)
    assert [str(f) for f in findings] == [
        f"MISSING  KMS key {DEFAULT_ALIAS}: does not exist",
        f"MISSING  bucket {BUCKET}: does not exist",
    ]
    s3 = session.client("s3", region_name=REGION)
    assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@mock_aws
def test_check_on_a_half_made_bucket_names_each_gap() -> None:
    session = boto3.session.Session()
    s3 = session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    other = {
        "Sid": "ReadForAuditors",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [other]}))
    missing = {f.item: f.detail for f in Backend(session, BUCKET, REGION).run(fix=False) if not f.ok}
    assert set(missing) == {f"KMS key {DEFAULT_ALIAS}", "default encryption", "public access block", "bucket policy"}
    assert missing["bucket policy"] == "does not deny requests without TLS"
    # Bootstrap keeps the statements a team already has.
    Backend(session, BUCKET, REGION).run(fix=True)
    statements = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["ReadForAuditors", "DenyInsecureTransport"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_against_a_moto_server(monkeypatch, capsys) -> None:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        assert main(["check", "--bucket", BUCKET, "--region", REGION]) == 1
        assert main(["bootstrap", "--bucket", BUCKET, "--region", REGION]) == 0
        out = capsys.readouterr().out
        assert f"pulumi login 's3://{BUCKET}?region={REGION}'" in out
        assert main(["check", "--bucket", BUCKET, "--region", REGION]) == 0
        assert "MISSING" not in capsys.readouterr().out
        assert_bucket_is_right(boto3.session.Session())
    finally:
        server.stop()
