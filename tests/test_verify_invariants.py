"""offline.verify.invariants: each rule on a passing and a failing case."""

from __future__ import annotations

import copy

from verify_cases import DENY_ALL, SEED_DENY_ALL, deployment, netpol, shop

from offline.verify import Flow, invariants


def rules(violations):
    return [v.rule for v in violations]


def test_admits_all_flags_the_seed_and_passes_a_real_deny() -> None:
    assert rules(invariants.admits_all([netpol("shop", "deny-all", SEED_DENY_ALL)])) == ["admits-all"]
    assert invariants.admits_all([netpol("shop", "deny-all", DENY_ALL)]) == []


def test_admits_all_flags_every_namespace_peer_and_open_ip_block() -> None:
    spec = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"namespaceSelector": {}}, {"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
    }
    msgs = [v.message for v in invariants.admits_all([netpol("shop", "open", spec)])]
    assert msgs == ["egress[0].to[0] selects every pod of every namespace", "egress[0].to[1] is every address (0.0.0.0/0)"]


def test_admits_all_flags_an_empty_authorization_rule() -> None:
    ap = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "x", "namespace": "shop"},
        "spec": {"rules": [{}]},
    }
    assert rules(invariants.admits_all([ap])) == ["admits-all"]
    assert invariants.admits_all([{**ap, "spec": {}}]) == []


def test_default_deny_present_and_really_denying() -> None:
    objs = shop(netpol("shop", "deny-all", DENY_ALL))
    assert invariants.default_deny(objs, ["shop"], []) == []
    missing = invariants.default_deny(shop(netpol("shop", "deny-all", SEED_DENY_ALL)), ["shop"], [])
    assert rules(missing) == ["default-deny"] and "no default deny" in missing[0].message
    open_flow = invariants.default_deny(objs, ["shop"], [Flow("external", "shop/api", "*", "cni")])
    assert [v.message for v in open_flow] == ["external → shop/api:* is open on every port"]


def _pa(ns, mode, name="default"):
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"mtls": {"mode": mode}},
    }


def test_mtls_strict() -> None:
    assert invariants.mtls_strict([_pa("istio-system", "STRICT"), _pa("shop", "STRICT")], ["shop"], "istio-system") == []
    bad = invariants.mtls_strict([_pa("istio-system", "PERMISSIVE"), _pa("shop", "STRICT")], ["shop"], "istio-system")
    assert [v.message for v in bad] == [
        "mTLS mode PERMISSIVE; must be STRICT",
        "no mesh-wide PeerAuthentication with mtls.mode STRICT",
    ]
    assert rules(invariants.mtls_strict([_pa("istio-system", "STRICT")], ["shop"], "istio-system")) == ["mtls-strict"]


def test_pinned_images_and_charts(stack) -> None:
    assert invariants.pinned([deployment("shop", "api", image="nginx:1.27")]) == []
    assert invariants.pinned([deployment("shop", "api", image="nginx@sha256:" + "a" * 64)]) == []
    assert rules(invariants.pinned([deployment("shop", "api", image="nginx")])) == ["pinned"]
    assert rules(invariants.pinned([deployment("shop", "api", image="nginx:latest")])) == ["pinned"]
    rec = copy.deepcopy(stack("dev"))
    assert invariants.pinned([], rec) == []
    next(r for r in rec.resources if r.name == "istio-istiod").inputs["version"] = "1.30.x"
    assert [v.message for v in invariants.pinned([], rec)] == ["chart istiod version '1.30.x' is not exact"]


def test_ordering_passes_on_the_stack_and_fails_without_the_edges(stack) -> None:
    rec = copy.deepcopy(stack("dev"))
    assert invariants.ordering(rec) == []
    gate = next(r.urn for r in rec.resources if r.type.endswith(":Installation"))
    istiod = next(r.urn for r in rec.resources if r.name == "istio-istiod")
    for r in rec.resources:
        r.dependencies = [d for d in r.dependencies if d not in (gate, istiod)]
        if r.type == "mesh-platform:index:Istio" or r.type == "mesh-platform:index:SampleApps":
            r.dependencies = []
    found = invariants.ordering(rec)
    early = {v.object for v in found if "before Calico" in v.message}
    # The Istio charts' releases themselves, whatever repository serves them, as well as Istio's config.
    assert {o.split(" ", 1)[0] for o in early} >= {"Release", "PeerAuthentication"}, early
    assert {o.rsplit("/", 1)[-1] for o in early if o.startswith("Release ")} >= {"istio-base", "istiod"}, early
    assert any("before istiod" in v.message for v in found)
