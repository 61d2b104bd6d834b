"""offline.verify.intent: flows must equal the declared calls plus the platform's needs."""

from __future__ import annotations

import copy
from functools import cache

import pytest

from mesh_platform.loader import parse
from offline.verify import Flow
from offline.verify.connectivity import flows
from offline.verify.intent import check, expected, peers


def test_expected_flows_of_the_default_demo() -> None:
    want = expected(parse({}, "dev"))
    assert ("demo/client", "demo/my-service", "5000") in want["cni"]
    assert ("istio-ingress/istio-ingress", "demo/my-service", "5000") in want["mesh"]
    assert ("demo/frontend", "kube-system/coredns", "53/UDP") in want["cni"]
    assert not [w for w in want["cni"] if w[1] == "demo/frontend"], "nothing may reach frontend"


def _flows_for(settings):
    want = expected(settings)
    return [Flow(s, d, p, layer) for layer in ("cni", "mesh") for s, d, p in want[layer]]


def test_exact_flows_pass_and_each_difference_is_named() -> None:
    settings = parse({}, "dev")
    flows = _flows_for(settings)
    assert check(settings, flows) == []
    extra = [*flows, Flow("demo/client", "demo/frontend", "8080", "cni")]
    (v,) = check(settings, extra)
    assert v.message == "cni layer allows demo/client → demo/frontend:8080, which the config does not declare"
    missing = [f for f in copy.copy(flows) if not (f.layer == "mesh" and f.src == "demo/frontend")]
    (v,) = check(settings, missing)
    assert v.message == "mesh layer blocks declared demo/frontend → demo/my-service:5000"


def test_stack_verification_is_clean(verified) -> None:
    result = verified("dev")
    assert [v for v in result.violations if v.rule == "intent"] == []
    assert result.violations == [] and result.ok


# --- mutation: remove one needed allow, verify must name the flow it breaks ---------------------

ALL_ON = {"istio": {"ca": "cert-manager"}, "observability": {"enabled": True}}


@cache
def _all_on():
    from conftest import run_config

    return run_config(**ALL_ON).manifests()


def _without_rule(objects, ns, name, keep):
    """The manifests with NetworkPolicy ns/name removed, or only the rules ``keep`` accepts left in it."""
    out = []
    for o in copy.deepcopy(objects):
        if o.get("kind") == "NetworkPolicy" and o["metadata"] == {"name": name, "namespace": ns}:
            if keep is None:
                continue
            for direction in ("ingress", "egress"):
                if direction in o["spec"]:
                    o["spec"][direction] = [r for r in o["spec"][direction] if keep(r)]
        out.append(o)
    assert len(out) != len(objects) or keep is not None, f"no NetworkPolicy {ns}/{name} to remove"
    return out


def _ports(rule):
    return {str(p["port"]) for p in rule.get("ports", [])}


MUTATIONS = [
    ("dns", "demo", "allow-dns", None, "demo/client → kube-system/coredns:53/UDP (platform need: DNS"),
    ("istiod", "demo", "allow-istiod", None, "demo/my-service → istio-system/istiod:15012 (platform need: istiod"),
    (
        "ca endpoint",
        "demo",
        "allow-mesh-ca",
        None,
        "demo/frontend → cert-manager/cert-manager-istio-csr:6443 (platform need: CA endpoint",
    ),
    ("tracing out", "demo", "allow-tracing", None, "demo/client → observability/jaeger:4317 (platform need: tracing"),
    (
        "tracing in",
        "observability",
        "jaeger",
        lambda r: "4317" not in _ports(r),
        "demo/client → observability/jaeger:4317 (platform need: tracing",
    ),
    (
        "scrapes in",
        "demo",
        "allow-metrics-scrape",
        None,
        "observability/prometheus → demo/my-service:15020 (platform need: scrapes",
    ),
    (
        "scrapes out",
        "observability",
        "prometheus",
        lambda r: "15020" not in _ports(r),
        "observability/prometheus → demo/frontend:15020 (platform need: scrapes",
    ),
    (
        "gateway",
        "demo",
        "my-service-from-gateway",
        None,
        "istio-ingress/istio-ingress → demo/my-service:5000 (platform need: gateway",
    ),
]


def _verify(objects):
    settings = parse(ALL_ON, "test")
    return check(settings, flows(objects, peers(settings), {"demo", "observability"}))


def test_the_unmutated_stack_with_every_need_is_clean() -> None:
    assert _verify(_all_on()) == []


@pytest.mark.parametrize(("need", "ns", "policy", "keep", "message"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_removing_a_needed_allow_fails_verify(need, ns, policy, keep, message) -> None:
    violations = _verify(_without_rule(_all_on(), ns, policy, keep))
    assert any(message in v.message and "blocks declared" in v.message for v in violations), (need, violations)


def test_the_ca_need_follows_the_option() -> None:
    csr = ("demo/client", "cert-manager/cert-manager-istio-csr", "6443")
    assert csr not in expected(parse({}, "dev"))["cni"]
    assert csr in expected(parse({"istio": {"ca": "cert-manager"}}, "dev"))["cni"]
    assert "cert-manager-istio-csr" in {p.name for p in peers(parse({"istio": {"ca": "cert-manager"}}, "dev"))}


def test_removing_the_gateway_from_the_mesh_allow_fails_verify() -> None:
    objects = copy.deepcopy(_all_on())
    (allow,) = [o for o in objects if o.get("kind") == "AuthorizationPolicy" and o["metadata"]["name"] == "my-service-allow"]
    for rule in allow["spec"]["rules"]:
        for src in rule["from"]:
            src["source"]["principals"] = [p for p in src["source"]["principals"] if "istio-ingress" not in p]
    messages = [v.message for v in _verify(objects)]
    assert "mesh layer blocks declared istio-ingress/istio-ingress → demo/my-service:5000" in messages, messages
