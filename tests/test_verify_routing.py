"""tools.verify.routing: the routing table and subsets that must resolve to pods."""

from __future__ import annotations

import copy

from conftest import objects

from tools.verify import Route
from tools.verify.routing import table


def test_dev_routing_table(stack) -> None:
    routes, violations = table(stack("dev").manifests())
    assert violations == []
    assert routes == [
        Route("localhost", "/", "demo/my-service", "v2", 100),
        Route("localhost", "/v1", "demo/my-service", "v1", 100),
        Route("my-service.demo.svc.cluster.local", "/", "demo/my-service", "v2", 100),
        Route("my-service.demo.svc.cluster.local", "/v1", "demo/my-service", "v1", 100),
    ]


def test_subset_without_pods_or_definition_is_a_violation(stack) -> None:
    objs = copy.deepcopy(stack("dev").manifests())
    vs = next(o for o in objs if o["kind"] == "VirtualService")
    vs["spec"]["http"][0]["route"][0]["destination"]["subset"] = "v3"
    _, violations = table(objs)
    assert [v.message for v in violations] == ["http[0] names subset 'v3' of demo/my-service, which no DestinationRule defines"]
    objs = copy.deepcopy(stack("dev").manifests())
    objs = [o for o in objs if not (o["kind"] == "Deployment" and o["metadata"]["name"] == "my-service-v1")]
    _, violations = table(objs)
    assert len(violations) == 1 and "subset v1 of demo/my-service selects no pods" in violations[0].message


def test_weights_and_unknown_gateway(stack) -> None:
    objs = copy.deepcopy(stack("dev").manifests())
    vs = next(o for o in objs if o["kind"] == "VirtualService")
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
    assert [r for r in routes if r.host == "localhost"] == [
        Route("localhost", "/", "demo/web", "v1", 90),
        Route("localhost", "/", "demo/web", "v2", 10),
    ]
    assert objects(run(apps=apps), "VirtualService")
