"""SampleApps: routing table, subsets resolving to Deployments, hardening, config validation."""

from __future__ import annotations

import pulumi
import pytest
from conftest import graph, objects, one, run_config

from mesh_platform.loader import parse
from offline.verify.routing import answer, gateway_servers

NS = "demo"


def _routes(rec):
    """(prefix, [(subset, weight)]) per VirtualService route, in order."""
    out = {}
    for vs in objects(rec, "VirtualService"):
        out[vs["metadata"]["name"]] = [
            (
                r["match"][0]["uri"]["prefix"] if "match" in r else None,
                [(d["destination"]["subset"], d["weight"]) for d in r["route"]],
            )
            for r in vs["spec"]["http"]
        ]
    return out


def test_routing_table_is_the_seeds(like) -> None:
    seed = [("/v1", [("v1", 100)]), (None, [("v2", 100)])]
    assert _routes(like("dev")) == {"my-service": seed, "my-service-gateway": seed}


def test_retries_timeout_and_gateway_binding(like) -> None:
    vs = {v["metadata"]["name"]: v["spec"] for v in objects(like("dev"), "VirtualService")}
    # The mesh keeps the full service name; the gateway's VirtualService takes every host the Gateway
    # lists ('*'), because istiod would turn a one-word host such as 'localhost' into
    # 'localhost.demo.svc.cluster.local', which never intersects the Gateway's literal 'localhost'.
    assert (vs["my-service"]["gateways"], vs["my-service"]["hosts"]) == (["mesh"], [f"my-service.{NS}.svc.cluster.local"])
    assert (vs["my-service-gateway"]["gateways"], vs["my-service-gateway"]["hosts"]) == ([f"{NS}/mesh-gateway"], ["*"])
    for spec in vs.values():
        catch_all = spec["http"][1]
        assert catch_all["retries"]["attempts"] == 3 and catch_all["retries"]["perTryTimeout"] == "2s"
        assert catch_all["timeout"] == "10s"
    (gw,) = objects(like("dev"), "Gateway")
    assert gw["spec"]["selector"] == {"istio": "ingress"}
    assert [s["port"]["number"] for s in gw["spec"]["servers"]] == [80, 443]
    assert all(s["hosts"] == ["localhost"] for s in gw["spec"]["servers"])
    assert "httpsRedirect" not in str(gw)


def test_canary_weights() -> None:
    apps = {
        "services": [
            {
                "name": "my-service",
                "port": 5000,
                "versions": ["v1", "v2"],
                "expose": True,
                "routes": [{"destinations": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}]}],
            }
        ]
    }
    canary = [(None, [("v1", 90), ("v2", 10)])]
    assert _routes(run_config(apps=apps)) == {"my-service": canary, "my-service-gateway": canary}


def test_every_subset_exists_and_selects_a_deployment(like) -> None:
    rec = like("dev")
    drs = {d["spec"]["host"]: d for d in objects(rec, "DestinationRule")}
    deployments = objects(rec, "Deployment")
    for vs in objects(rec, "VirtualService"):
        for route in vs["spec"]["http"]:
            for dest in route["route"]:
                dr = drs[dest["destination"]["host"]]
                subset = next(s for s in dr["spec"]["subsets"] if s["name"] == dest["destination"]["subset"])
                app = dest["destination"]["host"].split(".")[0]
                selected = [
                    d
                    for d in deployments
                    if d["spec"]["template"]["metadata"]["labels"]["app"] == app
                    and all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in subset["labels"].items())
                ]
                assert len(selected) == 1, (dest, [d["metadata"]["name"] for d in selected])


def test_workloads_are_hardened(like) -> None:
    deployments = [d for d in objects(like("dev"), "Deployment") if d["metadata"]["namespace"] == NS]
    assert len(deployments) == 4
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert sc["runAsUser"] != 1337
        assert pod["serviceAccountName"] == d["metadata"]["labels"]["app"]
        for c in pod["containers"]:
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False and csc["readOnlyRootFilesystem"] is True
            assert csc["capabilities"] == {"drop": ["ALL"]}
            assert c["resources"]["requests"] and c["resources"]["limits"]
            assert c["readinessProbe"] and c["livenessProbe"]
            assert ":" in c["image"] and not c["image"].endswith(":latest")


