"""ops.backend against moto: real boto3 calls, idempotent bootstrap, check without changes."""

from __future__ import annotations

import json
import socket

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from ops import backend as backend_module
from ops.backend import DEFAULT_ALIAS, KEY_TAG, PUBLIC_ACCESS_BLOCK, Backend, alias_problem, bucket_problem, main

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
    assert s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]


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
    assert set(missing) == {
        f"KMS key {DEFAULT_ALIAS}",
        "object ownership",
        "default encryption",
        "public access block",
        "bucket policy",
    }
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


# --- an existing weak bucket, bad inputs, a failure midway and the rerun ------------------------


@mock_aws
def test_an_existing_bucket_that_lets_writers_own_objects_is_reported_then_fixed(capsys) -> None:
    session = boto3.session.Session()
    s3 = session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}, ObjectOwnership="ObjectWriter")
    assert main(["bootstrap", "--bucket", BUCKET, "--region", REGION]) == 0
    assert "changed  object ownership: BucketOwnerEnforced (was ObjectWriter)" in capsys.readouterr().out
    assert_bucket_is_right(session)
    s3.put_bucket_ownership_controls(Bucket=BUCKET, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    assert main(["check", "--bucket", BUCKET, "--region", REGION]) == 1
    assert "MISSING  object ownership: is ObjectWriter, not BucketOwnerEnforced" in capsys.readouterr().out


def _nothing_in(session: boto3.session.Session) -> None:
    assert session.client("kms", region_name=REGION).list_keys()["Keys"] == []
    assert session.client("s3", region_name=REGION).list_buckets()["Buckets"] == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--kms-alias", "my-key"], "--kms-alias 'my-key': a KMS alias starts with 'alias/' (did you mean alias/my-key?)"),
        (["--kms-alias", "alias/aws/s3"], "alias/aws/ is reserved"),
        (["--kms-alias", "alias/with space"], "alias/ then 1-250 letters"),
        (["--bucket", "My_State"], "--bucket 'My_State' is not a valid S3 bucket name: 3-63 lower-case letters"),
        (["--bucket", "ab"], "is not a valid S3 bucket name"),
        (["--bucket", "state..bucket"], "no two adjacent periods"),
        (["--bucket", "192.168.5.4"], "not formatted as an IP address"),
        (["--bucket", "xn--state"], "the prefix or suffix 'xn--' is reserved"),
        (["--bucket", "state-s3alias"], "'-s3alias' is reserved"),
        (["--region", "eu-wset-1"], "--region 'eu-wset-1' is not an AWS region botocore knows; did you mean eu-west-1?"),
        (["--region", "euwest1"], "is not an AWS region botocore knows"),
    ],
)
@mock_aws
def test_bad_inputs_are_one_line_exit_2_and_create_nothing(capsys, args: list[str], says: str) -> None:
    full = {"--bucket": BUCKET, "--region": REGION, "--kms-alias": DEFAULT_ALIAS}
    full.update(dict(zip(args[::2], args[1::2], strict=True)))
    assert main(["bootstrap", *[x for kv in full.items() for x in kv]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err
    _nothing_in(boto3.session.Session())


@pytest.mark.parametrize("name", ["mesh-platform-state", "a.b.c", "abc", "team-1-pulumi", "x" * 63])
def test_valid_bucket_names_pass(name: str) -> None:
    assert bucket_problem(name) is None


def test_the_default_alias_passes() -> None:
    assert alias_problem(DEFAULT_ALIAS) is None


def _fail_once(monkeypatch, client, method: str) -> None:
    real = getattr(client, method)
    calls = []

    def failing(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, method)
        return real(**kwargs)

    monkeypatch.setattr(client, method, failing)


def _first_run_fails_at(monkeypatch, client: str, method: str) -> None:
    """The first Backend made fails once at ``client.method``; later runs (the reruns) do not."""
    made: list[Backend] = []

    class Recording(Backend):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            made.append(self)
            if len(made) == 1:
                _fail_once(monkeypatch, getattr(self, client), method)

    monkeypatch.setattr(backend_module, "Backend", Recording)


@mock_aws
def test_a_failed_create_alias_says_what_exists_and_a_rerun_reuses_the_key(monkeypatch, capsys) -> None:
    session = boto3.session.Session()
    kms = session.client("kms", region_name=REGION)
    _first_run_fails_at(monkeypatch, "kms", "create_alias")
    args = ["bootstrap", "--bucket", BUCKET, "--region", REGION]
    assert main(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: An error occurred (AccessDeniedException) when calling the create_alias operation")
    key = kms.list_keys()["Keys"][0]["KeyId"]
    assert err[1:] == [
        "made before the failure (kept; a rerun picks them up):",
        f"  changed  KMS key {key}: created (tagged {KEY_TAG}={DEFAULT_ALIAS})",
        f"to resume, fix the cause and run: python -m ops.backend bootstrap --bucket {BUCKET} --region {REGION} "
        f"--kms-alias {DEFAULT_ALIAS}",
    ]
    # check sees the half-made key; bootstrap again finishes with the same key, never a second one.
    assert main(["check", "--bucket", BUCKET, "--region", REGION]) == 1
    assert "was made for it; bootstrap gives it the alias" in capsys.readouterr().out
    assert main(args) == 0
    assert f"gave the alias to {key}, made by an earlier run" in capsys.readouterr().out
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key]
    assert_bucket_is_right(session)
    assert main(args) == 0
    assert "changed" not in capsys.readouterr().out
    assert len(kms.list_keys()["Keys"]) == 1


@mock_aws
def test_a_failure_after_the_bucket_lists_the_bucket_and_the_rerun_converges(monkeypatch, capsys) -> None:
    session = boto3.session.Session()
    _first_run_fails_at(monkeypatch, "s3", "put_bucket_versioning")
    args = ["bootstrap", "--bucket", BUCKET, "--region", REGION]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"changed  bucket {BUCKET}: created in {REGION}" in err and "KMS alias" in err and "to resume" in err
    assert main(args) == 0
    assert_bucket_is_right(session)
    assert len(session.client("kms", region_name=REGION).list_keys()["Keys"]) == 1


@mock_aws
def test_a_failure_before_any_change_says_nothing_was_made(monkeypatch, capsys) -> None:
    class Denied(Backend):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            _fail_once(monkeypatch, self.kms, "describe_key")

    monkeypatch.setattr(backend_module, "Backend", Denied)
    assert main(["bootstrap", "--bucket", BUCKET, "--region", REGION]) == 2
    assert "nothing was created or changed" in capsys.readouterr().err
    _nothing_in(boto3.session.Session())


def test_backend_help_documents_options_defaults_env_and_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for text in (
        "--bucket", "default: mesh-platform-state", "--region", "default: eu-west-1", "--kms-alias",
        "default: alias/mesh-platform-state", "AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL", "exit status:",
        "  0  ", "  1  ", "  2  bad input",
    ):  # fmt: skip
        assert text in out, text
