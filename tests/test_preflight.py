"""ops.preflight against moto (STS, EC2); EKS's DescribeClusterVersions, which moto lacks, via botocore's Stubber."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mesh_platform.loader import parse
from ops import preflight

REGION = "eu-west-1"


pytestmark = pytest.mark.usefixtures("aws_credentials")


def settings(**eks):
    return parse({"cluster": {"provider": "eks", "kubernetesVersion": "1.36", "eks": {"region": REGION, **eks}}}, "staging")


class StubbedEks(boto3.session.Session):
    """A session whose EKS client answers DescribeClusterVersions from a stub; all else is moto."""

    def __init__(self, offered: list[dict]) -> None:
        super().__init__()
        self.offered = offered

    def client(self, name, *args, **kwargs):
        client = super().client(name, *args, **kwargs)
        if name == "eks":
            stub = Stubber(client)
            stub.add_response("describe_cluster_versions", {"clusterVersions": self.offered}, {"clusterVersions": ["1.36"]})
            stub.activate()
        return client


OFFERED = [{"clusterVersion": "1.36", "status": "STANDARD_SUPPORT"}]


@mock_aws
def test_everything_passes_for_a_created_vpc() -> None:
    checks = preflight.run(settings(), StubbedEks(OFFERED))
    assert [c.name for c in checks] == ["credentials", "region", "EKS version", "network"]
    assert all(c.ok for c in checks), [str(c) for c in checks]
    assert checks[0].detail == "arn:aws:sts::123456789012:user/moto (account 123456789012)"


@mock_aws
def test_unknown_region() -> None:
    s = parse({"cluster": {"provider": "eks", "eks": {"region": "xx-nowhere-1"}}}, "staging")
    checks = preflight.run(s, StubbedEks(OFFERED))
    assert str(checks[-1]) == "FAIL  region: xx-nowhere-1 is not an AWS region"


@mock_aws
def test_version_not_offered() -> None:
    checks = preflight.run(settings(), StubbedEks([]))
    assert (
        str(checks[2])
        == f"FAIL  EKS version: EKS does not offer Kubernetes 1.36 in {REGION}; set cluster.kubernetesVersion to an offered one"
    )


def _vpc(zones: list[str]):
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(zones)
    ]
    return vpc, subnets


@mock_aws
def test_existing_network_must_span_two_zones() -> None:
    vpc, (a, b, p) = _vpc([f"{REGION}a", f"{REGION}b", f"{REGION}a"])
    ok = preflight.run(settings(vpcId=vpc, privateSubnetIds=[a, b], publicSubnetIds=[p]), StubbedEks(OFFERED))
    assert ok[-1].ok and ok[-1].detail == f"VPC {vpc}, private subnets in {REGION}a, {REGION}b"
    vpc2, (c, d, q) = _vpc([f"{REGION}a", f"{REGION}a", f"{REGION}b"])
    one_zone = preflight.run(settings(vpcId=vpc2, privateSubnetIds=[c, d], publicSubnetIds=[q]), StubbedEks(OFFERED))
    assert (
        str(one_zone[-1]) == f"FAIL  network: the private subnets span 1 availability zone(s) ({REGION}a); EKS needs at least two"
    )


@mock_aws
def test_missing_vpc_and_foreign_subnets() -> None:
    _, (a, b, p) = _vpc([f"{REGION}a", f"{REGION}b", f"{REGION}c"])
    checks = preflight.run(settings(vpcId="vpc-12345678", privateSubnetIds=[a, b], publicSubnetIds=[p]), StubbedEks(OFFERED))
    assert checks[-1].ok is False and checks[-1].detail.startswith(f"VPC vpc-12345678 not found in {REGION}")
    other_vpc, _ = _vpc([f"{REGION}a"])
    checks = preflight.run(settings(vpcId=other_vpc, privateSubnetIds=[a, b], publicSubnetIds=[p]), StubbedEks(OFFERED))
    assert "are not in VPC" in checks[-1].detail


def test_no_credentials_is_one_clear_failure(monkeypatch, tmp_path) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    checks = preflight.run(settings(), boto3.session.Session())
    assert len(checks) == 1 and checks[0].ok is False
    assert checks[0].detail.startswith("no usable AWS credentials") and "aws sso login" in checks[0].detail


def test_kind_stack_needs_no_preflight(capsys) -> None:
    assert preflight.main(["--stack", "dev"]) == 0
    assert "no cloud preflight needed" in capsys.readouterr().out


def test_an_unknown_stack_is_one_line_and_exit_2(capsys) -> None:
    assert preflight.main(["--stack", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read stack file" in err and "Pulumi.nope.yaml" in err


def test_preflight_help_documents_the_stack_env_and_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        preflight.main(["--help"])
    out = capsys.readouterr().out
    for text in ("--stack", "AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL", "  1  a check failed", "  2  bad input"):
        assert text in out, text