def test_frontend_is_labelled_and_calls_my_service(like) -> None:
    (fe,) = [d for d in objects(like("dev"), "Deployment") if d["metadata"]["name"] == "frontend-v1"]
    assert fe["spec"]["template"]["metadata"]["labels"]["role"] == "frontend"
    caller = next(c for c in fe["spec"]["template"]["spec"]["containers"] if c["name"] == "caller")
    assert f"http://my-service.{NS}.svc.cluster.local:5000/" in caller["command"][-1]


def test_workloads_start_after_istiod_and_default_deny(like) -> None:
    rec = like("dev")
    g = graph(rec)
    istiod = one(rec, "kubernetes:helm.sh/v3:Release", "istio-istiod").urn
    deny = one(rec, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "zero-trust-np-default-deny").urn
    deployments = [d for d in rec.by_type("kubernetes:apps/v1:Deployment") if d.inputs["metadata"]["namespace"] == NS]
    assert len(deployments) == 4
    for d in deployments:
        assert istiod in d.dependencies and deny in d.dependencies, d.urn
        assert g.waits_for(d.urn, istiod)


def test_stack_outputs_show_the_routing(like) -> None:
    out = like("dev").outputs
    assert out["gatewayUrl"] == "http://localhost:8080"
    assert out["curl"] == [
        "curl -s http://localhost:8080/v1   # my-service: v1 100%",
        "curl -s http://localhost:8080/   # my-service: v2 100%",
    ]


SVC = {"name": "svc", "port": 8080, "versions": ["v1", "v2"]}
BAD_APPS = [
    (
        "unknown subset",
        {"services": [{**SVC, "routes": [{"destinations": [{"subset": "v3"}]}]}]},
        "names unknown subset 'v3'; known: ['v1', 'v2']",
    ),
    (
        "weights",
        {"services": [{**SVC, "routes": [{"destinations": [{"subset": "v1", "weight": 60}, {"subset": "v2", "weight": 30}]}]}]},
        "destination weights must sum to 100 (got 90)",
    ),
    ("unknown caller", {"services": [{**SVC, "allowFrom": ["ghost"]}]}, "allows calls from unknown workload 'ghost'"),
    ("duplicate names", {"services": [SVC, SVC]}, "duplicate workload names ['svc']"),
    ("client clash", {"services": [{**SVC, "name": "client"}]}, "duplicate workload names ['client']"),
    (
        "catch-all not last",
        {
            "services": [
                {**SVC, "routes": [{"destinations": [{"subset": "v1"}]}, {"prefix": "/a", "destinations": [{"subset": "v2"}]}]}
            ]
        },
        "routes[0]: has no prefix (catch-all) but is not the last route",
    ),
    ("sidecar port", {"services": [{**SVC, "port": 15020}]}, "port 15020 is reserved by the Istio sidecar"),
    (
        "two exposed catch-alls",
        {
            "services": [
                {**SVC, "expose": True, "routes": [{"destinations": [{"subset": "v1"}]}]},
                {**SVC, "name": "svc2", "expose": True, "routes": [{"destinations": [{"subset": "v2"}]}]},
            ]
        },
        "exposed services ['svc', 'svc2'] each have a catch-all route",
    ),
    ("bad host", {"hosts": ["Not A Host"]}, "mesh-platform:apps.hosts[0]: must be a lower-case DNS name"),
]
ACME = {"gatewayIssuer": "mesh-platform-acme", "acme": {"email": "ops@example.com"}}


def test_one_word_host_is_refused_where_it_cannot_work() -> None:
    with pytest.raises(pulumi.RunError) as err:
        parse({"apps": {"hosts": ["mesh.example.com", "shop"]}, "certManager": ACME}, "staging")
    assert "apps.hosts[1] 'shop' is one word, which gatewayIssuer mesh-platform-acme cannot serve" in str(err.value)
    assert "shop.<namespace>.svc.cluster.local" in str(err.value)
    # Served by the gateway through '*' and signed by the stack's own CA, a one-word host works.
    assert parse({"apps": {"hosts": ["shop"]}}, "dev").apps.hosts == ("shop",)
    assert parse({"apps": {"hosts": ["shop.example.com"]}, "certManager": ACME}, "staging").apps.hosts == ("shop.example.com",)


