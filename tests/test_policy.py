"""NetworkPolicy builders (mesh_platform/policy.py): what each one builds, and that components use them.

Peers that are still an Output (the node CIDRs the kind probe reads) pass through ``egress_to``
untouched: tests/test_observability.py holds that on the rendered dev stack. (An Output made here,
outside the mock engine, would leave the engine's later runs in this process waiting forever.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mesh_platform import policy as np

NS = {"kubernetes.io/metadata.name": "istio-system"}


def test_dns_egress_is_udp_and_tcp_53_to_kube_dns_only() -> None:
    assert np.dns_egress() == {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def test_a_peer_with_both_selectors_is_one_peer_not_two() -> None:
    one = np.peer("istio-system", {"app": "istiod"})
    # ANDed: istiod's pods in istio-system. Two list items would be ORed: every pod of istio-system,
    # or any app=istiod pod of the policy's own namespace.
    assert one == {"namespaceSelector": {"matchLabels": NS}, "podSelector": {"matchLabels": {"app": "istiod"}}}
    assert np.egress_to([one], np.tcp(15012))["to"] == [one]
    assert np.egress_to([one], np.tcp(15012))["to"] != [np.namespace_peer("istio-system"), np.pod_peer({"app": "istiod"})]


def test_namespace_and_pod_peers_have_one_selector_each() -> None:
    assert np.namespace_peer("istio-system") == {"namespaceSelector": {"matchLabels": NS}}
    assert np.pod_peer({"app": "web"}) == {"podSelector": {"matchLabels": {"app": "web"}}}
    assert np.ip_blocks(["10.0.0.0/16", "192.168.97.0/24"]) == [
        {"ipBlock": {"cidr": "10.0.0.0/16"}},
        {"ipBlock": {"cidr": "192.168.97.0/24"}},
    ]


def test_tcp_is_one_entry_per_port_in_order() -> None:
    assert np.tcp(9091, 9093, 443) == [
        {"protocol": "TCP", "port": 9091},
        {"protocol": "TCP", "port": 9093},
        {"protocol": "TCP", "port": 443},
    ]
    assert np.tcp() == []


def test_rules_name_their_peers_and_ports() -> None:
    web = np.pod_peer({"app": "web"})
    assert np.ingress_from([web], np.tcp(8080)) == {"from": [web], "ports": [{"protocol": "TCP", "port": 8080}]}
    assert np.egress_to((web,), np.tcp(8080)) == {"to": [web], "ports": [{"protocol": "TCP", "port": 8080}]}


@pytest.mark.parametrize("rule", [np.egress_to, np.ingress_from])
def test_a_rule_without_peers_is_refused(rule) -> None:
    # An empty peer list matches every peer: the opposite of what a rule here means.
    with pytest.raises(ValueError, match="no peers admits every peer"):
        rule([], np.tcp(80))


def test_default_deny_selects_every_pod_both_ways_with_no_rules() -> None:
    assert np.default_deny("demo") == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "demo"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def test_a_policy_lists_exactly_the_directions_it_is_given() -> None:
    dns = np.dns_egress()
    egress_only = np.policy("allow-dns", "demo", egress=[dns])["spec"]
    assert egress_only == {"podSelector": {}, "policyTypes": ["Egress"], "egress": [dns]}
    # ingress=() isolates ingress with no rule: nothing in; the key is left out, as in a default deny.
    nothing_in = np.policy("kiali", "obs", pods={"app": "kiali"}, ingress=(), egress=[dns])["spec"]
    assert nothing_in == {"podSelector": {"matchLabels": {"app": "kiali"}}, "policyTypes": ["Ingress", "Egress"], "egress": [dns]}
    web = np.ingress_from([np.pod_peer({"app": "client"})], np.tcp(8080))
    ingress_only = np.policy("web-from-client", "demo", pods={"app": "web"}, ingress=[web])["spec"]
    assert ingress_only == {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"], "ingress": [web]}
    with pytest.raises(ValueError, match="ingress or egress"):
        np.policy("nothing", "demo")


def test_components_build_network_policies_only_with_these_builders() -> None:
    root = Path(__file__).resolve().parents[1]
    hand_built = re.compile(r'"(namespaceSelector|podSelector|ipBlock|policyTypes)"|kubernetes\.io/metadata\.name')
    found = [
        f"{p.name}:{n}"
        for p in sorted((root / "components").glob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if hand_built.search(line)
    ]
    assert found == [], found
