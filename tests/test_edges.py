"""mesh_platform/edges.py: the one table of cross-component edges, wired by the program, checked by verify."""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
from pathlib import Path

import pulumi
import pytest
from combinations import OFFERED, Combo, render, stack_file
from conftest import LIKE, render_config, write_stack_file

from mesh_platform import edges
from mesh_platform.loader import parse
from mesh_platform.settings import Settings
from offline import engine
from offline.engine import ROOT, Recording
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


def test_the_program_wires_each_edge_once_by_name_where_it_builds_the_waiting_component() -> None:
    tree = _program()
    parents = _parents(tree)
    wired = _wirings(tree)
    for call, edge in wired:
        assert edge in edges.EDGES, ast.unparse(call)
        assert HELPERS[ast.unparse(call.func)] == edge.via, ast.unparse(call)
        assert _constructor(call, parents) == edge.component, ast.unparse(call)
    named = [edge.id for _, edge in wired]
    assert sorted(named) == sorted(e.id for e in edges.EDGES), "each edge of the table is wired exactly once"


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


@pytest.mark.slow  # the verifier's whole pipeline
def test_dropping_default_deny_before_the_workloads_fails_verify(monkeypatch, tmp_path) -> None:
    victim = next(e for e in edges.EDGES if e.before is edges.DEFAULT_DENY and e.component == "apps")
    _dropping(monkeypatch, tmp_path, victim)
    result = verify_stack("dev", config_file=write_stack_file(tmp_path / "Pulumi.dev.yaml", **LIKE["dev"]))
    assert not result.ok
    order = [v for v in result.violations if v.rule == "order"]
    assert order and all("NetworkPolicy demo/default-deny" in v.message for v in order)
    assert {v.object.split()[0] for v in order} >= {"Deployment", "Service", "VirtualService"}


#: Still ordered when dropped: the gateway release itself waits for istiod, and the workloads for the gateway.
IMPLIED = {("istio.istiod", "apps")}


@pytest.mark.slow  # two renders per edge, of a changed program
@pytest.mark.parametrize("victim", edges.EDGES, ids=lambda e: e.id)
def test_dropping_any_edge_from_the_program_is_an_order_violation(monkeypatch, tmp_path, victim: edges.Edge) -> None:
    # Rendered afresh: the program changes below.
    stack, config = ("test", {"istio": {"ca": "cert-manager"}}) if victim.before is edges.CA_ISSUER else ("dev", LIKE["dev"])
    settings = parse(config, stack)

    def record() -> engine.Recording:
        return render_config(stack, **config)

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


# --- the table and the program agree ---------------------------------------------------------


def _component_of(recording: Recording) -> dict[str, str]:
    """Each resource's URN → the resource name of the program's component it belongs to."""
    by_urn = recording.by_urn()
    out = {}
    for urn in by_urn:
        r = by_urn[urn]
        while r.parent in by_urn and by_urn[r.parent].type != "pulumi:pulumi:Stack":
            r = by_urn[r.parent]
        out[urn] = r.name
    return out


def _disagreements(recording: Recording, s: Settings) -> list[str]:
    """Where the recorded graph and the table differ: a component built or not against the table,
    a dependency across components that no edge names, an edge that applies but is not there."""
    out = []
    component = _component_of(recording)
    built = {r.name for r in recording.resources if r.type.startswith("mesh-platform:index:")}
    expected = {c.name for c in edges.installed(s)}
    out += [f"component {c} is built, yet the table says it is not installed" for c in sorted(built - expected)]
    out += [f"component {c} is not built, yet the table says it is installed" for c in sorted(expected - built)]
    crossing = {(d, component[r.urn]) for r in recording.resources for d in r.dependencies if component[d] != component[r.urn]}
    named = {(u, e.component): e for e in edges.applying(s) for u in invariants.found(recording, e.before, s)}
    out += [f"{component[u]}'s {u} -> {waiter}: no edge of the table" for u, waiter in sorted(crossing - set(named))]
    for e in edges.applying(s):
        if not any(pair in crossing for pair, edge in named.items() if edge == e):
            out.append(f"edge {e.id} applies, but nothing of {e.component} depends on it")
    return out


@pytest.mark.slow  # every option combination
@pytest.mark.parametrize("combo", OFFERED, ids=[c.id for c in OFFERED])
def test_the_table_and_the_wiring_agree_for_every_offered_combination(combo: Combo) -> None:
    recording = render(combo)
    s = engine.settings(stack_file(combo), "combo")
    assert _disagreements(recording, s) == []
    assert invariants.edges_hold(recording, s) == []


def test_the_agreement_check_sees_an_edge_outside_the_table_and_one_missing(like) -> None:
    recording = like("dev")
    s = parse(LIKE["dev"], "dev")
    assert _disagreements(recording, s) == []
    broken = copy.deepcopy(recording)
    ready = next(r.urn for r in broken.resources if r.type == edges.CALICO_READY.type)
    namespace = next(r for r in broken.resources if r.name == "observability-ns")
    namespace.dependencies.append(ready)
    for r in broken.resources:
        if r.name.startswith("gateway-tls"):
            r.dependencies = [d for d in r.dependencies if "ClusterIssuer" not in d]
    found = _disagreements(broken, s)
    assert any(ready in f and "-> observability: no edge of the table" in f for f in found), found
    assert f"edge {edges.GATEWAY_ISSUER_BEFORE_GATEWAY_TLS.id} applies, but nothing of gateway-tls depends on it" in found


