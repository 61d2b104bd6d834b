"""Every edge between components, as data: which exist, and why.

An edge says that a component waits for a resource another component registers, and why. The
table says which edges exist; ``__main__.py`` wires each one by name where it builds the waiting
component, passing the resource itself: ``edges.wait(EDGE, resource)`` in the component's
``*Args.after`` (applied as ``depends_on``), ``edges.read(EDGE, output)`` for a ``data`` edge (an
Output the component consumes, which makes the resources that read it wait). Both fail at once,
naming the edge, when handed the wrong kind of edge or resource.

An edge applies to a stack when both its components are installed and its own condition, if it
has one, holds; each condition is one fact of the settings. ``offline/verify/invariants.py``'s
``order`` rule checks every edge that applies on the recorded dependency graph, and
tests/test_edges.py holds the table and the program's wiring together for every option
combination: nothing crosses components that the table does not name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import pulumi

from mesh_platform.kube import GATEWAY_RELEASE
from mesh_platform.settings import CA_ISSUER as CA_ISSUER_NAME
from mesh_platform.settings import Settings


def _always(s: Settings) -> bool:
    return True


@dataclass(frozen=True)
class Component:
    """A ComponentResource of the program: its resource name, and when the stack installs it."""

    name: str
    installed: Callable[[Settings], bool] = _always


CLUSTER = Component("cluster")
CALICO = Component("calico")
CERT_MANAGER = Component("cert-manager", lambda s: s.cert_manager.enabled)
ISTIO = Component("istio")
GATEWAY_TLS = Component("gateway-tls", lambda s: s.cert_manager.enabled)
ZERO_TRUST = Component("zero-trust", lambda s: s.apps.enabled)
APPS = Component("apps", lambda s: s.apps.enabled)
OBSERVABILITY = Component("observability", lambda s: s.observability.enabled)
COMPONENTS = (CLUSTER, CALICO, CERT_MANAGER, ISTIO, GATEWAY_TLS, ZERO_TRUST, APPS, OBSERVABILITY)


@dataclass(frozen=True)
class Node:
    """A resource one component registers, and how to find it in the recorded graph (its Pulumi
    type and the name it creates, Kubernetes or Helm release)."""

    of: Component
    part: str
    type: str
    name: str | Callable[[Settings], str]
    namespace: Callable[[Settings], str] | None = None

    @property
    def key(self) -> str:
        """``calico.ready``: the component, and what of it."""
        return f"{self.of.name}.{self.part}"

    def names(self, s: Settings) -> tuple[str, str | None]:
        name = self.name(s) if callable(self.name) else self.name
        return name, self.namespace(s) if self.namespace else None


@dataclass(frozen=True)
class Edge:
    before: Node
    waiter: Component
    reason: str
    when: Callable[[Settings], bool] = _always
    """The edge's own condition, beyond both components being installed: one settings fact."""
    via: Literal["after", "data"] = "after"

    @property
    def component(self) -> str:
        """The resource name of the waiting ComponentResource (``istio``, ``apps`` ...)."""
        return self.waiter.name

    @property
    def id(self) -> str:
        return f"{self.before.key}->{self.component}"

    def applies(self, s: Settings) -> bool:
        return self.before.of.installed(s) and self.waiter.installed(s) and self.when(s)


CALICO_READY = Node(CALICO, "ready", "kubernetes:operator.tigera.io/v1:Installation", "default")
CA_ISSUER = Node(CERT_MANAGER, "ca-issuer", "kubernetes:cert-manager.io/v1:ClusterIssuer", CA_ISSUER_NAME)
GATEWAY_ISSUER = Node(
    CERT_MANAGER, "gateway-issuer", "kubernetes:cert-manager.io/v1:ClusterIssuer", lambda s: s.cert_manager.gateway_issuer
)
GATEWAY_NAMESPACE = Node(ISTIO, "gateway-namespace", "kubernetes:core/v1:Namespace", lambda s: s.istio.gateway_namespace)
ISTIOD = Node(ISTIO, "istiod", "kubernetes:helm.sh/v3:Release", "istiod")
GATEWAY = Node(ISTIO, "gateway", "kubernetes:helm.sh/v3:Release", GATEWAY_RELEASE)
DEFAULT_DENY = Node(
    ZERO_TRUST, "default-deny", "kubernetes:networking.k8s.io/v1:NetworkPolicy", "default-deny", lambda s: s.apps.namespace
)
GATEWAY_CERTIFICATE = Node(
    GATEWAY_TLS, "certificate", "kubernetes:cert-manager.io/v1:Certificate", "gateway-tls", lambda s: s.istio.gateway_namespace
)
NODE_PROBE = Node(CLUSTER, "node-probe", "command:local:Command", "cluster-kind-network")


