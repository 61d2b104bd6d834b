"""Intent: the flows a stack's config declares, plus the platform's own needs, and nothing else.

The platform's needs are derived here from what the upstream projects do, per option, not from
the policies the program writes (a check that shared the program's assumptions could not catch
its mistakes). Each need names the upstream fact it rests on:

===============  ======================================================================  ==========================
need             flow (every workload of ``apps.namespace`` unless said otherwise)        when
===============  ======================================================================  ==========================
DNS              → kube-system ``k8s-app=kube-dns`` 53/UDP and 53/TCP                     always
istiod           → istio-system ``app=istiod`` 15012 (xDS, and the CA with istio.ca        always
                 istiod)
CA endpoint      → cert-manager ``app=cert-manager-istio-csr`` 6443                        istio.ca: cert-manager
tracing          → the trace collector's pods, OTLP/gRPC 4317                             observability.enabled
scrapes          Prometheus server → each workload on 15020 (merged)                       observability.enabled
gateway          ingress gateway pods → each exposed service on its port (CNI and mesh)   expose: true
===============  ======================================================================  ==========================

Plus each declared call (``allowFrom``) on the callee's port, on both layers. Every other computed
flow with an end in the namespace is a violation, and so is every needed flow that is not computed
(reported as "blocks declared").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mesh_platform.settings import Settings
from offline.verify import Flow, Violation, upstream
from offline.verify.connectivity import Peer


@dataclass(frozen=True)
class Need:
    """A flow the platform needs, with the upstream fact it comes from."""

    what: str
    source: str


#: CoreDNS as kubeadm (kind) and EKS deploy it keeps the legacy kube-dns label in kube-system.
DNS = Peer("kube-system", "coredns", {"k8s-app": "kube-dns"}, "coredns")
DNS_PORTS = ("53", "53/UDP")
#: istio/istio manifests/charts/istio-control/istio-discovery: pods ``app: istiod``; Service port
#: 15012 "grpc-xds" serves xDS and, with istiod as CA, certificates; sidecars dial it
#: (``discoveryAddress: istiod.istio-system.svc:15012``).
ISTIOD = Peer("istio-system", "istiod", {"app": "istiod"}, "istiod")
ISTIOD_PORT = "15012"
#: cert-manager/istio-csr deploy/charts/istio-csr: pod label ``app: cert-manager-istio-csr``
#: (templates/deployment.yaml), gRPC server on ``app.server.serving.port`` 6443 behind Service
#: port 443 (values.schema.json). Sidecars dial it as ``CA_ADDR`` when istiod runs with
#: ``ENABLE_CA_SERVER=false``. The stack installs it into cert-manager's namespace.
ISTIO_CSR_NAMESPACE = "cert-manager"
ISTIO_CSR = Peer(ISTIO_CSR_NAMESPACE, "cert-manager-istio-csr", {"app": "cert-manager-istio-csr"}, "cert-manager-istio-csr")
ISTIO_CSR_PORT = "6443"
#: OpenTelemetry's OTLP/gRPC port (opentelemetry-specification, OTLP exporter defaults).
OTLP_GRPC_PORT = "4317"
#: istio/istio pilot/pkg/kube/inject/inject.go (applyPrometheusMerge): the injector annotates pods
#: ``prometheus.io/port: 15020``, where pilot-agent serves the app's, its own and Envoy's metrics
#: merged. Envoy's own 15090 needs no scrape path of its own: a second one counts every series twice.
SIDECAR_METRIC_PORTS = ("15020",)
#: The Prometheus server and Kiali pods are modelled with the labels and ServiceAccount the real
#: charts give them at the pinned versions, as tests/data/upstream_charts.yaml records them
#: (``upstream``): the prometheus chart's server pods carry ``app.kubernetes.io/{name,instance,component}``
#: and no ``app`` label (charts/prometheus/templates/_helpers.tpl L26-L51 at the recorded tag), so a
#: policy that selects ``app: prometheus`` selects nothing, and the model must not pretend otherwise.
PROMETHEUS_SERVER = ("prometheus", "prometheus-server")
KIALI_SERVER = ("kiali-server", "kiali")
#: The trace collector is the stack's own Deployment (label ``app: jaeger``), not a chart's.
JAEGER_APP = "jaeger"
#: istio/istio manifests/charts/gateway: a release named ``istio-ingress`` labels its pods
#: ``app: istio-ingress`` and ``istio: ingress`` and names its ServiceAccount after the release.
GATEWAY_RELEASE = "istio-ingress"
GATEWAY_LABELS = {"app": GATEWAY_RELEASE, "istio": "ingress"}


def gateway_peer(settings: Settings) -> Peer:
    return Peer(settings.istio.gateway_namespace, GATEWAY_RELEASE, dict(GATEWAY_LABELS), GATEWAY_RELEASE)


def _chart_peer(settings: Settings, name: str, chart_workload: tuple[str, str]) -> Peer:
    chart, workload = chart_workload
    recorded = upstream.workload(chart, workload)
    return Peer(settings.observability.namespace, name, upstream.pod_labels(chart, workload), recorded["serviceAccount"])


def prometheus_peer(settings: Settings) -> Peer:
    return _chart_peer(settings, "prometheus", PROMETHEUS_SERVER)


def kiali_peer(settings: Settings) -> Peer:
    return _chart_peer(settings, "kiali", KIALI_SERVER)


def peers(settings: Settings) -> list[Peer]:
    """The platform workloads the charts create, for the analyser's topology."""
    out = [DNS, ISTIOD, gateway_peer(settings)]
    if settings.mesh_ca_is_cert_manager:
        out.append(ISTIO_CSR)
    if settings.observability.enabled:
        out.append(prometheus_peer(settings))
        out.append(kiali_peer(settings))
    return out


