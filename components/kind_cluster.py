"""A local kind cluster with kind's own CNI disabled, so that Calico is the only CNI."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_command import local

from mesh_platform.kube import TOKEN, kubernetes_provider


@dataclass(frozen=True)
class KindClusterArgs:
    cluster_name: str
    node_image: str
    workers: int
    pod_subnet: str
    service_subnet: str
    port_mappings: tuple[tuple[int, int], ...]
    """(nodePort, hostPort) pairs: the gateway's NodePorts reachable on localhost."""
    discover_node_cidrs: bool = False
    """Read the IPv4 subnet(s) Docker really gave kind's network (``node_cidrs``)."""


def kind_config(args: KindClusterArgs) -> str:
    """The kind ``Cluster`` config, as YAML (also what ``triggers`` compares to decide a replace)."""
    control_plane = {
        "role": "control-plane",
        "image": args.node_image,
        # NodePorts answer on every node; mapping them on the control plane is enough.
        "extraPortMappings": [
            {"containerPort": node_port, "hostPort": host_port, "listenAddress": "127.0.0.1", "protocol": "TCP"}
            for node_port, host_port in args.port_mappings
        ],
    }
    workers = [{"role": "worker", "image": args.node_image} for _ in range(args.workers)]
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": args.cluster_name,
        "networking": {
            # Calico is the CNI; kind's kindnet would otherwise race it for the pod network.
            "disableDefaultCNI": True,
            "podSubnet": args.pod_subnet,
            "serviceSubnet": args.service_subnet,
            "apiServerAddress": "127.0.0.1",
        },
        "nodes": [control_plane, *workers],
    }
    return yaml.safe_dump(config, sort_keys=False)


# No `--wait`: without a CNI the nodes stay NotReady until Calico runs, so kind's wait would only
# time out (kind#1889). Readiness is gated on Calico's Installation instead. A kind cluster of the
# same name that this stack did not create is refused, never adopted: the stack would otherwise
# manage (and, at teardown, delete) someone else's cluster. If reading the kubeconfig fails right
# after creating, the new cluster is deleted again, so a failed create leaves nothing behind.
_CREATE = """set -eu
if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  echo "a kind cluster named $KIND_CLUSTER already exists and this stack did not create it;" \
    "delete it (kind delete cluster --name $KIND_CLUSTER) or set mesh-platform:cluster.name to another name" >&2
  exit 1
fi
kind create cluster --name "$KIND_CLUSTER" --config - >&2
kind get kubeconfig --name "$KIND_CLUSTER" || { kind delete cluster --name "$KIND_CLUSTER" >&2; exit 1; }
"""
# Idempotent: succeeds when the cluster is already gone.
_DELETE = 'kind delete cluster --name "$KIND_CLUSTER"'
# The nodes' addresses come from the Docker network kind attaches them to ("kind", or the one
# KIND_EXPERIMENTAL_DOCKER_NETWORK names); Docker picks its subnet from its address pools, which
# need not be 172.16.0.0/12. Only IPv4 subnets: the network is dual-stack by default.
_NODE_CIDRS = """set -eu
net="${KIND_EXPERIMENTAL_DOCKER_NETWORK:-kind}"
subnets=$(docker network inspect "$net" --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}')
v4=$(printf '%s\\n' $subnets | grep -E '^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+/[0-9]+$' || true)
if [ -z "$v4" ]; then
  echo "docker network $net has no IPv4 subnet; set mesh-platform:observability.nodeCidrs" >&2
  exit 1
fi
printf '%s\\n' "$v4"
"""


def ipv4_subnets(stdout: str) -> list[str]:
    """The IPv4 networks in the probe's output, normalised; refuses to return none (an empty
    ``ipBlock`` list would leave a policy rule without peers, which admits every destination)."""
    out = []
    for line in stdout.split():
        try:
            net = ipaddress.ip_network(line.strip(), strict=False)
        except ValueError:
            continue
        if net.version == 4:
            out.append(str(net))
    if not out:
        raise ValueError(f"no IPv4 subnet in the kind network probe's output {stdout!r}; set observability.nodeCidrs")
    return out


class KindCluster(pulumi.ComponentResource):
    cluster_name: str
    kind: Literal["kind"] = "kind"
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    node_cidrs: pulumi.Output[list[str]] | None = None
    """IPv4 subnets of the nodes' Docker network (when ``discover_node_cidrs``)."""

    def __init__(self, name: str, args: KindClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:KindCluster", name, None, opts)
        self.cluster_name = args.cluster_name
        config = kind_config(args)
        cluster = local.Command(
            f"{name}-kind",
            create=_CREATE,
            delete=_DELETE,
            stdin=config,
            environment={"KIND_CLUSTER": args.cluster_name},
            # Any change to the kind config needs a new cluster: kind cannot reconfigure one.
            triggers=[config],
            # stdout is the admin kubeconfig (client key included): never into `pulumi up`'s
            # output or CI logs. additional_secret_outputs protects only the stored value; the
            # command provider logs both streams unless told otherwise. kind's progress is on stderr.
            logging=local.Logging.STDERR,
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["stdout"],
                # Same name, so the old cluster must be gone before the new one is created.
                delete_before_replace=True,
            ),
        )
        self.kubeconfig = pulumi.Output.secret(cluster.stdout)
        if args.discover_node_cidrs:
            network = local.Command(
                f"{name}-kind-network",
                create=_NODE_CIDRS,
                # A new cluster may land on a re-created network: read it again.
                triggers=[config],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster]),
            )
            self.node_cidrs = network.stdout.apply(ipv4_subnets)
        # The command's ID is new for every cluster it creates (pulumi-command: a fresh unique ID
        # per Create), so a re-created cluster replaces the provider and every Kubernetes resource
        # is created again on it; the name alone would let `up` believe the empty cluster is full.
        identifier = pulumi.Output.concat(args.cluster_name, "/", cluster.id)
        self.provider = kubernetes_provider(f"{name}-k8s", self.kubeconfig, identifier, self)
        self.register_outputs({"kubeconfig": self.kubeconfig, "clusterName": self.cluster_name})