CALICO_BEFORE_CERT_MANAGER = Edge(CALICO_READY, CERT_MANAGER, "cert-manager's pods need pod networking")
CALICO_BEFORE_ISTIO = Edge(
    CALICO_READY, ISTIO, "Istio's pods need a working pod network, and istio-cni chains onto Calico's CNI config"
)
CA_ISSUER_BEFORE_ISTIO = Edge(
    CA_ISSUER, ISTIO, "istio-csr signs with the CA issuer before istiod may start", lambda s: s.mesh_ca_is_cert_manager
)
GATEWAY_NAMESPACE_BEFORE_GATEWAY_TLS = Edge(
    GATEWAY_NAMESPACE, GATEWAY_TLS, "the gateway reads its certificate's secret only from its own namespace"
)
GATEWAY_ISSUER_BEFORE_GATEWAY_TLS = Edge(GATEWAY_ISSUER, GATEWAY_TLS, "a certificate is signed only by a ready issuer")
ISTIOD_BEFORE_ZERO_TRUST = Edge(
    ISTIOD, ZERO_TRUST, "Istio's validating webhook needs istiod's endpoints before mesh policies can be created (istio#38930)"
)
ISTIOD_BEFORE_APPS = Edge(
    ISTIOD, APPS, "sidecars are injected at pod creation: a pod created earlier runs without one and fails STRICT mTLS"
)
GATEWAY_BEFORE_APPS = Edge(GATEWAY, APPS, "the Gateway object selects the gateway's pods")
DEFAULT_DENY_BEFORE_APPS = Edge(DEFAULT_DENY, APPS, "no pod of the namespace ever runs unprotected")
ISTIOD_BEFORE_OBSERVABILITY = Edge(ISTIOD, OBSERVABILITY, "the Telemetry object needs Istio's webhook, and Kiali reads istiod")
GATEWAY_CERTIFICATE_TO_APPS = Edge(
    GATEWAY_CERTIFICATE,
    APPS,
    "the HTTPS server reads the certificate's secret (tls_secret); the workloads do not wait for it",
    # The apps' Gateway, and with it the HTTPS server, exists only for an exposed service.
    lambda s: any(svc.expose for svc in s.apps.services),
    via="data",
)
NODE_PROBE_TO_OBSERVABILITY = Edge(
    NODE_PROBE,
    OBSERVABILITY,
    "the egress policy admits the node CIDRs the cluster's network probe finds",
    lambda s: s.discover_node_cidrs,
    via="data",
)

EDGES: tuple[Edge, ...] = (
    CALICO_BEFORE_CERT_MANAGER,
    CALICO_BEFORE_ISTIO,
    CA_ISSUER_BEFORE_ISTIO,
    GATEWAY_NAMESPACE_BEFORE_GATEWAY_TLS,
    GATEWAY_ISSUER_BEFORE_GATEWAY_TLS,
    ISTIOD_BEFORE_ZERO_TRUST,
    ISTIOD_BEFORE_APPS,
    GATEWAY_BEFORE_APPS,
    DEFAULT_DENY_BEFORE_APPS,
    ISTIOD_BEFORE_OBSERVABILITY,
    GATEWAY_CERTIFICATE_TO_APPS,
    NODE_PROBE_TO_OBSERVABILITY,
)


def applying(s: Settings) -> list[Edge]:
    """The edges this stack's settings switch on."""
    return [e for e in EDGES if e.applies(s)]


def installed(s: Settings) -> list[Component]:
    """The components this stack's settings install."""
    return [c for c in COMPONENTS if c.installed(s)]


R = TypeVar("R", bound=pulumi.Resource)
T = TypeVar("T")


def _of_the_table(edge: Edge, via: str, helper: str) -> None:
    if edge not in EDGES:
        raise ValueError(f"edge {edge.id} is not in mesh_platform/edges.py's EDGES: add it there, with its reason")
    if edge.via != via:
        other = "read" if edge.via == "data" else "wait"
        raise TypeError(f"edge {edge.id} is a {edge.via!r} edge: wire it with edges.{other}, not edges.{helper}")


def wait(edge: Edge, resource: R) -> R:
    """``resource``, for the waiting component's ``*Args.after``: the ``after`` edge ``edge``, wired.

    Raises at once if ``edge`` is not an ``after`` edge of the table, or ``resource`` is not the
    kind of resource the edge waits for.
    """
    _of_the_table(edge, "after", "wait")
    if not isinstance(resource, pulumi.Resource) or resource.pulumi_resource_type != edge.before.type:
        got = (
            f"{resource.pulumi_resource_type} {resource.pulumi_resource_name!r}"
            if isinstance(resource, pulumi.Resource)
            else type(resource).__name__
        )
        raise TypeError(f"edge {edge.id} waits for a {edge.before.type}, not {got}")
    return resource


def read(edge: Edge, value: pulumi.Output[T] | None) -> pulumi.Output[T]:
    """``value``, an Output of the ``data`` edge ``edge``'s resource, for the waiting component to read.

    Raises at once if ``edge`` is not a ``data`` edge of the table, or ``value`` is not an Output
    (a plain value carries no dependency).
    """
    _of_the_table(edge, "data", "read")
    if not isinstance(value, pulumi.Output):
        raise TypeError(f"edge {edge.id} is a data edge: it needs an Output of {edge.before.key}, not {type(value).__name__}")
    return value
