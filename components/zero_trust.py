"""Workload namespaces and zero trust on both layers, from one allow list (``apps.services[].allowFrom``).

CNI layer (NetworkPolicy, enforced by Calico on L3/L4): a default deny of all ingress and all egress,
then exactly the platform's needs (DNS, istiod, the gateway to exposed ports, optional metric
scrapes) and the declared calls. Mesh layer (Istio, L7 + identity): STRICT mTLS, an allow-nothing
AuthorizationPolicy, and ALLOW policies by service-account principal for the same calls. Either
layer alone stops an undeclared call.

A default deny is a policy that selects every pod, lists both policy types, and has *no* rules.
``ingress: [{from: []}]`` is the opposite: a rule whose empty peer list matches every source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.istio import ISTIOD_SELECTOR
from mesh_platform.kube import ISTIO_NAMESPACE, TOKEN, strict_mtls
from mesh_platform.policy import default_deny, dns_egress, egress_to, ingress_from, peer, pod_peer, policy, tcp
from mesh_platform.settings import AppsSettings

TRUST_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class Endpoint:
    """Pods elsewhere that the workload namespace talks with: a scraper, or a trace collector."""

    namespace: str
    pod_labels: dict[str, str]
    ports: tuple[int, ...]


@dataclass(frozen=True)
class ZeroTrustArgs:
    apps: AppsSettings
    istio_cni: bool
    gateway_namespace: str
    gateway_labels: dict[str, str]
    gateway_service_account: str
    scraper: Endpoint | None = None
    """Allowed in, on its ports (Prometheus → sidecar metrics)."""
    tracing: Endpoint | None = None
    """Allowed out, to its ports (sidecars → trace collector)."""
    mesh_ca: Endpoint | None = None
    """Allowed out, to its ports: the CA sidecars get their certificates from when it is not
    istiod (istio-csr: ``CA_ADDR`` is its Service port 443, which lands on pod port 6443)."""
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)


def principal(namespace: str, service_account: str) -> str:
    return f"{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


def network_policies(args: ZeroTrustArgs) -> list[dict]:
    """Every NetworkPolicy of the workload namespace, as manifests."""
    ns = args.apps.namespace
    policies = [
        # Default deny, written correctly: every pod, both directions, no rules at all.
        default_deny(ns),
        policy("allow-dns", ns, egress=[dns_egress()]),
        # Sidecars fetch config and certificates from istiod (xDS + CA on 15012), or never get ready.
        policy("allow-istiod", ns, egress=[egress_to([peer(ISTIO_NAMESPACE, ISTIOD_SELECTOR)], tcp(15012))]),
    ]
    for svc in args.apps.services:
        if svc.expose:
            gateway = peer(args.gateway_namespace, args.gateway_labels)
            policies.append(
                policy(f"{svc.name}-from-gateway", ns, pods={"app": svc.name}, ingress=[ingress_from([gateway], tcp(svc.port))])
            )
    for caller, svc in args.apps.calls():
        policies.append(
            policy(
                f"{svc.name}-from-{caller}",
                ns,
                pods={"app": svc.name},
                ingress=[ingress_from([pod_peer({"app": caller})], tcp(svc.port))],
            )
        )
        policies.append(
            policy(
                f"{caller}-to-{svc.name}",
                ns,
                pods={"app": caller},
                egress=[egress_to([pod_peer({"app": svc.name})], tcp(svc.port))],
            )
        )
    if args.scraper:
        # Sidecar metrics (15020, merged) are served by the proxy outside Envoy's
        # inbound chain, so only this L4 rule is needed; no AuthorizationPolicy opens them.
        scraper = peer(args.scraper.namespace, args.scraper.pod_labels)
        policies.append(policy("allow-metrics-scrape", ns, ingress=[ingress_from([scraper], tcp(*args.scraper.ports))]))
    if args.mesh_ca:
        # Without it no sidecar gets a certificate, so none becomes ready.
        mesh_ca = peer(args.mesh_ca.namespace, args.mesh_ca.pod_labels)
        policies.append(policy("allow-mesh-ca", ns, egress=[egress_to([mesh_ca], tcp(*args.mesh_ca.ports))]))
    if args.tracing:
        tracing = peer(args.tracing.namespace, args.tracing.pod_labels)
        policies.append(policy("allow-tracing", ns, egress=[egress_to([tracing], tcp(*args.tracing.ports))]))
    return policies


def authorization_policies(args: ZeroTrustArgs) -> list[dict]:
    """allow-nothing plus one ALLOW per service that anyone may call, by caller principal."""
    ns = args.apps.namespace
    out = [
        # An ALLOW-less namespace: with no rules, nothing matches, so every request is denied
        # unless another ALLOW policy below matches it.
        {"name": "allow-nothing", "spec": {}},
    ]
    for svc in args.apps.services:
        principals = [principal(ns, caller) for caller in svc.allow_from]
        if svc.expose:
            principals.append(principal(args.gateway_namespace, args.gateway_service_account))
        if not principals:
            continue
        out.append(
            {
                "name": f"{svc.name}-allow",
                "spec": {
                    "selector": {"matchLabels": {"app": svc.name}},
                    "action": "ALLOW",
                    "rules": [
                        {
                            "from": [{"source": {"principals": sorted(principals)}}],
                            "to": [{"operation": {"ports": [str(svc.port)]}}],
                        }
                    ],
                },
            }
        )
    return [
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": p["name"], "namespace": ns},
            "spec": p["spec"],
        }
        for p in out
    ]


def namespace_labels(args: ZeroTrustArgs) -> dict[str, str]:
    # Pod Security: without istio-cni every injected pod carries istio-init, which adds NET_ADMIN and
    # NET_RAW to program iptables; only 'privileged' admits that ('baseline' forbids both
    # capabilities). With istio-cni the redirect is set up by the node plugin, the sidecar runs
    # non-root with all capabilities dropped, and our pods set seccomp RuntimeDefault at pod level,
    # so 'restricted' holds. 'restricted' is always audited and warned, so drift shows up.
    level = "restricted" if args.istio_cni else "privileged"
    return {
        "istio-injection": "enabled",
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }


class ZeroTrust(pulumi.ComponentResource):
    namespace: k8s.core.v1.Namespace
    default_deny: k8s.networking.v1.NetworkPolicy
    """Exists before any workload pod: no pod of the namespace ever runs unprotected."""

    def __init__(self, name: str, args: ZeroTrustArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:ZeroTrust", name, None, opts)
        ns = args.apps.namespace
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": ns, "labels": namespace_labels(args)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        policies = {}
        for manifest in network_policies(args):
            policies[manifest["metadata"]["name"]] = k8s.networking.v1.NetworkPolicy(
                f"{name}-np-{manifest['metadata']['name']}", metadata=manifest["metadata"], spec=manifest["spec"], opts=in_ns
            )
        self.default_deny = policies["default-deny"]
        strict_mtls(f"{name}-mtls-strict", ns, in_ns)
        for manifest in authorization_policies(args):
            k8s.apiextensions.CustomResource(
                f"{name}-authz-{manifest['metadata']['name']}",
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=in_ns,
            )
        self.register_outputs({"namespace": ns, "networkPolicies": sorted(policies)})
