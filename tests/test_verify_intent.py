"""tools.verify.intent: flows must equal the declared calls plus the platform's needs."""

from __future__ import annotations

import copy

from components.settings import parse
from tools.verify import Flow
from tools.verify.intent import check, expected


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
