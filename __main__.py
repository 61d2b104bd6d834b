"""mesh-platform: a cluster, Calico as its CNI, Istio as its mesh, in that order.

Install order (every arrow is a resource dependency, listed with its reason in mesh_platform/edges.py,
which this program applies and `offline.verify`'s order rule checks on the graph):

    cluster ─▶ Calico (Installation Ready) ─┬─▶ Istio base ─▶ [istio-cni] ─▶ istiod ─▶ ingress gateway
                                            │                                    ├─▶ ZeroTrust (namespace, deny-all, allows)
                                            │                                    └─▶ SampleApps (after ZeroTrust's deny-all)
                                            └─▶ cert-manager ─▶ CA issuer ─▶ GatewayTls ─▶ SampleApps' HTTPS Gateway
                                                              └─▶ (istio.ca: cert-manager only) istio-csr ─▶ istiod
    istiod ─▶ Observability (Prometheus, Kiali, Jaeger, Telemetry), beside the workloads, not before them

cert-manager runs beside Istio, off the critical path, unless istio.ca is cert-manager: then istiod
must wait for the CA issuer and istio-csr.

Settings are read and validated first (mesh_platform/loader.py, against the schema in
mesh_platform/settings.py): a bad stack value stops the program with one clean message, every
problem in it, before any resource is registered.
"""

import pulumi

from components import cert_manager as cm
from components import observability as obs
from components.calico import Calico, CalicoArgs
from components.cert_manager import CertManager, CertManagerArgs
from components.gateway_tls import GatewayTls, GatewayTlsArgs
from components.istio import (
    GATEWAY_SELECTOR,
    GATEWAY_SERVICE_ACCOUNT,
    ISTIO_CSR_LABELS,
    ISTIO_CSR_PORT,
    ExternalCa,
    Istio,
    IstioArgs,
)
from components.observability import Observability, ObservabilityArgs
from components.sample_apps import SampleApps, SampleAppsArgs, curl_commands
from components.zero_trust import Endpoint, ZeroTrust, ZeroTrustArgs
from mesh_platform import edges
from mesh_platform.loader import load

s = load()  # the stack's validated settings; nothing is registered if they are wrong
#: What other components wait for, by the keys of mesh_platform/edges.py.
registered: dict[str, pulumi.Resource] = {}

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
            discover_node_cidrs=s.discover_node_cidrs,
        ),
    )
elif s.cluster.provider == "eks":
    # Imported only here: pulumi_aws is large, and kind stacks never need it.
    from components.eks_cluster import EksCluster, EksClusterArgs

    assert s.cluster.eks is not None  # settings guarantee it for provider 'eks'
    cluster = EksCluster(
        "cluster",
        EksClusterArgs(s.cluster_name, s.cluster.kubernetes_version, s.cluster.service_subnet, s.cluster.eks),
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
        charts=s.charts,
        flow_visibility=s.observability.enabled and s.observability.calico_flows,
        metrics=s.observability.enabled,
    ),
    opts=on_cluster,
)
registered[edges.CALICO_READY.key] = calico.ready

cert_manager = None
if s.cert_manager.enabled:
    cert_manager = CertManager(
        "cert-manager",
        CertManagerArgs(
            version=s.cert_manager.version,
            acme=s.cert_manager.acme,
            charts=s.charts,
            after=edges.after("cert-manager", s, registered),
        ),
        opts=on_cluster,
    )
    registered[edges.CA_ISSUER.key] = cert_manager.ca_issuer
    registered[edges.GATEWAY_ISSUER.key] = cert_manager.issuers[s.cert_manager.gateway_issuer]
mesh_ca = s.istio.ca == "cert-manager" and cert_manager is not None

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
        tracing=(obs.TRACING_PROVIDER, obs.tracing_address(s.observability.namespace)) if s.observability.enabled else None,
        gateway_replicas=s.istio.gateway_replicas,
        charts=s.charts,
        external_ca=ExternalCa(
            issuer=cm.CA_ISSUER,
            chart_version=s.cert_manager.istio_csr_version,
            namespace=cm.NAMESPACE,
            root_ca_secret=cm.CA_SECRET,
        )
        if mesh_ca
        else None,
        after=edges.after("istio", s, registered),
    ),
    opts=on_cluster,
)
registered |= {edges.ISTIOD.key: istio.istiod, edges.GATEWAY.key: istio.gateway, edges.GATEWAY_NAMESPACE.key: istio.gateway_ns}

