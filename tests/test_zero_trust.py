"""ZeroTrust: namespaces, default deny done right, exact allows, the mesh layer mirroring them."""

from __future__ import annotations

from conftest import objects, one, run_config

from components.zero_trust import principal

NS = "demo"


def _np(rec, name):
    return next(p for p in objects(rec, "NetworkPolicy") if p["metadata"]["name"] == name)


def test_namespace_labels_follow_istio_cni(like) -> None:
    (demo,) = [n for n in objects(like("dev"), "Namespace") if n["metadata"]["name"] == NS]
    labels = demo["metadata"]["labels"]
    assert labels["istio-injection"] == "enabled"
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"  # istio-init needs NET_ADMIN
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    (demo,) = [n for n in objects(run_config(istio={"cni": True}), "Namespace") if n["metadata"]["name"] == NS]
    assert demo["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_default_deny_has_no_rules_and_both_types(like) -> None:
    deny = _np(like("dev"), "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def test_platform_needs_are_allowed(like) -> None:
    rec = like("dev")
    dns = _np(rec, "allow-dns")["spec"]["egress"][0]
    assert dns["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    istiod = _np(rec, "allow-istiod")["spec"]["egress"][0]
    assert istiod["ports"] == [{"protocol": "TCP", "port": 15012}]
    gw = _np(rec, "my-service-from-gateway")["spec"]
    assert gw["podSelector"] == {"matchLabels": {"app": "my-service"}}
    assert gw["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5000}]
    assert gw["ingress"][0]["from"][0]["podSelector"] == {"matchLabels": {"istio": "ingress"}}


def _allowed_pairs(rec):
    """(caller, callee) pairs with both an ingress and an egress NetworkPolicy allow."""
    ingress, egress = set(), set()
    for p in objects(rec, "NetworkPolicy"):
        if p["metadata"]["namespace"] != NS:
            continue
        spec = p["spec"]
        target = spec["podSelector"].get("matchLabels", {}).get("app")
        for rule in spec.get("ingress", []):
            for peer in rule["from"]:
                if "namespaceSelector" not in peer:
                    ingress.add((peer["podSelector"]["matchLabels"]["app"], target))
        for rule in spec.get("egress", []):
            for peer in rule["to"]:
                if "namespaceSelector" not in peer:
                    egress.add((target, peer["podSelector"]["matchLabels"]["app"]))
    return ingress, egress


def _authz_pairs(rec):
    pairs = set()
    for p in objects(rec, "AuthorizationPolicy"):
        spec = p["spec"]
        if not spec:
            continue
        target = spec["selector"]["matchLabels"]["app"]
        for rule in spec["rules"]:
            for src in rule["from"]:
                for pr in src["source"]["principals"]:
                    pairs.add((pr.rsplit("/", 1)[-1], target))
    return pairs


def test_each_declared_call_is_allowed_on_both_layers_and_nothing_else(like) -> None:
    rec = like("dev")
    declared = {("frontend", "my-service"), ("client", "my-service")}
    ingress, egress = _allowed_pairs(rec)
    assert ingress == declared and egress == declared
    assert _authz_pairs(rec) == declared | {("istio-ingress", "my-service")}


def test_an_added_call_appears_on_both_layers_and_an_undeclared_one_on_neither() -> None:
    apps = {
        "services": [
            {"name": "api", "port": 9000, "allowFrom": ["web"]},
            {"name": "web", "port": 8080},
            {"name": "db", "port": 5432},
        ]
    }
    rec = run_config(apps=apps)
    ingress, egress = _allowed_pairs(rec)
    assert ingress == egress == {("web", "api")}
    assert _authz_pairs(rec) == {("web", "api")}
    assert ("client", "db") not in ingress and not any(t == "db" for _, t in _authz_pairs(rec))


def test_frontend_receives_nothing(like) -> None:
    rec = like("dev")
    to_frontend = [
        p["metadata"]["name"]
        for p in objects(rec, "NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels", {}).get("app") == "frontend" and p["spec"].get("ingress")
    ]
    assert to_frontend == []
    assert not [
        p
        for p in objects(rec, "AuthorizationPolicy")
        if p["spec"].get("selector", {}).get("matchLabels", {}).get("app") == "frontend"
    ]


def test_mesh_layer_strict_and_allow_nothing(like) -> None:
    rec = like("dev")
    pas = {p["metadata"]["namespace"]: p["spec"] for p in objects(rec, "PeerAuthentication")}
    assert pas == {"istio-system": {"mtls": {"mode": "STRICT"}}, NS: {"mtls": {"mode": "STRICT"}}}
    nothing = next(p for p in objects(rec, "AuthorizationPolicy") if p["metadata"]["name"] == "allow-nothing")
    assert nothing["spec"] == {}
    allow = next(p for p in objects(rec, "AuthorizationPolicy") if p["metadata"]["name"] == "my-service-allow")
    assert allow["spec"]["action"] == "ALLOW"
    assert allow["spec"]["rules"][0]["from"][0]["source"]["principals"] == sorted(
        [principal(NS, "client"), principal(NS, "frontend"), principal("istio-ingress", "istio-ingress")]
    )
    assert allow["spec"]["rules"][0]["to"] == [{"operation": {"ports": ["5000"]}}]


def test_policies_wait_for_their_namespace_and_istiod(like) -> None:
    rec = like("dev")
    ns = one(rec, "kubernetes:core/v1:Namespace", "zero-trust-ns")
    assert one(rec, "kubernetes:helm.sh/v3:Release", "istio-istiod").urn in ns.dependencies
    for r in rec.resources:
        if r.parent and r.parent.endswith("ZeroTrust::zero-trust") and r.urn != ns.urn:
            assert ns.urn in r.dependencies, r.urn


def test_recorded_default_deny_denies_and_the_seeds_version_would_not(like) -> None:
    """On the recorded manifests: our deny admits nothing from outside; the seed's `from: []` admits all."""
    import copy

    from offline.verify.connectivity import flows

    objs = copy.deepcopy(like("lab").manifests())
    demo = [o for o in objs if (o.get("metadata") or {}).get("namespace") == NS or o.get("kind") == "Namespace"]
    ours = {(f.src, f.dst, f.port) for f in flows(demo, scope={NS}) if f.layer == "cni"}
    assert not [f for f in ours if f[0] == "external" or f[1] == "demo/frontend"]
    deny = next(o for o in demo if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "default-deny")
    deny["spec"] = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{"from": []}], "egress": [{"to": []}]}
    seed = {(f.src, f.dst, f.port) for f in flows(demo, scope={NS}) if f.layer == "cni"}
    assert {
        ("external", "demo/frontend", "*"),
        ("external", "demo/my-service", "*"),
        ("demo/client", "demo/frontend", "*"),
    } <= seed


def test_with_istio_csr_sidecars_may_reach_exactly_the_ca(like) -> None:
    assert not [p for p in objects(like("dev"), "NetworkPolicy") if p["metadata"]["name"] == "allow-mesh-ca"]
    rec = run_config(istio={"ca": "cert-manager"})
    ca = _np(rec, "allow-mesh-ca")["spec"]
    assert ca["podSelector"] == {} and ca["policyTypes"] == ["Egress"]
    assert ca["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cert-manager"}},
                    "podSelector": {"matchLabels": {"app": "cert-manager-istio-csr"}},
                }
            ],
            # CA_ADDR is the Service's port 443; policies see the pod's port, 6443.
            "ports": [{"protocol": "TCP", "port": 6443}],
        }
    ]
    istiod = one(rec, "kubernetes:helm.sh/v3:Release", "istio-istiod")
    assert istiod.inputs["values"]["global"]["caAddress"] == "cert-manager-istio-csr.cert-manager.svc:443"
