"""offline.verify.routing: routes as istiod programs them, and subsets that must resolve to pods."""

from __future__ import annotations

import copy

import pytest
from conftest import objects

from offline.verify import Route
from offline.verify import routing as r
from offline.verify.routing import answer, gateway_servers, table


def test_dev_routing_table(stack) -> None:
    routes, violations = table(stack("dev").manifests())
    assert violations == []
    assert routes == [
        Route("localhost", "/", "demo/my-service", "v2", 100),
        Route("localhost", "/v1", "demo/my-service", "v1", 100),
        Route("my-service.demo.svc.cluster.local", "/", "demo/my-service", "v2", 100),
        Route("my-service.demo.svc.cluster.local", "/v1", "demo/my-service", "v1", 100),
    ]


@pytest.mark.parametrize("name", ["dev", "lab"])
def test_the_gateway_answers_what_the_readme_promises(stack, name) -> None:
    """README "Try it": /v1 → v1 and / → v2, on 80 and on 443, for Host localhost (port ignored)."""
    servers = gateway_servers(stack(name).manifests())
    assert {(s.gateway, s.port, s.protocol) for s in servers} == {
        ("demo/mesh-gateway", 80, "HTTP"),
        ("demo/mesh-gateway", 443, "HTTPS"),
    }
    for port in (80, 443):
        assert answer(servers, port, "localhost", "/v1") == "demo/my-service v1 100%"
        assert answer(servers, port, "localhost", "/") == "demo/my-service v2 100%"
        assert answer(servers, port, "localhost", "/v1/deeper") == "demo/my-service v1 100%"
        assert answer(servers, port, "example.org", "/") in ("404", "no listener")


@pytest.mark.parametrize("name", ["dev", "lab", "staging", "prod"])
def test_every_gateway_server_of_every_stack_gets_routes(stack, name) -> None:
    servers = gateway_servers(stack(name).manifests())
    assert servers and all(s.routed for s in servers), [(s.gateway, s.port, s.bound) for s in servers]
    assert table(stack(name).manifests())[1] == []


# --- istiod's name rules, with the examples of istiod's own doc comments ------------------------


def test_shortnames_resolve_per_namespace() -> None:
    assert r.resolve_host("localhost", "demo") == "localhost.demo.svc.cluster.local"
    assert r.resolve_host("my-service", "shop") == "my-service.shop.svc.cluster.local"
    for literal in ("*", "*.example.com", "my-service.demo", "10.0.0.1", "app.example.com"):
        assert r.resolve_host(literal, "demo") == literal


def test_gateway_references() -> None:
    assert r.resolve_gateway("gw", "demo") == "demo/gw"
    assert r.resolve_gateway("./gw", "demo") == "demo/gw"
    assert r.resolve_gateway("istio-ingress/gw", "demo") == "istio-ingress/gw"
    assert r.resolve_gateway("gw.istio-ingress.svc.cluster.local", "demo") == "istio-ingress/gw"
    assert r.resolve_gateway("mesh", "demo") == "mesh"


def test_host_intersection_and_namespaced_server_hosts() -> None:
    # pkg/config/host/names.go Intersection's examples
    assert r.intersection(["foo.com", "bar.com"], ["*.com"]) == ["foo.com", "bar.com"]
    assert r.intersection(["foo.com", "*.net"], ["*.com", "bar.net"]) == ["foo.com", "bar.net"]
    assert r.intersection(["foo.com", "*.net"], ["*.bar.net"]) == ["*.bar.net"]
    assert r.intersection(["foo.com"], ["bar.com"]) == []
    assert r.intersection(["localhost"], ["*"]) == ["localhost"]
    assert r.intersection(["localhost"], ["localhost.demo.svc.cluster.local"]) == []
    # NamesForNamespace's examples
    assert r.hosts_for_namespace(["ns1/foo.com", "ns2/bar.com"], "ns1") == ["foo.com"]
    assert r.hosts_for_namespace(["ns1/foo.com", "*/bar.com"], "ns3") == ["bar.com"]
    assert r.hosts_for_namespace(["foo.com", "ns2/bar.com"], "ns3") == ["foo.com"]


# --- your own manifests ---------------------------------------------------------------------------


def _gateway(hosts, ns="web", name="gw", **server) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"istio": "ingress"},
            "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": hosts, **server}],
        },
    }