@pytest.mark.parametrize(("case", "apps", "message"), BAD_APPS, ids=[b[0] for b in BAD_APPS])
def test_invalid_app_config_is_rejected(case, apps, message) -> None:
    with pytest.raises(pulumi.RunError) as err:
        parse({"apps": apps}, "dev")
    assert message in str(err.value), str(err.value)


def _acme_solver(host: str, token: str) -> list[dict]:
    """What istiod makes of cert-manager's HTTP-01 solver Ingress (pilot/pkg/config/kube/ingress:
    gateways.go and virtualservices.go; testdata/simple.yaml.golden shows the shape): a Gateway
    ``<ingress>-istio-autogenerated-k8s-ingress-<ns>`` in istio-system selecting meshConfig.ingressSelector
    on port 80 for '*', and a VirtualService for the host whose ImplementationSpecific path became an
    exact match."""
    ingress, ns = "cm-acme-http-solver-abcde", "istio-ingress"
    gateway = f"{ingress}-istio-autogenerated-k8s-ingress-{ns}"
    return [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": gateway, "namespace": "istio-system"},
            "spec": {
                "selector": {"istio": "ingress"},
                "servers": [
                    {"hosts": ["*"], "port": {"name": f"http-80-ingress-{ingress}-{ns}", "number": 80, "protocol": "HTTP"}}
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": f"{host.replace('.', '-')}-{ingress}-istio-autogenerated-k8s-ingress", "namespace": ns},
            "spec": {
                "hosts": [host],
                "gateways": [f"istio-system/{gateway}"],
                "http": [
                    {
                        "match": [{"uri": {"exact": f"/.well-known/acme-challenge/{token}"}}],
                        "route": [
                            {
                                "destination": {
                                    "host": f"cm-acme-http-solver-xyz.{ns}.svc.cluster.local",
                                    "port": {"number": 8089},
                                },
                                "weight": 100,
                            }
                        ],
                    }
                ],
            },
        },
    ]


@pytest.mark.parametrize(("name", "host"), [("staging", "staging.mesh.example.com"), ("prod", "mesh.example.com")])
def test_acme_challenge_stays_reachable_on_port_80_with_the_https_redirect(like, name, host) -> None:
    rec = like(name)
    challenge = "/.well-known/acme-challenge/t0ken"
    renewal = [*rec.manifests(), *_acme_solver(host, "t0ken")]
    servers = gateway_servers(renewal)
    assert answer(servers, 80, host, challenge) == "istio-ingress/cm-acme-http-solver-xyz * 100%"
    assert answer(servers, 80, host, "/v1") == f"redirect https://{host}/v1"
    assert answer(servers, 443, host, "/v1") == "demo/my-service v1 100%"
    # The check can fail: a server-level httpsRedirect (what the stack rendered before) redirects the
    # challenge too, because the solver's route merges into the same virtual host.
    broken = [o for o in renewal if o["metadata"]["name"] not in ("mesh-gateway-http", "https-redirect")]
    gw = next(o for o in broken if o["metadata"]["name"] == "mesh-gateway")
    server_level = {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [host], "tls": {"httpsRedirect": True}}
    gw["spec"] = {**gw["spec"], "servers": [*gw["spec"]["servers"], server_level]}
    assert answer(gateway_servers(broken), 80, host, challenge) == f"redirect https://{host}{challenge}"


def test_https_redirect_is_a_catch_all_route_on_its_own_port_80_gateway(like) -> None:
    rec = like("staging")
    gws = {g["metadata"]["name"]: g["spec"] for g in objects(rec, "Gateway")}
    assert [s["port"]["number"] for s in gws["mesh-gateway"]["servers"]] == [443]
    (http,) = gws["mesh-gateway-http"]["servers"]
    assert http["port"]["number"] == 80 and "tls" not in http
    (redirect,) = [v["spec"] for v in objects(rec, "VirtualService") if v["metadata"]["name"] == "https-redirect"]
    assert redirect == {
        "hosts": ["*"],
        "gateways": [f"{NS}/mesh-gateway-http"],
        "http": [{"name": "https-redirect", "redirect": {"scheme": "https", "redirectCode": 301}}],
    }
