"""Every edge between components, as data: ``__main__.py`` applies them and ``offline.verify`` checks them.

An edge says that a component (by its resource name) waits for a resource another component
registers, and why. ``after`` edges are applied as ``depends_on`` (``after(...)`` below returns what a
component's ``*Args.after`` gets); ``data`` edges are an Output the component consumes, which makes
the resources that read it wait. ``offline/verify/invariants.py``'s ``order`` rule reads this table and
checks each edge that applies to a stack on the recorded dependency graph, so a program that stops
applying one fails verification.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi

from components.cert_manager import CA_ISSUER as CA_ISSUER_NAME
from components.istio import GATEWAY_RELEASE
from mesh_platform.settings import Settings


@dataclass(frozen=True)
class Node:
    """A resource one component registers: the key ``__main__.py`` files it under, and how to find
    it in the recorded graph (its Pulumi type and the name it creates, Kubernetes or Helm release)."""

    key: str
    type: str
    name: str | Callable[[Settings], str]
    namespace: Callable[[Settings], str] | None = None

    def names(self, s: Settings) -> tuple[str, str | None]:
        name = self.name(s) if callable(self.name) else self.name
        return name, self.namespace(s) if self.namespace else None


@dataclass(frozen=True)
class Edge:
    before: Node
    component: str
    """The resource name of the waiting ComponentResource (``istio``, ``apps`` ...)."""
    reason: str
    when: Callable[[Settings], bool] = lambda s: True
    via: Literal["after", "data"] = "after"


CALICO_READY = Node("calico.ready", "kubernetes:operator.tigera.io/v1:Installation", "default")
CA_ISSUER = Node("cert-manager.ca-issuer", "kubernetes:cert-manager.io/v1:ClusterIssuer", CA_ISSUER_NAME)
GATEWAY_ISSUER = Node(
    "cert-manager.gateway-issuer", "kubernetes:cert-manager.io/v1:ClusterIssuer", lambda s: s.cert_manager.gateway_issuer
)
GATEWAY_NAMESPACE = Node("istio.gateway-namespace", "kubernetes:core/v1:Namespace", lambda s: s.istio.gateway_namespace)
ISTIOD = Node("istio.istiod", "kubernetes:helm.sh/v3:Release", "istiod")
GATEWAY = Node("istio.gateway", "kubernetes:helm.sh/v3:Release", GATEWAY_RELEASE)
DEFAULT_DENY = Node(
    "zero-trust.default-deny", "kubernetes:networking.k8s.io/v1:NetworkPolicy", "default-deny", lambda s: s.apps.namespace
)
GATEWAY_CERTIFICATE = Node(
    "gateway-tls.certificate", "kubernetes:cert-manager.io/v1:Certificate", "gateway-tls", lambda s: s.istio.gateway_namespace
)
NODE_PROBE = Node("cluster.node-probe", "command:local:Command", "cluster-kind-network")


def _mesh_ca(s: Settings) -> bool:
    return s.istio.ca == "cert-manager" and s.cert_manager.enabled


EDGES: tuple[Edge, ...] = (
    Edge(CALICO_READY, "cert-manager", "cert-manager's pods need pod networking", lambda s: s.cert_manager.enabled),
    Edge(CALICO_READY, "istio", "Istio's pods need a working pod network, and istio-cni chains onto Calico's CNI config"),
    Edge(CA_ISSUER, "istio", "istio-csr signs with the CA issuer before istiod may start", _mesh_ca),
    Edge(
        GATEWAY_NAMESPACE,
        "gateway-tls",
        "the gateway reads its certificate's secret only from its own namespace",
        lambda s: s.cert_manager.enabled,
    ),
    Edge(GATEWAY_ISSUER, "gateway-tls", "a certificate is signed only by a ready issuer", lambda s: s.cert_manager.enabled),
    Edge(
        ISTIOD,
        "zero-trust",
        "Istio's validating webhook needs istiod's endpoints before mesh policies can be created (istio#38930)",
        lambda s: s.apps.enabled,
    ),
    Edge(
        ISTIOD,
        "apps",
        "sidecars are injected at pod creation: a pod created earlier runs without one and fails STRICT mTLS",
        lambda s: s.apps.enabled,
    ),
    Edge(GATEWAY, "apps", "the Gateway object selects the gateway's pods", lambda s: s.apps.enabled),
    Edge(DEFAULT_DENY, "apps", "no pod of the namespace ever runs unprotected", lambda s: s.apps.enabled),
    Edge(
        ISTIOD,
        "observability",
        "the Telemetry object needs Istio's webhook, and Kiali reads istiod",
        lambda s: s.observability.enabled,
    ),
    Edge(
        GATEWAY_CERTIFICATE,
        "apps",
        "the HTTPS server reads the certificate's secret (tls_secret); the workloads do not wait for it",
        lambda s: s.apps.enabled and s.cert_manager.enabled,
        via="data",
    ),
    Edge(
        NODE_PROBE,
        "observability",
        "the egress policy admits the node CIDRs the cluster's network probe finds",
        lambda s: s.observability.enabled and s.discover_node_cidrs,
        via="data",
    ),
)


def applying(s: Settings) -> list[Edge]:
    """The edges this stack's settings switch on."""
    return [e for e in EDGES if e.when(s)]


def after(component: str, s: Settings, registered: Mapping[str, pulumi.Resource]) -> list[pulumi.Resource]:
    """What ``component`` depends on: the resources of its ``after`` edges, looked up by key."""
    return [registered[e.before.key] for e in applying(s) if e.component == component and e.via == "after"]
