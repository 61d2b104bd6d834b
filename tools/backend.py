"""A Pulumi state backend a team can share: an S3 bucket and a KMS key, created or checked.

    python -m tools.backend bootstrap --bucket NAME --region R [--kms-alias alias/mesh-platform-state]
    python -m tools.backend check     --bucket NAME --region R [--kms-alias ...]

``bootstrap`` makes the bucket right and changes nothing that already is: versioning on (state
history you can roll back to), default encryption with the KMS key, every public-access block on,
object ownership enforced, and a bucket policy that denies any request not made over TLS. It also
creates the KMS key (rotation on) behind the alias used as Pulumi's secrets provider. Running it
twice changes nothing. ``check`` reports what is missing or wrong and changes nothing; its exit
status is 1 when anything is.

Then: ``pulumi login s3://NAME?region=R`` and ``pulumi stack init STACK --secrets-provider
"awskms://ALIAS?region=R"`` (README.md, "Environments").
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_ALIAS = "alias/mesh-platform-state"
TLS_ONLY_SID = "DenyInsecureTransport"
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


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

    # --- KMS key ------------------------------------------------------------------------------

    def key_id(self) -> str | None:
        try:
            return self.kms.describe_key(KeyId=self.alias)["KeyMetadata"]["KeyId"]
        except ClientError as err:
            if _code(err) == "NotFoundException":
                return None
            raise

    def ensure_key(self, fix: bool) -> list[Finding]:
        key = self.key_id()
        if key is None:
            if not fix:
                return [Finding(f"KMS key {self.alias}", False, "does not exist")]
            key = self.kms.create_key(Description="Pulumi state and secrets for mesh-platform", KeyUsage="ENCRYPT_DECRYPT")[
                "KeyMetadata"
            ]["KeyId"]
            self.kms.create_alias(AliasName=self.alias, TargetKeyId=key)
            self.kms.enable_key_rotation(KeyId=key)
            return [Finding(f"KMS key {self.alias}", True, f"created {key} with rotation on", changed=True)]
        out = [Finding(f"KMS key {self.alias}", True, f"exists ({key})")]
        if not self.kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]:
            if fix:
                self.kms.enable_key_rotation(KeyId=key)
                out.append(Finding("KMS key rotation", True, "enabled", changed=True))
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
            kwargs: dict = {"Bucket": self.bucket, "ObjectOwnership": "BucketOwnerEnforced"}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self.s3.create_bucket(**kwargs)
            out = [Finding(f"bucket {self.bucket}", True, f"created in {self.region}", changed=True)]
        else:
            out = [Finding(f"bucket {self.bucket}", True, "exists")]
        for check in (self._versioning, self._encryption, self._public_access, self._tls_only):
            out.append(check(fix))
        return out

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
    parser = argparse.ArgumentParser(prog="python -m tools.backend", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["bootstrap", "check"])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--kms-alias", default=DEFAULT_ALIAS)
    args = parser.parse_args(argv)
    try:
        findings = Backend(boto3.session.Session(), args.bucket, args.region, args.kms_alias).run(fix=args.command == "bootstrap")
    except (ClientError, BotoCoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for f in findings:
        print(f)
    if args.command == "bootstrap" and all(f.ok for f in findings):
        print(f"\npulumi login 's3://{args.bucket}?region={args.region}'")
        print(f"pulumi stack init STACK --secrets-provider 'awskms://{args.kms_alias}?region={args.region}'")
    return 0 if all(f.ok for f in findings) else 1


if __name__ == "__main__":
    sys.exit(main())
