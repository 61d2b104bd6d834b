"""offline.verify.connectivity: NCA's answers on cases whose answer is known."""

from __future__ import annotations

from verify_cases import DENY_ALL, SEED_DENY_ALL, allow, netpol, shop

from offline.verify.connectivity import flows


def pairs(fs, layer="cni"):
    return {(f.src, f.dst, f.port) for f in fs if f.layer == layer}


def test_no_policy_allows_everything() -> None:
    got = pairs(flows(shop(), scope={"shop"}))
    assert ("shop/api", "shop/frontend", "*") in got and ("external", "shop/db", "*") in got


def test_the_seeds_from_empty_admits_every_source() -> None:
    got = pairs(flows(shop(netpol("shop", "deny-all", SEED_DENY_ALL)), scope={"shop"}))
    # It "protects" frontend, yet everything still reaches it.
    assert {("external", "shop/frontend", "*"), ("shop/api", "shop/frontend", "*"), ("shop/db", "shop/frontend", "*")} <= got


def test_a_real_deny_without_rules_admits_nothing() -> None:
    assert pairs(flows(shop(netpol("shop", "deny-all", DENY_ALL)), scope={"shop"})) == set()


def test_seed_intent_done_right_frontend_receives_nothing() -> None:
    spec = {"podSelector": {"matchLabels": {"role": "frontend"}}, "policyTypes": ["Ingress"]}
    got = pairs(flows(shop(netpol("shop", "frontend-no-ingress", spec)), scope={"shop"}))
    assert not [p for p in got if p[1] == "shop/frontend"]
    assert ("shop/frontend", "shop/api", "*") in got


def test_deny_plus_one_call_allows_exactly_that_call_on_that_port() -> None:
    got = pairs(flows(shop(netpol("shop", "deny-all", DENY_ALL), *allow("shop", "frontend", "api", 8080)), scope={"shop"}))
    assert got == {("shop/frontend", "shop/api", "8080")}


def test_mesh_layer_allow_nothing_and_principal_allow() -> None:
    objs = shop(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "allow-nothing", "namespace": "shop"},
            "spec": {},
        },
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "api-allow", "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "api"}},
                "action": "ALLOW",
                "rules": [
                    {
                        "from": [{"source": {"principals": ["cluster.local/ns/shop/sa/frontend"]}}],
                        "to": [{"operation": {"ports": ["8080"]}}],
                    }
                ],
            },
        },
    )
    objs[0]["metadata"]["labels"]["istio-injection"] = "enabled"
    got = flows(objs, scope={"shop"})
    inbound = {(s, d, p) for s, d, p in pairs(got, "mesh") if d.startswith("shop/")}
    assert inbound == {("shop/frontend", "shop/api", "8080")}
    # No NetworkPolicy: the CNI layer admits all, so both layers together admit what the mesh does.
    combined_in = {(s, d, p) for s, d, p in pairs(got, "combined") if d.startswith("shop/") and not p.endswith("non-TCP")}
    assert ("shop/frontend", "shop/api", "8080") in combined_in
    assert ("shop/db", "shop/api", "8080") not in combined_in