# --- the program's order is the install order -------------------------------------------------

EVERYTHING = Combo(cni=True, ca="cert-manager", observability=True, cert_manager=True, provider="kind")


def _builds(stmt: ast.stmt, component: str) -> bool:
    return any(_built(n) == component for n in ast.walk(stmt))


def _path(tree: ast.Module, component: str) -> list[tuple[list[ast.stmt], int]]:
    """Where ``component`` is built: each (statement list, index) from the module down to the
    statement that builds it, through the ``if`` blocks it sits in."""
    path = []
    body: list[ast.stmt] = tree.body
    while True:
        i = next(i for i, stmt in enumerate(body) if _builds(stmt, component))
        path.append((body, i))
        branches = [b for b in (getattr(body[i], "body", None), getattr(body[i], "orelse", None)) if b]
        inner = [b for b in branches if isinstance(b, list) and any(_builds(s, component) for s in b)]
        if not isinstance(body[i], ast.If) or not inner:
            return path
        body = inner[0]


def _apart(tree: ast.Module, edge: edges.Edge) -> tuple[list[ast.stmt], int, int]:
    """The statement list holding both ends of ``edge`` apart, and the indexes of their statements."""
    for (b_body, b), (w_body, w) in zip(_path(tree, edge.before.of.name), _path(tree, edge.component), strict=False):
        assert b_body is w_body
        if b != w:
            return b_body, b, w
    raise AssertionError(f"{edge.id}: one statement builds both components")


@pytest.mark.parametrize("edge", edges.EDGES, ids=lambda e: e.id)
def test_moving_a_component_above_what_it_waits_for_is_a_name_error_there(tmp_path, monkeypatch, edge: edges.Edge) -> None:
    tree = _program()
    body, before, waiter = _apart(tree, edge)
    assert before < waiter, "the program builds a component before what it waits for"
    assigned = {t.id for s in body[before:waiter] for n in ast.walk(s) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}  # fmt: skip
    body.insert(before, body.pop(waiter))
    program = tmp_path / "__main__.py"
    program.write_text(ast.unparse(tree))
    monkeypatch.setattr(engine, "PROGRAM", program)
    config = {f"mesh-platform:{k}": json.dumps(v) for k, v in EVERYTHING.config().items()}
    with pytest.raises(NameError) as err:
        engine.run("test", config=config)
    # A name the moved constructor needs and the statements it was moved above define.
    assert err.value.name in assigned, err.value


# --- the wiring helpers fail at once ----------------------------------------------------------


def _resource(type_: str, name: str) -> pulumi.CustomResource:
    """A resource object as the program holds one, without registering it."""
    r = pulumi.CustomResource.__new__(pulumi.CustomResource)
    r._type, r._name = type_, name
    return r


def test_wait_hands_back_the_resource_of_its_edge() -> None:
    ready = _resource(edges.CALICO_READY.type, "calico-installation")
    assert edges.wait(edges.CALICO_BEFORE_ISTIO, ready) is ready


def test_wait_refuses_the_wrong_resource_a_data_edge_and_an_edge_outside_the_table() -> None:
    namespace = _resource("kubernetes:core/v1:Namespace", "istio-gateway-ns")
    with pytest.raises(TypeError, match=r"edge calico\.ready->istio waits for a kubernetes:operator\.tigera\.io/v1:Installation, not kubernetes:core/v1:Namespace 'istio-gateway-ns'"):  # fmt: skip
        edges.wait(edges.CALICO_BEFORE_ISTIO, namespace)
    with pytest.raises(TypeError, match=r"waits for a .*, not str"):
        edges.wait(edges.CALICO_BEFORE_ISTIO, "calico")  # type: ignore[type-var]
    with pytest.raises(TypeError, match=r"is a 'data' edge: wire it with edges\.read, not edges\.wait"):
        edges.wait(edges.GATEWAY_CERTIFICATE_TO_APPS, namespace)
    stray = dataclasses.replace(edges.CALICO_BEFORE_ISTIO, reason="some other reason")
    with pytest.raises(ValueError, match=r"is not in mesh_platform/edges\.py's EDGES"):
        edges.wait(stray, namespace)


def test_read_refuses_a_plain_value_and_an_after_edge() -> None:
    with pytest.raises(TypeError, match=r"is an? 'after' edge: wire it with edges\.wait, not edges\.read"):
        edges.read(edges.CALICO_BEFORE_ISTIO, ["x"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"needs an Output of cluster\.node-probe, not list"):
        edges.read(edges.NODE_PROBE_TO_OBSERVABILITY, ["10.0.0.0/16"])  # type: ignore[arg-type]
