"""A Pulumi state backend a team can share: an S3 bucket and a KMS key, created or checked.

    python -m ops.backend bootstrap --bucket NAME --region R [--kms-alias alias/mesh-platform-state]
    python -m ops.backend check     --bucket NAME --region R [--kms-alias ...]

``bootstrap`` makes the bucket right and changes nothing that already is: versioning on (state
history you can roll back to), default encryption with the KMS key, every public-access block on,
object ownership enforced (BucketOwnerEnforced: ACLs off, the bucket owner owns every object), and
a bucket policy that denies any request not made over TLS. It also creates the KMS key (rotation
on) behind the alias used as Pulumi's secrets provider. Running it twice changes nothing.
``check`` reports what is missing or wrong and changes nothing; its exit status is 1 when anything
is.

Every input is checked before anything is created: the bucket name against S3's naming rules, the
alias against KMS's (``alias/<name>``), the region against the ones botocore knows. If a step
fails anyway (permissions, a throttled call), the command lists what it made so far and how to
resume: the same command again, which picks up what exists. A key it created whose alias could
not be made is found again by its tag, so a rerun never leaves a second key.

Then: ``pulumi login s3://NAME?region=R`` and ``pulumi stack init STACK --secrets-provider
"awskms://ALIAS?region=R"`` (README.md, "Environments").
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from offline import cli

DEFAULT_ALIAS = "alias/mesh-platform-state"
DEFAULT_BUCKET = "mesh-platform-state"
DEFAULT_REGION = "eu-west-1"
#: Tag on the KMS key this command creates, whose value is the alias it was made for: a rerun
#: after a failed CreateAlias finds the key by it instead of creating another.
KEY_TAG = "mesh-platform:alias"
OWNERSHIP = "BucketOwnerEnforced"
TLS_ONLY_SID = "DenyInsecureTransport"
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


# --- inputs, checked before anything is created ------------------------------------------------

# General purpose bucket naming rules, docs.aws.amazon.com AmazonS3/latest/userguide/bucketnamingrules.html.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# KMS CreateAlias: AliasName 1-256 characters of [a-zA-Z0-9:/_-] beginning with alias/; the
# alias/aws/ prefix is reserved for AWS managed keys (docs.aws.amazon.com kms APIReference CreateAlias).
_ALIAS = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")


def bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a valid S3 bucket name, or None."""
    if not _BUCKET.match(name):
        return "3-63 lower-case letters, digits, '.' and '-', beginning and ending with a letter or digit"
    if ".." in name:
        return "no two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
        return "not formatted as an IP address"
    except ValueError:
        pass
    bad = [p for p in _BUCKET_PREFIXES if name.startswith(p)] + [x for x in _BUCKET_SUFFIXES if name.endswith(x)]
    if bad:
        return f"the prefix or suffix {bad[0]!r} is reserved by S3"
    return None


def alias_problem(alias: str) -> str | None:
    """Why ``alias`` is not a KMS alias name this command may create, or None."""
    if not alias.startswith("alias/"):
        return f"a KMS alias starts with 'alias/' (did you mean alias/{alias}?)"
    if alias.startswith("alias/aws/"):
        return "alias/aws/ is reserved for keys AWS manages"
    if not _ALIAS.match(alias):
        return "alias/ then 1-250 letters, digits, '/', '_' and '-'"
    return None


def known_regions(session: boto3.session.Session) -> set[str]:
    """Every region botocore's endpoint data knows for S3 and KMS, in any partition."""
    return {
        r
        for partition in session.get_available_partitions()
        for r in set(session.get_available_regions("s3", partition)) & set(session.get_available_regions("kms", partition))
    }


