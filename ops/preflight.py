"""Preflight for cloud stacks: what must hold in AWS before ``pulumi up`` is worth starting.

    python -m ops.preflight --stack staging

Checks, each failure one clear line: credentials resolve (STS), the region exists, EKS offers the
requested Kubernetes version there, and a configured VPC and its subnets exist, belong together
and span at least two availability zones. Exit status 0 only when every check passes. Stacks that
are not on EKS have nothing to check here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from mesh_platform.settings import EksSettings, Settings
from offline import cli, engine


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def _error(err: Exception) -> str:
    if isinstance(err, ClientError):
        e = err.response.get("Error", {})
        return f"{e.get('Code')}: {e.get('Message')}"
    return str(err)


def credentials(session: boto3.session.Session, region: str) -> Check:
    try:
        who = session.client("sts", region_name=region).get_caller_identity()
        return Check("credentials", True, f"{who['Arn']} (account {who['Account']})")
    except (NoCredentialsError, ClientError, BotoCoreError) as err:
        return Check("credentials", False, f"no usable AWS credentials ({_error(err)}); set AWS_PROFILE or run `aws sso login`")


def region_exists(session: boto3.session.Session, region: str) -> Check:
    try:
        regions = session.client("ec2", region_name="us-east-1").describe_regions(AllRegions=True)["Regions"]
    except (ClientError, BotoCoreError) as err:
        return Check("region", False, f"cannot list regions ({_error(err)})")
    names = {r["RegionName"]: r.get("OptInStatus", "opt-in-not-required") for r in regions}
    if region not in names:
        return Check("region", False, f"{region} is not an AWS region")
    if names[region] == "not-opted-in":
        return Check("region", False, f"{region} exists but this account has not opted in to it")
    return Check("region", True, region)


def eks_version(session: boto3.session.Session, region: str, version: str) -> Check:
    try:
        offered = session.client("eks", region_name=region).describe_cluster_versions(clusterVersions=[version])[
            "clusterVersions"
        ]
    except (ClientError, BotoCoreError) as err:
        return Check("EKS version", False, f"cannot ask EKS for its versions in {region} ({_error(err)})")
    usable = [v for v in offered if v.get("clusterVersion") == version and v.get("status", "STANDARD_SUPPORT") != "UNSUPPORTED"]
    if not usable:
        return Check(
            "EKS version",
            False,
            f"EKS does not offer Kubernetes {version} in {region}; set cluster.kubernetesVersion to an offered one",
        )
    return Check("EKS version", True, f"{version} ({usable[0].get('status', 'offered')})")


def network(session: boto3.session.Session, region: str, eks: EksSettings) -> Check:
    if not eks.vpc_id:
        return Check("network", True, f"the stack creates its VPC ({eks.vpc_cidr}, {eks.availability_zones} AZs)")
    ec2 = session.client("ec2", region_name=region)
    try:
        ec2.describe_vpcs(VpcIds=[eks.vpc_id])
    except ClientError as err:
        return Check("network", False, f"VPC {eks.vpc_id} not found in {region} ({_error(err)})")
    ids = [*eks.private_subnet_ids, *eks.public_subnet_ids]
    try:
        subnets = ec2.describe_subnets(SubnetIds=ids)["Subnets"]
    except ClientError as err:
        return Check("network", False, f"subnets {', '.join(ids)}: {_error(err)}")
    elsewhere = sorted(s["SubnetId"] for s in subnets if s["VpcId"] != eks.vpc_id)
    if elsewhere:
        return Check("network", False, f"subnets {', '.join(elsewhere)} are not in VPC {eks.vpc_id}")
    zones = sorted({s["AvailabilityZone"] for s in subnets if s["SubnetId"] in eks.private_subnet_ids})
    if len(zones) < 2:
        return Check(
            "network",
            False,
            f"the private subnets span {len(zones)} availability zone(s) ({', '.join(zones)}); EKS needs at least two",
        )
    return Check("network", True, f"VPC {eks.vpc_id}, private subnets in {', '.join(zones)}")


def run(settings: Settings, session: boto3.session.Session) -> list[Check]:
    eks = settings.cluster.eks
    assert eks is not None
    checks = [credentials(session, eks.region)]
    if not checks[0].ok:
        return checks  # nothing else can be asked without credentials
    checks.append(region_exists(session, eks.region))
    if checks[-1].ok:
        checks.append(eks_version(session, eks.region, settings.cluster.kubernetes_version))
        checks.append(network(session, eks.region, eks))
    return checks


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str] | None) -> int:
    parser = cli.parser(
        "python -m ops.preflight",
        __doc__,
        env=["AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"],
        exits=[(0, "every check passed, or the stack is not on EKS"), (1, "a check failed (its FAIL line says why)")],
    )
    parser.add_argument(
        "--stack", required=True, help="stack name: checks stacks/Pulumi.<stack>.yaml (its cluster.eks.region is used)"
    )
    args = parser.parse_args(argv)
    settings = engine.settings(engine.stack_file(args.stack), args.stack)  # invalid: pulumi.RunError, exit 2
    if settings.cluster.provider != "eks":
        print(f"{args.stack}: provider {settings.cluster.provider}; no cloud preflight needed")
        return 0
    checks = run(settings, boto3.session.Session())
    for c in checks:
        print(c)
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