gateway_tls = None
if cert_manager is not None:
    gateway_tls = GatewayTls(
        "gateway-tls",
        GatewayTlsArgs(
            namespace=s.istio.gateway_namespace,
            hosts=s.apps.hosts,
            issuer=s.cert_manager.gateway_issuer,
            after=edges.after("gateway-tls", s, registered),
        ),
        opts=on_cluster,
    )

if s.apps.enabled:
    zero_trust = ZeroTrust(
        "zero-trust",
        ZeroTrustArgs(
            apps=s.apps,
            istio_cni=s.istio.cni,
            gateway_namespace=s.istio.gateway_namespace,
            gateway_labels=GATEWAY_SELECTOR,
            gateway_service_account=GATEWAY_SERVICE_ACCOUNT,
            scraper=Endpoint(s.observability.namespace, obs.PROMETHEUS_LABELS, obs.SIDECAR_METRICS_PORTS)
            if s.observability.enabled
            else None,
            tracing=Endpoint(s.observability.namespace, obs.JAEGER_LABELS, (obs.OTLP_GRPC_PORT,))
            if s.observability.enabled
            else None,
            mesh_ca=Endpoint(cm.NAMESPACE, ISTIO_CSR_LABELS, (ISTIO_CSR_PORT,)) if mesh_ca else None,
            after=edges.after("zero-trust", s, registered),
        ),
        opts=on_cluster,
    )
    registered[edges.DEFAULT_DENY.key] = zero_trust.default_deny
    SampleApps(
        "apps",
        SampleAppsArgs(
            apps=s.apps,
            gateway_labels=GATEWAY_SELECTOR,
            tls_secret=gateway_tls.secret_name if gateway_tls else None,
            https_redirect=s.cert_manager.https_redirect,
            # The HTTPS server waits for the gateway certificate through tls_secret (a data edge),
            # so cert-manager never delays the workloads.
            after=edges.after("apps", s, registered),
        ),
        opts=on_cluster,
    )

if s.observability.enabled:
    observability = Observability(
        "observability",
        ObservabilityArgs(
            namespace=s.observability.namespace,
            prometheus_version=s.observability.prometheus_version,
            kiali_version=s.observability.kiali_version,
            tracing_sampling=s.observability.tracing_sampling,
            workload_namespaces=(s.apps.namespace,) if s.apps.enabled else (),
            gateway_namespace=s.istio.gateway_namespace,
            # Edge (kind, nodeCidrs unset): the cluster's network probe → the egress policy's node CIDRs.
            node_cidrs=cluster.node_cidrs if s.discover_node_cidrs else s.node_cidrs,
            calico_flows=s.observability.calico_flows,
            charts=s.charts,
            # No workload waits for observability.
            after=edges.after("observability", s, registered),
        ),
        opts=on_cluster,
    )
    pulumi.export("portForward", observability.port_forwards)

pulumi.export("clusterName", s.cluster_name)
# `make destroy` deletes a kind cluster only when the stack says it created one.
pulumi.export("clusterKind", cluster.kind)
pulumi.export("kubeconfig", cluster.kubeconfig)

if s.cluster.provider == "kind":
    # What to type after `make up`: the URLs and the commands that show the routing.
    pulumi.export("gatewayUrl", f"http://localhost:{s.cluster.kind.http_host_port}")
    if s.apps.enabled:
        pulumi.export("curl", curl_commands(s.apps, f"http://localhost:{s.cluster.kind.http_host_port}"))
        if gateway_tls is not None and s.cert_manager.gateway_issuer == cm.CA_ISSUER:
            https_url = f"https://{s.apps.hosts[0]}:{s.cluster.kind.https_host_port}"
            pulumi.export("httpsUrl", https_url)
            pulumi.export("curlHttps", [cm.CA_FETCH_COMMAND, f"curl -s --cacert {cm.CA_FILE} {https_url}/v1"])