def _name(peer: Peer) -> str:
    return f"{peer.namespace}/{peer.labels.get('app', peer.name)}"


def needs(settings: Settings) -> dict[tuple[str, str, str], Need]:
    """Every flow the platform needs on the CNI layer for this config, with why."""
    ns = settings.apps.namespace
    out: dict[tuple[str, str, str], Need] = {}
    for w in settings.apps.workloads:
        me = f"{ns}/{w}"
        for port in DNS_PORTS:
            out[(me, _name(DNS), port)] = Need("DNS", "kube-dns in kube-system")
        out[(me, _name(ISTIOD), ISTIOD_PORT)] = Need("istiod", "xDS and istiod's CA on 15012")
        if settings.mesh_ca_is_cert_manager:
            out[(me, _name(ISTIO_CSR), ISTIO_CSR_PORT)] = Need("CA endpoint", "istio-csr serves CA_ADDR on pod port 6443")
        if settings.observability.enabled:
            out[(me, f"{settings.observability.namespace}/{JAEGER_APP}", OTLP_GRPC_PORT)] = Need("tracing", "OTLP/gRPC spans")
            for port in SIDECAR_METRIC_PORTS:
                out[(_name(prometheus_peer(settings)), me, port)] = Need("scrapes", "merged sidecar metrics 15020")
    for svc in settings.apps.services:
        if svc.expose:
            out[(_name(gateway_peer(settings)), f"{ns}/{svc.name}", str(svc.port))] = Need("gateway", "exposed service")
    return out


def expected(settings: Settings) -> dict[str, set[tuple[str, str, str]]]:
    apps, ns = settings.apps, settings.apps.namespace
    gateway = _name(gateway_peer(settings))
    cni = set(needs(settings))
    mesh: set[tuple[str, str, str]] = set()
    for svc in apps.services:
        if svc.expose:
            mesh.add((gateway, f"{ns}/{svc.name}", str(svc.port)))
    for caller, svc in apps.calls():
        cni.add((f"{ns}/{caller}", f"{ns}/{svc.name}", str(svc.port)))
        mesh.add((f"{ns}/{caller}", f"{ns}/{svc.name}", str(svc.port)))
    return {"cni": cni, "mesh": mesh}


def check(settings: Settings, flows: Iterable[Flow]) -> list[Violation]:
    ns = settings.apps.namespace
    want = expected(settings)
    why = needs(settings)
    got: dict[str, set[tuple]] = {"cni": set(), "mesh": set()}
    for f in flows:
        if f.layer == "cni" and (f.src.startswith(f"{ns}/") or f.dst.startswith(f"{ns}/")):
            got["cni"].add((f.src, f.dst, f.port))
        # The mesh authorises requests *into* injected pods; egress is the CNI's job (istio#52619).
        if f.layer == "mesh" and f.dst.startswith(f"{ns}/"):
            got["mesh"].add((f.src, f.dst, f.port))
    out = []
    for layer in ("cni", "mesh"):
        for src, dst, port in sorted(got[layer] - want[layer]):
            out.append(
                Violation(
                    "intent", f"{src} → {dst}", f"{layer} layer allows {src} → {dst}:{port}, which the config does not declare"
                )
            )
        for src, dst, port in sorted(want[layer] - got[layer]):
            need = why.get((src, dst, port)) if layer == "cni" else None
            reason = f" (platform need: {need.what}, {need.source})" if need else ""
            out.append(Violation("intent", f"{src} → {dst}", f"{layer} layer blocks declared {src} → {dst}:{port}{reason}"))
    return out
