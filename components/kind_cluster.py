"""A local kind cluster with kind's own CNI disabled, so that Calico is the only CNI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_command import local

from components import TOKEN, kubernetes_provider


@dataclass(frozen=True)
class KindClusterArgs:
    cluster_name: str
    node_image: str
    workers: int
    pod_subnet: str
    service_subnet: str
    port_mappings: tuple[tuple[int, int], ...]
    """(nodePort, hostPort) pairs: the gateway's NodePorts reachable on localhost."""


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
# time out (kind#1889). Readiness is gated on Calico's Installation instead. An existing cluster
# of the same name (a previous run that failed after `kind create`) is reused, not fought.
_CREATE = """set -eu
if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  echo "kind cluster $KIND_CLUSTER exists; reusing it" >&2
else
  kind create cluster --name "$KIND_CLUSTER" --config - >&2
fi
kind get kubeconfig --name "$KIND_CLUSTER"
"""
# Idempotent: succeeds when the cluster is already gone.
_DELETE = 'kind delete cluster --name "$KIND_CLUSTER"'


class KindCluster(pulumi.ComponentResource):
    cluster_name: str
    kind: Literal["kind"] = "kind"
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider

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
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["stdout"],
                # Same name, so the old cluster must be gone before the new one is created.
                delete_before_replace=True,
            ),
        )
        self.kubeconfig = pulumi.Output.secret(cluster.stdout)
        # delete_unreachable: tearing down a lab whose cluster is already gone drops its
        # resources from state instead of waiting for an API server that will not answer.
        self.provider = kubernetes_provider(f"{name}-k8s", self.kubeconfig, args.cluster_name, self, delete_unreachable=True)
        self.register_outputs({"kubeconfig": self.kubeconfig, "clusterName": self.cluster_name})
