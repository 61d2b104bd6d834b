"""Intent: the flows a stack's config declares, plus the platform's own needs, and nothing else.

Expected on the CNI layer, for every workload of ``apps.namespace``: DNS to kube-dns (53 TCP and
UDP), istiod (15012), the gateway to each exposed service port, each declared call on the callee's
port, and, when observability is on, Prometheus to the sidecar metric ports and the sidecars'
spans to Jaeger. Expected on the mesh
layer (TCP into the namespace): the declared calls and the gateway. Every other computed flow with
an end in the namespace is a violation, and so is every expected flow that is not computed.
"""

from __future__ import annotations

from collections.abc import Iterable

from components import observability as obs
from components.settings import Settings
from tools.verify import Flow, Violation
from tools.verify.connectivity import Peer

DNS = Peer("kube-system", "coredns", {"k8s-app": "kube-dns"}, "coredns")
ISTIOD = Peer("istio-system", "istiod", {"app": "istiod"}, "istiod")


def gateway_peer(settings: Settings) -> Peer:
    from components.istio import GATEWAY_RELEASE, GATEWAY_SELECTOR, GATEWAY_SERVICE_ACCOUNT

    return Peer(
        settings.istio.gateway_namespace, GATEWAY_RELEASE, {**GATEWAY_SELECTOR, "app": GATEWAY_RELEASE}, GATEWAY_SERVICE_ACCOUNT
    )


def prometheus_peer(settings: Settings) -> Peer:
    return Peer(
        settings.observability.namespace, "prometheus", {**obs.PROMETHEUS_LABELS, "app": "prometheus"}, "prometheus-server"
    )


def peers(settings: Settings) -> list[Peer]:
    """The platform workloads the charts create, for the analyser's topology."""
    out = [DNS, ISTIOD, gateway_peer(settings)]
    if settings.observability.enabled:
        out.append(prometheus_peer(settings))
        out.append(Peer(settings.observability.namespace, "kiali", {**obs.KIALI_LABELS, "app": "kiali"}, "kiali"))
    return out


def _name(peer: Peer) -> str:
    return f"{peer.namespace}/{peer.labels.get('app', peer.name)}"


def expected(settings: Settings) -> dict[str, set[tuple[str, str, str]]]:
    apps, ns = settings.apps, settings.apps.namespace
    gateway = _name(gateway_peer(settings))
    cni: set[tuple[str, str, str]] = set()
    mesh: set[tuple[str, str, str]] = set()
    for w in apps.workloads:
        cni |= {(f"{ns}/{w}", _name(DNS), "53"), (f"{ns}/{w}", _name(DNS), "53/UDP"), (f"{ns}/{w}", _name(ISTIOD), "15012")}
        if settings.observability.enabled:
            cni |= {(_name(prometheus_peer(settings)), f"{ns}/{w}", str(p)) for p in obs.SIDECAR_METRICS_PORTS}
            jaeger = f"{settings.observability.namespace}/{obs.JAEGER_LABELS['app']}"
            cni.add((f"{ns}/{w}", jaeger, str(obs.OTLP_GRPC_PORT)))
    for svc in apps.services:
        if svc.expose:
            cni.add((gateway, f"{ns}/{svc.name}", str(svc.port)))
            mesh.add((gateway, f"{ns}/{svc.name}", str(svc.port)))
    for caller, svc in apps.calls():
        cni.add((f"{ns}/{caller}", f"{ns}/{svc.name}", str(svc.port)))
        mesh.add((f"{ns}/{caller}", f"{ns}/{svc.name}", str(svc.port)))
    return {"cni": cni, "mesh": mesh}


def check(settings: Settings, flows: Iterable[Flow]) -> list[Violation]:
    ns = settings.apps.namespace
    want = expected(settings)
    got = {"cni": set(), "mesh": set()}
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
            out.append(Violation("intent", f"{src} → {dst}", f"{layer} layer blocks declared {src} → {dst}:{port}"))
    return out
