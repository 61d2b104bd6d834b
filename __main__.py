"""mesh-platform: a cluster, Calico as its CNI, Istio as its mesh, in that order.

Install order, which this file follows top to bottom (every arrow is a resource dependency: below,
each component is handed what it waits for, every edge named from mesh_platform/edges.py, which
gives its reason and which `offline.verify`'s order rule checks on the graph):

    cluster ─▶ Calico (Installation Ready) ─┬─▶ Istio base ─▶ [istio-cni] ─▶ istiod ─▶ ingress gateway
                                            │                                    ├─▶ ZeroTrust (namespace, deny-all, allows)
                                            │                                    └─▶ SampleApps (after ZeroTrust's deny-all and the ingress gateway)
                                            └─▶ cert-manager ─▶ CA issuer ─▶ GatewayTls ─▶ SampleApps' HTTPS Gateway
                                                              └─▶ (istio.ca: cert-manager only) istio-csr ─▶ istiod
    istiod ─▶ Observability (Prometheus, Kiali, Jaeger, Telemetry), beside the workloads, not before them

cert-manager runs beside Istio, off the critical path, unless istio.ca is cert-manager: then istiod
must wait for the CA issuer and istio-csr. A component is built only from what is built above it, so
moving a constructor above what it waits for stops the program with a NameError at that call.

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
from mesh_platform.kube import Cluster
from mesh_platform.loader import load

s = load()  # the stack's validated settings; nothing is registered if they are wrong

cluster: Cluster  # kind, EKS or an existing one: the same surface (mesh_platform/kube.py)
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
    if s.extended_support_warning:
        # Only with cluster.eks.allowExtendedSupport (settings refuse it otherwise): said on every preview and up.
        pulumi.log.warn(s.extended_support_warning)
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

# Each optional component is None in its else branch, never set to None ahead of its `if`: moved
# above what it waits for, a component then meets a NameError instead of silently missing it.
if s.cert_manager.enabled:
    cert_manager: CertManager | None = CertManager(
        "cert-manager",
        CertManagerArgs(
            version=s.cert_manager.version,
            acme=s.cert_manager.acme,
            charts=s.charts,
            replicas=s.cert_manager.replicas,
            after=[edges.wait(edges.CALICO_BEFORE_CERT_MANAGER, calico.ready)],
        ),
        opts=on_cluster,
    )
else:
    cert_manager = None
#: The mesh's CA when istio.ca is cert-manager (settings guarantee cert-manager is on then).
mesh_ca = cert_manager if s.mesh_ca_is_cert_manager else None

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
        after=[
            edges.wait(edges.CALICO_BEFORE_ISTIO, calico.ready),
            *([edges.wait(edges.CA_ISSUER_BEFORE_ISTIO, mesh_ca.ca_issuer)] if mesh_ca else []),
        ],
    ),
    opts=on_cluster,
)

if cert_manager is not None:
    gateway_tls: GatewayTls | None = GatewayTls(
        "gateway-tls",
        GatewayTlsArgs(
            namespace=s.istio.gateway_namespace,
            hosts=s.apps.hosts,
            issuer=s.cert_manager.gateway_issuer,
            after=[
                edges.wait(edges.GATEWAY_NAMESPACE_BEFORE_GATEWAY_TLS, istio.gateway_ns),
                edges.wait(edges.GATEWAY_ISSUER_BEFORE_GATEWAY_TLS, cert_manager.issuers[s.cert_manager.gateway_issuer]),
            ],
        ),
        opts=on_cluster,
    )
else:
    gateway_tls = None

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
            after=[edges.wait(edges.ISTIOD_BEFORE_ZERO_TRUST, istio.istiod)],
        ),
        opts=on_cluster,
    )
    SampleApps(
        "apps",
        SampleAppsArgs(
            apps=s.apps,
            gateway_labels=GATEWAY_SELECTOR,
            # The HTTPS server waits for the gateway certificate through tls_secret (a data edge),
            # so cert-manager never delays the workloads.
            tls_secret=edges.read(edges.GATEWAY_CERTIFICATE_TO_APPS, gateway_tls.secret_name) if gateway_tls else None,
            https_redirect=s.cert_manager.https_redirect,
            after=[
                edges.wait(edges.ISTIOD_BEFORE_APPS, istio.istiod),
                edges.wait(edges.GATEWAY_BEFORE_APPS, istio.gateway),
                edges.wait(edges.DEFAULT_DENY_BEFORE_APPS, zero_trust.default_deny),
            ],
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
            # kind, nodeCidrs unset: the egress policy admits what the cluster's network probe finds.
            node_cidrs=edges.read(edges.NODE_PROBE_TO_OBSERVABILITY, cluster.node_cidrs)
            if s.discover_node_cidrs
            else s.node_cidrs,
            calico_flows=s.observability.calico_flows,
            charts=s.charts,
            # No workload waits for observability.
            after=[edges.wait(edges.ISTIOD_BEFORE_OBSERVABILITY, istio.istiod)],
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