def _vs(hosts, gateways, ns="web", name="app", **extra) -> dict:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"hosts": hosts, "gateways": gateways, "http": [{"route": [{"destination": {"host": "app"}}]}], **extra},
    }


def _app(ns="web") -> list[dict]:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": ns},
        "spec": {"template": {"metadata": {"labels": {"app": "app"}}}},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "app", "namespace": ns},
        "spec": {"selector": {"app": "app"}},
    }
    return [deployment, service]


def test_one_word_host_bound_to_a_gateway_fails_and_a_dotted_one_passes() -> None:
    routes, violations = table([_gateway(["shop"]), _vs(["shop"], ["gw"]), *_app()])
    assert [v.object for v in violations] == ["Gateway web/gw"]
    assert violations[0].message == (
        "server port 80 (HTTP) hosts ['shop'] gets no route, so istiod answers 404 there: VirtualService web/app "
        "hosts ['shop.web.svc.cluster.local'] (as istiod resolves them) do not intersect"
    )
    assert not [x for x in routes if x.host == "shop"]
    routes, violations = table([_gateway(["shop.example.com"]), _vs(["shop.example.com"], ["gw"]), *_app()])
    assert violations == []
    assert routes == [Route("shop.example.com", "/", "web/app", "*", 100)]


def test_wildcards_namespaces_and_references() -> None:
    # *.suffix on the Gateway, a concrete host on the VirtualService
    assert table([_gateway(["*.example.com"]), _vs(["a.example.com"], ["web/gw"]), *_app()])[0] == [
        Route("a.example.com", "/", "web/app", "*", 100)
    ]
    # a server host limited to another namespace does not take this VirtualService
    _, violations = table([_gateway(["other/a.example.com"]), _vs(["a.example.com"], ["gw"]), *_app()])
    assert "gets no route" in violations[0].message
    # ./host means the Gateway's own namespace
    assert table([_gateway(["./a.example.com"]), _vs(["a.example.com"], ["gw"]), *_app()])[1] == []
    # a short gateway name means the VirtualService's namespace, not the Gateway's
    _, violations = table([_gateway(["a.example.com"], ns="edge"), _vs(["a.example.com"], ["gw"]), *_app()])
    assert {v.message for v in violations} >= {"binds to gateway 'web/gw', which does not exist"}


def test_export_to_hides_a_virtual_service_from_the_gateway() -> None:
    gateway_pods = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ingress", "namespace": "istio-ingress"},
        "spec": {"template": {"metadata": {"labels": {"istio": "ingress"}}}},
    }
    base = [_gateway(["a.example.com"]), gateway_pods, *_app()]
    assert table([*base, _vs(["a.example.com"], ["gw"])])[1] == []
    for export in (["."], ["web"]):
        _, violations = table([*base, _vs(["a.example.com"], ["gw"], exportTo=export)])
        assert "is not exported to the gateway's namespace (istio-ingress)" in violations[0].message
    assert table([*base, _vs(["a.example.com"], ["gw"], exportTo=["istio-ingress"])])[1] == []


def test_gateway_without_any_virtual_service() -> None:
    _, violations = table([_gateway(["a.example.com"])])
    assert violations[0].message.endswith("no VirtualService binds to it")


def test_routes_land_on_the_servers_of_their_port() -> None:
    gw = _gateway(["a.example.com"])
    gw["spec"]["servers"].append(
        {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["a.example.com"], "tls": {"mode": "SIMPLE"}}
    )
    vs = _vs(["a.example.com"], ["gw"])
    vs["spec"]["http"] = [
        {"match": [{"port": 443, "uri": {"prefix": "/"}}], "route": [{"destination": {"host": "app", "subset": "v2"}}]},
        {"route": [{"destination": {"host": "app"}}]},
    ]
    servers = gateway_servers([gw, vs, *_app()])
    assert answer(servers, 443, "a.example.com", "/x") == "web/app v2 100%"
    assert answer(servers, 80, "a.example.com", "/x") == "web/app * 100%"
    assert {s.route_config for s in servers} == {"http.80", "https.443.https.gw.web"}


# --- the existing checks ---------------------------------------------------------------------


