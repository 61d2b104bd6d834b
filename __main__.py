"""mesh-platform: a cluster, Calico as its CNI, Istio as its mesh, in that order.

Install order (every arrow is a resource dependency; tests/test_main.py checks each on the graph):

    cluster ─▶ Calico (Installation Ready) ─▶ Istio base ─▶ [istio-cni] ─▶ istiod ─▶ ingress gateway

Settings are read and validated first (components/settings.py): a bad stack value stops the program
with one clean message before any resource is registered.
"""

import pulumi

from components.calico import Calico, CalicoArgs
from components.istio import Istio, IstioArgs
from components.settings import load

settings = load()
s = settings

if s.cluster.provider == "kind":
    from components.kind_cluster import KindCluster, KindClusterArgs

    cluster = KindCluster(
        "cluster",
        KindClusterArgs(
            cluster_name=s.cluster_name,
            node_image=s.cluster.kind.node_image,
            workers=s.cluster.workers,
            pod_subnet=s.cluster.pod_subnet,
            service_subnet=s.cluster.service_subnet,
            port_mappings=(
                (s.cluster.kind.http_node_port, s.cluster.kind.http_host_port),
                (s.cluster.kind.https_node_port, s.cluster.kind.https_host_port),
            ),
        ),
    )
else:
    from components.existing_cluster import ExistingCluster, ExistingClusterArgs

    assert s.cluster.existing is not None  # settings guarantee it for provider 'existing'
    cluster = ExistingCluster(
        "cluster",
        ExistingClusterArgs(s.cluster_name, s.cluster.existing.kubeconfig, s.cluster.existing.context),
    )

# Every Kubernetes resource goes to this cluster through its one provider.
on_cluster = pulumi.ResourceOptions(providers=[cluster.provider])

calico = Calico(
    "calico",
    CalicoArgs(
        version=s.calico.version,
        mode="eks" if s.cluster.provider == "eks" else "kind",
        pod_subnet=s.cluster.pod_subnet,
        encapsulation=s.calico.encapsulation,
        ready_timeout_minutes=s.calico.ready_timeout_minutes,
    ),
    opts=on_cluster,
)

istio = Istio(
    "istio",
    IstioArgs(
        version=s.istio.version,
        cni=s.istio.cni,
        gateway_namespace=s.istio.gateway_namespace,
        gateway_service_type="LoadBalancer" if s.cluster.provider == "eks" else "NodePort",
        http_node_port=s.cluster.kind.http_node_port,
        https_node_port=s.cluster.kind.https_node_port,
        istiod_replicas=s.istio.istiod_replicas,
        gateway_replicas=s.istio.gateway_replicas,
        # Edge: Calico ready → Istio. Istio's pods need a working pod network, and istio-cni
        # chains onto Calico's CNI config.
        after=[calico.ready],
    ),
    opts=on_cluster,
)

pulumi.export("clusterName", s.cluster_name)
pulumi.export("kubeconfig", cluster.kubeconfig)
