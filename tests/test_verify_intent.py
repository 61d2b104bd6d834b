"""offline.verify.intent: flows must equal the declared calls plus the platform's needs."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import pytest
import yaml

from mesh_platform.loader import parse
from offline.verify import Flow, intent
from offline.verify.connectivity import Peer, flows
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


# --- the chart pods are modelled as the real charts label them ---------------------------------

TABLE = yaml.safe_load((Path(__file__).parent / "data" / "upstream_charts.yaml").read_text())


def _recorded(chart: str, workload: str) -> dict:
    return next(w for w in TABLE[chart]["workloads"] if w["name"] == workload)


def test_prometheus_and_kiali_pods_carry_the_labels_their_charts_give_them() -> None:
    settings = parse(ALL_ON, "test")
    prom, kiali = intent.prometheus_peer(settings), intent.kiali_peer(settings)
    assert prom.labels == {k: str(v) for k, v in _recorded("prometheus", "prometheus-server")["podLabels"].items()}
    assert prom.service_account == _recorded("prometheus", "prometheus-server")["serviceAccount"]
    # The prometheus chart sets no `app` label on its server pods (templates/_helpers.tpl, recorded).
    assert "app" not in prom.labels
    assert kiali.labels == {k: str(v) for k, v in _recorded("kiali-server", "kiali")["podLabels"].items()}
    assert {p.name for p in peers(settings)} >= {"prometheus", "kiali"}


def _selecting_app_prometheus(objects):
    """The program's policies, each selector of the Prometheus pods also asking for ``app: prometheus``."""
    out = copy.deepcopy(objects)
    for o in out:
        if o.get("kind") != "NetworkPolicy":
            continue
        selectors = [o["spec"].get("podSelector") or {}]
        for direction, key in (("ingress", "from"), ("egress", "to")):
            selectors += [
                peer.get("podSelector") or {} for rule in o["spec"].get(direction) or [] for peer in rule.get(key) or []
            ]
        for sel in selectors:
            if (sel.get("matchLabels") or {}).get("app.kubernetes.io/name") == "prometheus":
                sel["matchLabels"]["app"] = "prometheus"
    return out


def test_a_policy_for_a_prometheus_label_the_real_pods_lack_is_caught() -> None:
    settings = parse(ALL_ON, "test")
    objects = _selecting_app_prometheus(_all_on())
    messages = [v.message for v in check(settings, flows(objects, peers(settings), {"demo", "observability"}))]
    assert any("blocks declared observability/prometheus → demo/" in m and "platform need: scrapes" in m for m in messages), (
        messages
    )
    # The model this replaces (an `app: prometheus` label the chart never sets) let exactly that pass.
    old = [p for p in peers(settings) if p.name != "prometheus"]
    prom = intent.prometheus_peer(settings)
    old.append(Peer(prom.namespace, prom.name, {**prom.labels, "app": "prometheus"}, prom.service_account))
    assert check(settings, flows(objects, old, {"demo", "observability"})) == []