def test_subset_without_pods_or_definition_is_a_violation(stack) -> None:
    objs = copy.deepcopy(stack("dev").manifests())
    for vs in (o for o in objs if o["kind"] == "VirtualService"):
        vs["spec"]["http"][0]["route"][0]["destination"]["subset"] = "v3"
    _, violations = table(objs)
    assert {v.message for v in violations} == {"http[0] names subset 'v3' of demo/my-service, which no DestinationRule defines"}
    objs = copy.deepcopy(stack("dev").manifests())
    objs = [o for o in objs if not (o["kind"] == "Deployment" and o["metadata"]["name"] == "my-service-v1")]
    _, violations = table(objs)
    assert violations and all("subset v1 of demo/my-service selects no pods" in v.message for v in violations)


def test_weights_and_unknown_gateway(stack) -> None:
    objs = copy.deepcopy(stack("dev").manifests())
    vs = next(o for o in objs if o["kind"] == "VirtualService" and o["metadata"]["name"] == "my-service-gateway")
    vs["spec"]["gateways"].append("demo/nope")
    vs["spec"]["http"][1]["route"] = [
        {"destination": {"host": "my-service", "subset": "v1"}, "weight": 50},
        {"destination": {"host": "my-service", "subset": "v2"}, "weight": 30},
    ]
    routes, violations = table(objs)
    assert sorted(v.message for v in violations) == [
        "binds to gateway 'demo/nope', which does not exist",
        "http[1] weights sum to 80, not 100",
    ]
    assert Route("localhost", "/", "demo/my-service", "v1", 50) in routes


def test_canary_split_in_the_table(run) -> None:
    apps = {
        "services": [
            {
                "name": "web",
                "port": 8080,
                "versions": ["v1", "v2"],
                "expose": True,
                "routes": [{"destinations": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}]}],
            }
        ]
    }
    routes, violations = table(run(apps=apps).manifests())
    assert violations == []
    assert [x for x in routes if x.host == "localhost"] == [
        Route("localhost", "/", "demo/web", "v1", 90),
        Route("localhost", "/", "demo/web", "v2", 10),
    ]
    assert objects(run(apps=apps), "VirtualService")


def test_a_route_behind_another_catch_all_never_answers() -> None:
    """Two VirtualServices merge into one virtual host; the first catch-all wins, the second never answers."""
    first = _vs(["a.example.com"], ["gw"], name="first")
    second = _vs(["*"], ["gw"], name="second")
    second["spec"]["http"] = [
        {"match": [{"uri": {"prefix": "/api"}}], "route": [{"destination": {"host": "app", "subset": "v2"}}]},
        {"route": [{"destination": {"host": "app", "subset": "v2"}}]},
    ]
    objs = [_gateway(["a.example.com"]), first, second, *_app()]
    servers = gateway_servers(objs)
    assert answer(servers, 80, "a.example.com", "/api/x") == "web/app v2 100%"  # moved before the catch-alls
    assert answer(servers, 80, "a.example.com", "/") == "web/app * 100%"
    routes, violations = table(objs)
    assert [(v.object, v.message) for v in violations if "never answers" in v.message] == [
        (
            "VirtualService web/second",
            "http[1] / never answers for host a.example.com on port 80 (route configuration http.80): "
            "VirtualService web/first http[0] catches every path first",
        )
    ]
    assert Route("a.example.com", "/", "web/app", "v2", 100) not in routes


def test_wildcard_host_bound_to_the_mesh_is_refused() -> None:
    _, violations = table([_vs(["*"], ["mesh"]), *_app()])
    assert [v.message for v in violations] == ["host '*' is not allowed on a VirtualService bound to the mesh"]


def test_the_readme_try_it_commands_answer_as_written(stack) -> None:
    """Each `curl … localhost:<host port>/<path>   # <service> <version>` of the Quick start, through the
    kind port mapping (8080 → gateway 80, 8443 → 443), answers with that service and version."""
    import re

    from mesh_platform.settings import KindSettings
    from offline.engine import ROOT

    quick = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    kind = KindSettings()
    ports = {kind.http_host_port: 80, kind.https_host_port: 443}
    servers = gateway_servers(stack("dev").manifests())
    checked = 0
    for m in re.finditer(r"curl -s .*?https?://([a-z.]+):(\d+)(/\S*)\s+# (\S+) (v\d+)", quick):
        host, port, path, service, version = m.groups()
        assert answer(servers, ports[int(port)], host, path) == f"demo/{service} {version} 100%", m.group(0)
        checked += 1
    assert checked == 3