def validate(session: boto3.session.Session, bucket: str, region: str, alias: str) -> None:
    """Raise ``cli.UsageError`` naming the first bad input; nothing has been created yet."""
    if problem := bucket_problem(bucket):
        raise cli.UsageError(f"--bucket {bucket!r} is not a valid S3 bucket name: {problem}")
    if problem := alias_problem(alias):
        raise cli.UsageError(f"--kms-alias {alias!r}: {problem}")
    regions = known_regions(session)
    if region not in regions:
        import difflib

        close = difflib.get_close_matches(region, sorted(regions), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise cli.UsageError(f"--region {region!r} is not an AWS region botocore knows{hint}")


@dataclass(frozen=True)
class Finding:
    item: str
    ok: bool
    """True when it was already right (or, in bootstrap, has just been made right)."""
    detail: str
    changed: bool = False

    def __str__(self) -> str:
        mark = "changed" if self.changed else ("ok" if self.ok else "MISSING")
        return f"{mark:8} {self.item}: {self.detail}"


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def tls_only_statement(bucket: str) -> dict:
    return {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


class Backend:
    def __init__(self, session: boto3.session.Session, bucket: str, region: str, alias: str = DEFAULT_ALIAS) -> None:
        self.s3 = session.client("s3", region_name=region)
        self.kms = session.client("kms", region_name=region)
        self.bucket, self.region, self.alias = bucket, region, alias
        #: What this run has created or changed so far, for the message when a later step fails.
        self.done: list[Finding] = []

    def _did(self, finding: Finding) -> Finding:
        if finding.changed:
            self.done.append(finding)
        return finding

    # --- KMS key ------------------------------------------------------------------------------

    def key_id(self) -> str | None:
        try:
            return self.kms.describe_key(KeyId=self.alias)["KeyMetadata"]["KeyId"]
        except ClientError as err:
            if _code(err) == "NotFoundException":
                return None
            raise

    def _orphan(self) -> str | None:
        """A key an earlier run created for this alias whose alias was never made (found by its tag)."""
        for page in self.kms.get_paginator("list_keys").paginate():
            for entry in page["Keys"]:
                try:
                    tags = self.kms.list_resource_tags(KeyId=entry["KeyId"])["Tags"]
                    if {"TagKey": KEY_TAG, "TagValue": self.alias} not in tags:
                        continue
                    state = self.kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]["KeyState"]
                except ClientError as err:
                    if _code(err) in ("AccessDeniedException", "NotFoundException"):
                        continue  # another team's key this role may not read
                    raise
                if state == "Enabled":
                    return entry["KeyId"]
        return None

    def ensure_key(self, fix: bool) -> list[Finding]:
        key = self.key_id()
        if key is None:
            orphan = self._orphan()
            if not fix:
                detail = (
                    f"does not exist (key {orphan} was made for it; bootstrap gives it the alias)" if orphan else "does not exist"
                )
                return [Finding(f"KMS key {self.alias}", False, detail)]
            if orphan:
                key, made = orphan, f"gave the alias to {orphan}, made by an earlier run"
            else:
                key = self.kms.create_key(
                    Description="Pulumi state and secrets for mesh-platform",
                    KeyUsage="ENCRYPT_DECRYPT",
                    Tags=[{"TagKey": KEY_TAG, "TagValue": self.alias}],
                )["KeyMetadata"]["KeyId"]
                made = f"created {key}"
                self.done.append(Finding(f"KMS key {key}", True, f"created (tagged {KEY_TAG}={self.alias})", changed=True))
            self.kms.create_alias(AliasName=self.alias, TargetKeyId=key)
            self._did(Finding(f"KMS alias {self.alias}", True, f"points at {key}", changed=True))
            self.kms.enable_key_rotation(KeyId=key)
            return [Finding(f"KMS key {self.alias}", True, f"{made} with rotation on", changed=True)]
        out = [Finding(f"KMS key {self.alias}", True, f"exists ({key})")]
        if not self.kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]:
            if fix:
                self.kms.enable_key_rotation(KeyId=key)
                out.append(self._did(Finding("KMS key rotation", True, "enabled", changed=True)))
            else:
                out.append(Finding("KMS key rotation", False, "is off"))
        else:
            out.append(Finding("KMS key rotation", True, "on"))
        return out

    # --- bucket -------------------------------------------------------------------------------

    def _exists(self) -> bool:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
            return True
        except ClientError as err:
            if _code(err) in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise

    def ensure_bucket(self, fix: bool) -> list[Finding]:
        if not self._exists():
            if not fix:
                return [Finding(f"bucket {self.bucket}", False, "does not exist")]
            kwargs: dict = {"Bucket": self.bucket, "ObjectOwnership": OWNERSHIP}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self.s3.create_bucket(**kwargs)
            out = [self._did(Finding(f"bucket {self.bucket}", True, f"created in {self.region}", changed=True))]
        else:
            out = [Finding(f"bucket {self.bucket}", True, "exists")]
        for check in (self._ownership, self._versioning, self._encryption, self._public_access, self._tls_only):
            out.append(self._did(check(fix)))
        return out

    def _ownership(self, fix: bool) -> Finding:
        try:
            rules = self.s3.get_bucket_ownership_controls(Bucket=self.bucket)["OwnershipControls"]["Rules"]
        except ClientError as err:
            if _code(err) != "OwnershipControlsNotFoundError":
                raise
            rules = []
        current = rules[0]["ObjectOwnership"] if rules else "not set (ACLs decide)"
        if current == OWNERSHIP:
            return Finding("object ownership", True, f"{OWNERSHIP} (ACLs off)")
        if not fix:
            return Finding("object ownership", False, f"is {current}, not {OWNERSHIP}")
        self.s3.put_bucket_ownership_controls(Bucket=self.bucket, OwnershipControls={"Rules": [{"ObjectOwnership": OWNERSHIP}]})
        return Finding("object ownership", True, f"{OWNERSHIP} (was {current})", changed=True)

    def _versioning(self, fix: bool) -> Finding:
        if self.s3.get_bucket_versioning(Bucket=self.bucket).get("Status") == "Enabled":
            return Finding("versioning", True, "enabled")
        if not fix:
            return Finding("versioning", False, "is not enabled")
        self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        return Finding("versioning", True, "enabled", changed=True)

    def _encryption(self, fix: bool) -> Finding:
        key = self.key_id()
        try:
            rules = self.s3.get_bucket_encryption(Bucket=self.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as err:
            if _code(err) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            rules = []
        default = rules[0]["ApplyServerSideEncryptionByDefault"] if rules else {}
        if default.get("SSEAlgorithm") == "aws:kms" and key and default.get("KMSMasterKeyID", "").endswith(key):
            return Finding("default encryption", True, f"SSE-KMS with {self.alias}")
        if not fix:
            return Finding(
                "default encryption", False, f"is {default.get('SSEAlgorithm', 'not set')}, not SSE-KMS with {self.alias}"
            )
        if key is None:
            return Finding("default encryption", False, f"needs the KMS key {self.alias} first")
        self.s3.put_bucket_encryption(
            Bucket=self.bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )
        return Finding("default encryption", True, f"SSE-KMS with {self.alias}", changed=True)

    def _public_access(self, fix: bool) -> Finding:
        try:
            current = self.s3.get_public_access_block(Bucket=self.bucket)["PublicAccessBlockConfiguration"]
        except ClientError as err:
            if _code(err) != "NoSuchPublicAccessBlockConfiguration":
                raise
            current = {}
        if all(current.get(k) for k in PUBLIC_ACCESS_BLOCK):
            return Finding("public access block", True, "all four blocks on")
        if not fix:
            off = sorted(k for k in PUBLIC_ACCESS_BLOCK if not current.get(k))
            return Finding("public access block", False, f"off: {', '.join(off)}")
        self.s3.put_public_access_block(Bucket=self.bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
        return Finding("public access block", True, "all four blocks on", changed=True)

    def _tls_only(self, fix: bool) -> Finding:
        try:
            policy = json.loads(self.s3.get_bucket_policy(Bucket=self.bucket)["Policy"])
        except ClientError as err:
            if _code(err) != "NoSuchBucketPolicy":
                raise
            policy = {"Version": "2012-10-17", "Statement": []}
        statements = policy.get("Statement", [])
        if any(
            s.get("Effect") == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
            for s in statements
        ):
            return Finding("bucket policy", True, "denies requests without TLS")
        if not fix:
            return Finding("bucket policy", False, "does not deny requests without TLS")
        policy["Statement"] = [*statements, tls_only_statement(self.bucket)]
        self.s3.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))
        return Finding("bucket policy", True, "denies requests without TLS", changed=True)

    def run(self, fix: bool) -> list[Finding]:
        # The key first: the bucket's default encryption names it.
        return self.ensure_key(fix) + self.ensure_bucket(fix)


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str] | None) -> int:
    parser = cli.parser(
        "python -m ops.backend",
        __doc__,
        env=["AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"],
        exits=[
            (0, "everything is right (bootstrap: made right)"),
            (1, "check: something is missing or wrong, one MISSING line each; bootstrap: a step failed, what exists is listed"),
        ],
    )
    parser.add_argument(
        "command", choices=["bootstrap", "check"], help="bootstrap: create or fix; check: report and change nothing"
    )
    parser.add_argument("--bucket", default=DEFAULT_BUCKET, help="S3 bucket for the state (the Makefile's STATE_BUCKET)")
    parser.add_argument("--region", default=DEFAULT_REGION, help="AWS region of the bucket and key (the Makefile's AWS_REGION)")
    parser.add_argument(
        "--kms-alias", default=DEFAULT_ALIAS, help="alias of the KMS key, alias/<name> (the Makefile's KMS_ALIAS)"
    )
    args = parser.parse_args(argv)
    session = boto3.session.Session()
    validate(session, args.bucket, args.region, args.kms_alias)
    backend = Backend(session, args.bucket, args.region, args.kms_alias)
    try:
        findings = backend.run(fix=args.command == "bootstrap")
    except (ClientError, BotoCoreError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        if backend.done:
            print("made before the failure (kept; a rerun picks them up):", file=sys.stderr)
            for f in backend.done:
                print(f"  {f}", file=sys.stderr)
        else:
            print("nothing was created or changed", file=sys.stderr)
        rerun = f"python -m ops.backend {args.command} --bucket {args.bucket} --region {args.region} --kms-alias {args.kms_alias}"
        print(f"to resume, fix the cause and run: {rerun}", file=sys.stderr)
        return 1 if backend.done else 2
    for f in findings:
        print(f)
    if args.command == "bootstrap" and all(f.ok for f in findings):
        print(f"\npulumi login 's3://{args.bucket}?region={args.region}'")
        print(f"pulumi stack init STACK --secrets-provider 'awskms://{args.kms_alias}?region={args.region}'")
    return 0 if all(f.ok for f in findings) else 1


if __name__ == "__main__":
    sys.exit(main())
