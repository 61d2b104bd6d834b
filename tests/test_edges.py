"""mesh_platform/edges.py: the one table of cross-component edges, wired by the program, checked by verify."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from mesh_platform import edges
from mesh_platform.settings import parse
from offline import engine
from offline.engine import ROOT
from offline.verify import invariants
from offline.verify.pipeline import verify_stack

HELPERS = {"edges.wait": "after", "edges.read": "data"}


def _program() -> ast.Module:
    return ast.parse((ROOT / "__main__.py").read_text())


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _built(node: ast.AST) -> str | None:
    """The resource name a component's constructor call gives (``Istio("istio", ...)``), else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id[:1].isupper() and node.args:
        first = node.args[0]
        return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
    return None


def _constructor(call: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    """The resource name of the component whose constructor ``call`` sits in."""
    node = parents.get(call)
    while node is not None:
        name = _built(node)
        if name is not None:
            return name
        node = parents.get(node)
    raise AssertionError(f"{ast.unparse(call)} is not inside a component's constructor")


def _wirings(tree: ast.AST) -> list[tuple[ast.Call, edges.Edge]]:
    """Every ``edges.wait``/``edges.read`` call of the program, with the edge it names."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in HELPERS:
            name = node.args[0]
            assert isinstance(name, ast.Attribute) and ast.unparse(name.value) == "edges", ast.unparse(node)
            out.append((node, getattr(edges, name.attr)))
    return out


def test_every_edge_has_a_one_line_reason() -> None:
    for e in edges.EDGES:
        assert e.reason and "\n" not in e.reason and len(e.reason) < 140, e


def test_the_program_takes_every_after_from_the_table() -> None:
    tree = _program()
    parents = _parents(tree)
    afters = [kw.value for node in ast.walk(tree) if isinstance(node, ast.Call) for kw in node.keywords if kw.arg == "after"]
    assert afters, "no component gets an after= any more"
    for value in afters:
        # A list of edges.wait(...), an optional one as `*([edges.wait(...)] if ... else [])`.
        assert isinstance(value, ast.List), ast.unparse(value)
        for element in value.elts:
            if isinstance(element, ast.Starred):
                assert isinstance(element.value, ast.IfExp), ast.unparse(element)
                assert isinstance(element.value.orelse, ast.List) and not element.value.orelse.elts, ast.unparse(element)
                assert isinstance(element.value.body, ast.List), ast.unparse(element)
                inner = element.value.body.elts
            else:
                inner = [element]
            for item in inner:
                assert isinstance(item, ast.Call) and ast.unparse(item.func) == "edges.wait", ast.unparse(item)
    components = {_constructor(v, parents) for v in afters}
    assert components == {e.component for e in edges.EDGES if e.via == "after"}


def _without(victim: edges.Edge) -> str:
    """The program with the wiring of ``victim`` taken out: an ``after`` edge's resource leaves its
    list; a ``data`` edge's Output is read as the same value with no dependency on its resource."""
    tree = _program()
    parents = _parents(tree)
    [call] = [call for call, edge in _wirings(tree) if edge == victim]
    holder = parents[call]
    if victim.via == "after":
        assert isinstance(holder, ast.List), ast.unparse(holder)
        holder.elts.remove(call)
    else:
        value = ast.unparse(call.args[1])
        bare = ast.parse(f"pulumi.Output(set(), {value}.future(), {value}.is_known(), {value}.is_secret())", mode="eval").body
        for field, old in ast.iter_fields(holder):
            if old is call:
                setattr(holder, field, bare)
    return ast.unparse(tree)


def _dropping(monkeypatch, tmp_path: Path, victim: edges.Edge) -> None:
    program = tmp_path / "__main__.py"
    program.write_text(_without(victim))
    monkeypatch.setattr(engine, "PROGRAM", program)


def test_dropping_default_deny_before_the_workloads_fails_verify(monkeypatch, tmp_path) -> None:
    victim = next(e for e in edges.EDGES if e.before is edges.DEFAULT_DENY and e.component == "apps")
    _dropping(monkeypatch, tmp_path, victim)
    result = verify_stack("dev")
    assert not result.ok
    order = [v for v in result.violations if v.rule == "order"]
    assert order and all("NetworkPolicy demo/default-deny" in v.message for v in order)
    assert {v.object.split()[0] for v in order} >= {"Deployment", "Service", "VirtualService"}


#: Still ordered when dropped: the gateway release itself waits for istiod, and the workloads for the gateway.
IMPLIED = {("istio.istiod", "apps")}


@pytest.mark.parametrize("victim", edges.EDGES, ids=lambda e: e.id)
def test_dropping_any_edge_from_the_program_is_an_order_violation(monkeypatch, tmp_path, victim: edges.Edge) -> None:
    if victim.before is edges.CA_ISSUER:
        config = {"istio": {"ca": "cert-manager"}}
        settings = parse(config, "test")

        def record() -> engine.Recording:
            return engine.run("test", config={f"mesh-platform:{k}": json.dumps(v) for k, v in config.items()})
    else:
        settings = engine.settings(engine.stack_file("dev"), "dev")

        def record() -> engine.Recording:
            return engine.run("dev")

    assert victim.applies(settings)
    assert invariants.edges_hold(record(), settings) == []
    _dropping(monkeypatch, tmp_path, victim)
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
