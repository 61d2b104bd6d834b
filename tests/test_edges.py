"""mesh_platform/edges.py: the one table of cross-component edges, applied by the program, checked by verify."""

from __future__ import annotations

import ast
import json

import pytest

from mesh_platform import edges
from mesh_platform.loader import parse
from offline import engine
from offline.engine import ROOT
from offline.verify import invariants
from offline.verify.pipeline import verify_stack


def test_every_edge_has_a_one_line_reason() -> None:
    for e in edges.EDGES:
        assert e.reason and "\n" not in e.reason and len(e.reason) < 140, e


def test_the_program_takes_every_after_from_the_table() -> None:
    tree = ast.parse((ROOT / "__main__.py").read_text())
    afters = [kw.value for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords if kw.arg == "after"]
    assert afters, "no component gets an after= any more"
    for value in afters:
        assert isinstance(value, ast.Call) and ast.unparse(value.func) == "edges.after", ast.unparse(value)
    components = {ast.literal_eval(v.args[0]) for v in afters}
    assert components == {e.component for e in edges.EDGES if e.via == "after"}


def _dropping(monkeypatch, victim: edges.Edge) -> None:
    real = edges.after

    def after(component, s, registered):
        out = real(component, s, registered)
        if component == victim.component:
            out = [r for r in out if r is not registered[victim.before.key]]
        return out

    monkeypatch.setattr(edges, "after", after)


def test_dropping_default_deny_before_the_workloads_fails_verify(monkeypatch) -> None:
    victim = next(e for e in edges.EDGES if e.before is edges.DEFAULT_DENY and e.component == "apps")
    _dropping(monkeypatch, victim)
    result = verify_stack("dev")
    assert not result.ok
    order = [v for v in result.violations if v.rule == "order"]
    assert order and all("NetworkPolicy demo/default-deny" in v.message for v in order)
    assert {v.object.split()[0] for v in order} >= {"Deployment", "Service", "VirtualService"}


#: Still ordered when dropped: the gateway release itself waits for istiod, and the workloads for the gateway.
IMPLIED = {("istio.istiod", "apps")}


@pytest.mark.parametrize("victim", [e for e in edges.EDGES if e.via == "after"], ids=lambda e: f"{e.before.key}->{e.component}")
def test_dropping_any_applied_edge_is_an_order_violation(monkeypatch, victim: edges.Edge) -> None:
    if victim.before is edges.CA_ISSUER:
        config = {"istio": {"ca": "cert-manager"}}
        settings = parse(config, "test")

        def record() -> engine.Recording:
            return engine.run("test", config={f"mesh-platform:{k}": json.dumps(v) for k, v in config.items()})
    else:
        settings = engine.settings(engine.stack_file("dev"), "dev")

        def record() -> engine.Recording:
            return engine.run("dev")

    assert victim.when(settings)
    assert invariants.edges_hold(record(), settings) == []
    _dropping(monkeypatch, victim)
    found = invariants.edges_hold(record(), settings)
    if (victim.before.key, victim.component) in IMPLIED:
        assert found == []
    else:
        assert found and all(v.rule == "order" for v in found)


def test_edges_follow_the_settings() -> None:
    plain = parse({"observability": {"enabled": False}, "certManager": {"enabled": False}}, "t")
    on = {(e.before.key, e.component) for e in edges.applying(plain)}
    assert ("istio.istiod", "observability") not in on and ("cert-manager.ca-issuer", "istio") not in on
    assert ("zero-trust.default-deny", "apps") in on and ("calico.ready", "istio") in on
