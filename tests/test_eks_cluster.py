"""EksCluster: VPC, private node group, endpoint access, logging, Istio's SG rules, protect, kubeconfig."""

from __future__ import annotations

import pulumi
import pytest
from conftest import PROTECTABLE, objects, one, protection, run_config

from components.eks_cluster import ISTIO_CONTROL_PLANE_PORTS, LOG_TYPES
from offline.engine import SECRET


def test_cluster_is_private_with_an_allow_list_and_logs(like) -> None:
    rec = like("staging")
    cluster = one(rec, "eks:index:Cluster")
    assert cluster.inputs["endpointPrivateAccess"] is True
    assert cluster.inputs["endpointPublicAccess"] is True and cluster.inputs["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert cluster.inputs["enabledClusterLogTypes"] == LOG_TYPES
    assert cluster.inputs["version"] == "1.35" and cluster.inputs["authenticationMode"] == "API"
    assert cluster.inputs["nodeAssociatePublicIpAddress"] is False and cluster.inputs["skipDefaultNodeGroup"] is True
    assert cluster.inputs["vpcCniOptions"]["enableNetworkPolicy"] is False
    assert cluster.inputs["kubernetesServiceIpAddressRange"] == "10.96.0.0/16"


def test_no_allow_list_means_no_public_endpoint() -> None:
    rec = run_config(cluster={"provider": "eks", "eks": {"region": "eu-west-1"}})
    assert one(rec, "eks:index:Cluster").inputs["endpointPublicAccess"] is False


def test_vpc_spans_two_azs_with_public_and_private_subnets(like) -> None:
    vpc = one(like("staging"), "awsx:ec2:Vpc")
    assert vpc.inputs["numberOfAvailabilityZones"] == 2
    assert [s["type"] for s in vpc.inputs["subnetSpecs"]] == ["Public", "Private"]


def test_nodes_live_in_private_subnets(like) -> None:
    rec = like("staging")
    nodes = one(rec, "eks:index:ManagedNodeGroup")
    assert nodes.inputs["subnetIds"] == ["subnet-private-a", "subnet-private-b"]
    assert nodes.inputs["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 4}
    assert nodes.inputs["instanceTypes"] == ["m6i.large"]


def test_existing_vpc_and_subnets_are_used_as_given() -> None:
    eks = {
        "region": "eu-west-1",
        "vpcId": "vpc-123",
        "privateSubnetIds": ["subnet-a", "subnet-b"],
        "publicSubnetIds": ["subnet-p"],
    }
    rec = run_config(cluster={"provider": "eks", "eks": eks})
    assert not rec.by_type("awsx:ec2:Vpc")
    assert one(rec, "eks:index:ManagedNodeGroup").inputs["subnetIds"] == ["subnet-a", "subnet-b"]
    assert one(rec, "eks:index:Cluster").inputs["vpcId"] == "vpc-123"


def test_istio_ports_open_from_the_control_plane(like) -> None:
    rec = like("staging")
    sg = one(rec, "aws:ec2/securityGroup:SecurityGroup", "cluster-control-plane-sg")
    rules = {r.inputs["fromPort"]: r.inputs for r in rec.by_type("aws:ec2/securityGroupRule:SecurityGroupRule")}
    assert set(rules) == set(ISTIO_CONTROL_PLANE_PORTS) == {15017, 15012}
    for port, rule in rules.items():
        assert rule["type"] == "ingress" and rule["protocol"] == "tcp" and rule["toPort"] == port
        assert rule["securityGroupId"] == "sg-eks-managed" and rule["sourceSecurityGroupId"] == f"{sg.name}-id"


def test_node_role_has_only_the_node_policies(like) -> None:
    arns = sorted(r.inputs["policyArn"] for r in like("staging").by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"))
    assert arns == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    ]


def test_admin_access_entries_from_config() -> None:
    arn = "arn:aws:iam::123456789012:role/platform-admins"
    rec = run_config(cluster={"provider": "eks", "eks": {"region": "eu-west-1", "adminPrincipalArns": [arn]}})
    entries = one(rec, "eks:index:Cluster").inputs["accessEntries"]
    assert entries["admin-0"]["principalArn"] == arn
    assert entries["admin-0"]["accessPolicies"]["admin"]["accessScope"] == {"type": "cluster"}


def test_protect_covers_cluster_vpc_and_nodes_and_is_off_by_default(like) -> None:
    # The prod-like config sets eks.protect; the staging-like one leaves it unset.
    assert set(protection(like("prod")).values()) == {True}
    assert not any(protection(like("staging"))[t] for t in PROTECTABLE)


def test_two_replicas_allow_disruption_budgets(like) -> None:
    rec = like("prod")  # istiodReplicas and gatewayReplicas 2
    istiod = one(rec, "kubernetes:helm.sh/v3:Release", "istio-istiod").inputs["values"]
    gateway = one(rec, "kubernetes:helm.sh/v3:Release", "istio-gateway").inputs["values"]
    assert istiod["pilot"]["replicaCount"] == 2 and istiod["global"]["defaultPodDisruptionBudget"] == {"enabled": True}
    assert gateway["replicaCount"] == 2 and gateway["podDisruptionBudget"] == {"minAvailable": 1}


def test_kubeconfig_is_secret_and_feeds_the_provider(like) -> None:
    rec = like("staging")
    provider = one(rec, "pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == SECRET
    # Secret, so unreadable here: that it is the EKS cluster's shows as the dependency on it.
    assert one(rec, "eks:index:Cluster").urn in provider.dependencies
    assert rec.outputs["kubeconfig"] == SECRET


def test_calico_is_policy_only_and_the_gateway_an_nlb_on_eks(like) -> None:
    rec = like("staging")
    (inst,) = objects(rec, "Installation")
    assert inst["spec"]["kubernetesProvider"] == "EKS" and inst["spec"]["cni"] == {"type": "AmazonVPC"}
    svc = one(rec, "kubernetes:helm.sh/v3:Release", "istio-gateway").inputs["values"]["service"]
    assert svc["type"] == "LoadBalancer"
    assert svc["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
    assert all("nodePort" not in p for p in svc["ports"])


def test_aws_resources_use_the_regional_provider(like) -> None:
    rec = like("staging")
    aws = one(rec, "pulumi:providers:aws")
    assert aws.inputs["region"] == "eu-west-1"
    for r in rec.resources:
        if r.type.startswith("aws:") and r.custom:
            assert r.provider == aws.urn, r.urn


@pytest.mark.parametrize(
    ("eks", "message"),
    [
        ({"region": "eu-west-1", "minNodes": 3, "desiredNodes": 2}, "minNodes <= desiredNodes <= maxNodes"),
        ({"region": "eu-west-1", "vpcId": "vpc-1", "privateSubnetIds": ["subnet-a"]}, "at least two privateSubnetIds"),
        (
            {"region": "eu-west-1", "availabilityZones": 1},
            "mesh-platform:cluster.eks.availabilityZones: Input should be greater than or equal to 2",
        ),
        ({"region": "eu-west-1", "publicAccessCidrs": ["0.0.0.0/33"]}, "mesh-platform:cluster.eks.publicAccessCidrs[0]"),
        ({"region": "eu-west-1", "adminPrincipalArns": ["admin"]}, "mesh-platform:cluster.eks.adminPrincipalArns[0]"),
    ],
)
def test_bad_eks_config(eks, message) -> None:
    with pytest.raises(pulumi.RunError) as err:
        run_config(cluster={"provider": "eks", "eks": eks})
    assert message in str(err.value)
