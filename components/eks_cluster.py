"""An EKS cluster on the maintained ``pulumi_eks`` component, in a VPC from ``pulumi_awsx``.

Why these: ``pulumi_eks`` already wires the control plane, OIDC, access entries, the VPC CNI add-on
and a kubeconfig that authenticates with ``aws eks get-token``; ``awsx.ec2.Vpc`` lays out public and
private subnets per AZ with NAT. What is ours: the private-only node group, the access list for the
public endpoint, control-plane logging, the VPC CNI's own policy agent switched off (Calico enforces
NetworkPolicy), and the security-group rules Istio needs from the control plane to the nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from mesh_platform.kube import TOKEN, kubernetes_provider
from mesh_platform.settings import EksSettings

#: Every control-plane log type, to CloudWatch.
LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
#: Istio's ports the API server must reach on the nodes: the sidecar-injector/validation
#: webhook (istiod 15017) and xDS/CA (15012), per EKS Blueprints' Istio pattern.
ISTIO_CONTROL_PLANE_PORTS = {15017: "Istio webhooks (istiod)", 15012: "Istio xDS and CA (istiod)"}
_NODE_POLICIES = {
    "worker": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "ecr": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "cni": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
}


@dataclass(frozen=True)
class EksClusterArgs:
    cluster_name: str
    kubernetes_version: str
    service_subnet: str
    eks: EksSettings


class EksCluster(pulumi.ComponentResource):
    cluster_name: str
    kind: Literal["eks"] = "eks"
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    #: Never looked up: the nodes are in the VPC the stack names or creates (observability.nodeCidrs).
    node_cidrs: pulumi.Output[list[str]] | None = None
    vpc_id: pulumi.Output[str]

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:EksCluster", name, None, opts)
        s = args.eks
        self.cluster_name = args.cluster_name
        aws_provider = aws.Provider(f"{name}-aws", region=s.region, opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider})
        # prod protects what is expensive or slow to rebuild; lab and staging can be torn down.
        kept = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=s.protect))

        if s.vpc_id:
            vpc_id: pulumi.Input[str] = s.vpc_id
            private: pulumi.Input[Sequence[str]] = list(s.private_subnet_ids)
            public: pulumi.Input[Sequence[str]] = list(s.public_subnet_ids)
        else:
            vpc = awsx.ec2.Vpc(
                f"{name}-vpc",
                cidr_block=s.vpc_cidr,
                number_of_availability_zones=s.availability_zones,
                nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(strategy=awsx.ec2.NatGatewayStrategy(s.nat_gateways)),
                subnet_specs=[
                    # The tags let the AWS Load Balancer Controller place the gateway's NLB.
                    awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PUBLIC, tags={"kubernetes.io/role/elb": "1"}),
                    awsx.ec2.SubnetSpecArgs(type=awsx.ec2.SubnetType.PRIVATE, tags={"kubernetes.io/role/internal-elb": "1"}),
                ],
                tags={"Name": f"{args.cluster_name}-vpc"},
                opts=kept,
            )
            vpc_id, private, public = vpc.vpc_id, vpc.private_subnet_ids, vpc.public_subnet_ids
        self.vpc_id = pulumi.Output.from_input(vpc_id)

        node_role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
                }
            ),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(f"{name}-node-{key}", role=node_role.name, policy_arn=arn, opts=child)
            for key, arn in _NODE_POLICIES.items()
        ]
        control_plane_sg = aws.ec2.SecurityGroup(
            f"{name}-control-plane-sg",
            vpc_id=vpc_id,
            description=f"Extra security group of the {args.cluster_name} control plane (source of Istio webhook calls)",
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
            opts=child,
        )
        cluster = eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            vpc_id=vpc_id,
            public_subnet_ids=public,
            private_subnet_ids=private,
            node_associate_public_ip_address=False,
            skip_default_node_group=True,
            cluster_security_group=control_plane_sg,
            endpoint_private_access=True,
            # No allow list, no public endpoint: reach the API from inside the VPC (VPN, bastion).
            endpoint_public_access=bool(s.public_access_cidrs),
            public_access_cidrs=list(s.public_access_cidrs) or None,
            kubernetes_service_ip_address_range=args.service_subnet,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries={
                f"admin-{i}": eks.AccessEntryArgs(
                    principal_arn=arn,
                    access_policies={
                        "admin": eks.AccessPolicyAssociationArgs(
                            policy_arn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                        )
                    },
                )
                for i, arn in enumerate(s.admin_principal_arns)
            },
            enabled_cluster_log_types=LOG_TYPES,
            create_oidc_provider=True,
            # Calico enforces NetworkPolicy; two enforcers would fight over the same pods.
            vpc_cni_options=eks.VpcCniOptionsArgs(enable_network_policy=False),
            deletion_protection=s.protect,
            opts=pulumi.ResourceOptions.merge(kept, pulumi.ResourceOptions(depends_on=attachments)),
        )
        eks.ManagedNodeGroup(
            f"{name}-nodes",
            cluster=cluster,
            node_role=node_role,
            # Nodes only in private subnets: nothing on them is reachable from the internet directly.
            subnet_ids=private,
            instance_types=[s.instance_type],
            scaling_config={"min_size": s.min_nodes, "desired_size": s.desired_nodes, "max_size": s.max_nodes},
            opts=kept,
        )
        # Managed nodes sit in the EKS-created cluster security group; open Istio's ports on it
        # from the control plane's extra group, explicitly and with a reason, rather than rely
        # on that group's catch-all self rule.
        eks_managed_sg = aws.eks.get_cluster_output(
            name=args.cluster_name, opts=pulumi.InvokeOutputOptions(parent=self, provider=aws_provider, depends_on=[cluster])
        ).vpc_config.cluster_security_group_id
        for port, why in ISTIO_CONTROL_PLANE_PORTS.items():
            aws.ec2.SecurityGroupRule(
                f"{name}-istio-{port}",
                type="ingress",
                security_group_id=eks_managed_sg,
                source_security_group_id=control_plane_sg.id,
                protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"{why} from the control plane",
                opts=child,
            )
        self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig_json)
        self.provider = kubernetes_provider(f"{name}-k8s", self.kubeconfig, args.cluster_name, self)
        self.register_outputs({"kubeconfig": self.kubeconfig, "clusterName": args.cluster_name, "vpcId": self.vpc_id})
