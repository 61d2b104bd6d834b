"""SampleApps: routing table, subsets resolving to Deployments, hardening, config validation."""

from __future__ import annotations

import pulumi
import pytest
from conftest import graph, objects, one, run_config

from components.settings import parse

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


def test_routing_table_is_the_seeds(stack) -> None:
    assert _routes(stack("dev")) == {"my-service": [("/v1", [("v1", 100)]), (None, [("v2", 100)])]}


def test_retries_timeout_and_gateway_binding(stack) -> None:
    (vs,) = objects(stack("dev"), "VirtualService")
    assert vs["spec"]["gateways"] == ["mesh", f"{NS}/mesh-gateway"]
    assert vs["spec"]["hosts"] == [f"my-service.{NS}.svc.cluster.local", "localhost"]
    catch_all = vs["spec"]["http"][1]
    assert catch_all["retries"]["attempts"] == 3 and catch_all["retries"]["perTryTimeout"] == "2s"
    assert catch_all["timeout"] == "10s"
    (gw,) = objects(stack("dev"), "Gateway")
    assert gw["spec"]["selector"] == {"istio": "ingress"}
    assert gw["spec"]["servers"][0]["port"] == {"number": 80, "name": "http", "protocol": "HTTP"}


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
    assert _routes(run_config(apps=apps)) == {"my-service": [(None, [("v1", 90), ("v2", 10)])]}


def test_every_subset_exists_and_selects_a_deployment(stack) -> None:
    rec = stack("dev")
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


def test_workloads_are_hardened(stack) -> None:
    deployments = [d for d in objects(stack("dev"), "Deployment") if d["metadata"]["namespace"] == NS]
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


def test_frontend_is_labelled_and_calls_my_service(stack) -> None:
    (fe,) = [d for d in objects(stack("dev"), "Deployment") if d["metadata"]["name"] == "frontend-v1"]
    assert fe["spec"]["template"]["metadata"]["labels"]["role"] == "frontend"
    caller = next(c for c in fe["spec"]["template"]["spec"]["containers"] if c["name"] == "caller")
    assert f"http://my-service.{NS}.svc.cluster.local:5000/" in caller["command"][-1]


def test_workloads_start_after_istiod_and_default_deny(stack) -> None:
    rec = stack("dev")
    g = graph(rec)
    istiod = one(rec, "kubernetes:helm.sh/v3:Release", "istio-istiod").urn
    deny = one(rec, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "zero-trust-np-default-deny").urn
    deployments = [d for d in rec.by_type("kubernetes:apps/v1:Deployment") if d.inputs["metadata"]["namespace"] == NS]
    assert len(deployments) == 4
    for d in deployments:
        assert istiod in d.dependencies and deny in d.dependencies, d.urn
        assert g.waits_for(d.urn, istiod)


def test_stack_outputs_show_the_routing(stack) -> None:
    out = stack("dev").outputs
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
        "routes[0] has no prefix (catch-all) but is not the last route",
    ),
    ("sidecar port", {"services": [{**SVC, "port": 15020}]}, "port 15020 is reserved by the Istio sidecar"),
    ("bad host", {"hosts": ["Not A Host"]}, "mesh-platform:apps.hosts[0]: must be a lower-case DNS name"),
]


@pytest.mark.parametrize(("case", "apps", "message"), BAD_APPS, ids=[b[0] for b in BAD_APPS])
def test_invalid_app_config_is_rejected(case, apps, message) -> None:
    with pytest.raises(pulumi.RunError) as err:
        parse({"apps": apps}, "dev")
    assert message in str(err.value), str(err.value)
