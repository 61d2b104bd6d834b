"""NetworkPolicy builders: the one way the components write L3/L4 policy (enforced by Calico).

Two mistakes are easy to make by hand, and these builders leave no room for either:

- ``peer(namespace, labels)`` is ONE peer holding both selectors, which are ANDed: those pods in
  that namespace. The same two selectors as two list items are two peers, ORed: every pod of the
  namespace, or those pods in the policy's own namespace.
- A rule with an empty peer list matches every peer; ``egress_to`` and ``ingress_from`` refuse one.
  A direction listed in ``policyTypes`` with no rules denies all of it: ``policy`` lists a
  direction exactly when it is given one, so ``ingress=()`` means "nothing in" and leaving
  ``ingress`` out means "this policy says nothing about ingress".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import pulumi

#: The label the API server sets on every namespace to its own name.
NS_LABEL = "kubernetes.io/metadata.name"
#: The cluster DNS: CoreDNS keeps the ``k8s-app: kube-dns`` label (kind, EKS) in kube-system.
KUBE_DNS_NAMESPACE = "kube-system"
KUBE_DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_PORT = 53


def peer(namespace: str, labels: Mapping[str, str]) -> dict:
    """Pods with ``labels`` in ``namespace``: one peer, both selectors ANDed."""
    return {"namespaceSelector": {"matchLabels": {NS_LABEL: namespace}}, "podSelector": {"matchLabels": dict(labels)}}


def namespace_peer(namespace: str) -> dict:
    """Every pod of ``namespace``."""
    return {"namespaceSelector": {"matchLabels": {NS_LABEL: namespace}}}


def pod_peer(labels: Mapping[str, str]) -> dict:
    """Pods with ``labels`` in the policy's own namespace."""
    return {"podSelector": {"matchLabels": dict(labels)}}


def ip_blocks(cidrs: Sequence[str]) -> list[dict]:
    """One peer per CIDR (addresses outside the pod network: nodes, the API server)."""
    return [{"ipBlock": {"cidr": c}} for c in cidrs]


def tcp(*ports: int) -> list[dict]:
    """TCP on each of ``ports``."""
    return [{"protocol": "TCP", "port": p} for p in ports]


def _peers(peers: pulumi.Input[Sequence[dict]]) -> pulumi.Input[Sequence[dict]]:
    if not isinstance(peers, pulumi.Output) and not peers:
        raise ValueError("a rule with no peers admits every peer; name at least one")
    return peers if isinstance(peers, pulumi.Output) else list(cast("Sequence[dict]", peers))


def egress_to(peers: pulumi.Input[Sequence[dict]], ports: list[dict]) -> dict:
    """An egress rule: to any of ``peers`` (a list, or an Output of one), on ``ports``."""
    return {"to": _peers(peers), "ports": ports}


def ingress_from(peers: pulumi.Input[Sequence[dict]], ports: list[dict]) -> dict:
    """An ingress rule: from any of ``peers``, on ``ports``."""
    return {"from": _peers(peers), "ports": ports}


def dns_egress() -> dict:
    """Egress to the cluster DNS only: kube-dns in kube-system, 53 over UDP and TCP."""
    return egress_to(
        [peer(KUBE_DNS_NAMESPACE, KUBE_DNS_LABELS)],
        [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}],
    )


def policy(
    name: str,
    namespace: str,
    *,
    pods: Mapping[str, str] | None = None,
    ingress: Sequence[dict] | None = None,
    egress: Sequence[dict] | None = None,
) -> dict:
    """A NetworkPolicy manifest for the pods with ``pods`` labels (every pod of ``namespace`` if none).

    ``ingress``/``egress``: the only traffic allowed that way, one rule each; ``()`` allows none;
    ``None`` (left out) leaves that direction to other policies.
    """
    spec: dict = {
        "podSelector": {"matchLabels": dict(pods)} if pods else {},
        "policyTypes": [t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules is not None],
    }
    if not spec["policyTypes"]:
        raise ValueError(f"NetworkPolicy {name}: give it ingress or egress rules (or () to deny that way)")
    if ingress:
        spec["ingress"] = list(ingress)
    if egress:
        spec["egress"] = list(egress)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def default_deny(namespace: str) -> dict:
    """``default-deny``: every pod of ``namespace``, both directions, no rule at all."""
    return policy("default-deny", namespace, ingress=(), egress=())
