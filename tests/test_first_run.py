"""What a first stack of one's own meets: the config check catches what verify would otherwise
report later in its own terms (an exposed service without routes), verify's internal order
messages never reach a valid config (one non-exposed service), and a stack that sets nothing says
which defaults it runs on."""

from __future__ import annotations

import copy
from pathlib import Path

import pulumi
import pytest
from conftest import run_config, write_stack_file

from mesh_platform import edges
from mesh_platform.loader import parse
from mesh_platform.settings import Settings, defaults_used
from offline.verify import invariants, pipeline
from offline.verify.__main__ import main as verify

WEB = {"name": "web", "port": 8080}


def _problems(**groups) -> str:
    with pytest.raises(pulumi.RunError) as err:
        parse(groups, "mine")
    return str(err.value)


# --- an exposed service needs a route ------------------------------------------------------------


def test_an_exposed_service_without_routes_is_refused_at_config_time() -> None:
    err = _problems(apps={"services": [{**WEB, "expose": True}]})
    assert err.splitlines() == [
        "invalid stack configuration:",
        "  mesh-platform:apps.services[0].routes: service 'web' has expose true but no routes (got none), so the "
        "gateway would answer 404 for it; allowed: at least one route, such as routes: [{destinations: [{subset: v1}]}], "
        "or expose false",
    ]


@pytest.mark.parametrize(
    "service",
    [{**WEB, "expose": True, "routes": [{"destinations": [{"subset": "v1"}]}]}, {**WEB, "expose": False}, WEB],
)
def test_an_exposed_service_with_a_route_or_an_unexposed_one_passes(service) -> None:
    assert parse({"apps": {"services": [service]}}, "mine").apps.services[0].name == "web"


def test_the_rule_is_reported_beside_the_others() -> None:
    err = _problems(apps={"services": [{**WEB, "expose": True, "allowFrom": ["nobody"]}]}, cluster={"workers": 99})
    assert "cluster.workers" in err and "allowFrom[0]" in err and "services[0].routes" in err


def test_what_the_rule_prevents_is_what_verify_reports_later(tmp_path: Path, monkeypatch) -> None:
    """With the rule taken out, the same stack passes the config check and verify reports the 404
    in routing's terms: the rule moves a fact of the verifier to config time, no more."""
    from mesh_platform import settings

    monkeypatch.delattr(settings.Service, "_exposed_has_a_route")
    f = write_stack_file(tmp_path / "Pulumi.mine.yaml", apps={"services": [{**WEB, "expose": True}]})
    result = pipeline.verify_stack("mine", f, None)
    assert [v.rule for v in result.violations] == ["routing", "routing"]
    assert all("gets no route, so istiod answers 404 there" in v.message for v in result.violations)


# --- no internal order message for a valid config ------------------------------------------------

VALID = {
    "one non-exposed service": {"apps": {"services": [WEB]}},
    "one non-exposed service, client off": {"apps": {"services": [WEB], "client": False}},
    "one exposed service": {"apps": {"services": [{**WEB, "expose": True, "routes": [{"destinations": [{"subset": "v1"}]}]}]}},
    "no cert-manager, one non-exposed service": {"apps": {"services": [WEB]}, "certManager": {"enabled": False}},
    "apps off": {"apps": {"enabled": False}},
    "empty": {},
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_valid_config_gets_no_order_violation(name: str, tmp_path: Path) -> None:
    f = write_stack_file(tmp_path / "Pulumi.mine.yaml", **VALID[name])
    result = pipeline.verify_stack("mine", f, None)
    order = [str(v) for v in result.violations if v.rule == "order"]
    assert not order, order


def test_the_certificate_edge_applies_only_with_an_https_server() -> None:
    exposed = parse(VALID["one exposed service"], "mine")
    hidden = parse(VALID["one non-exposed service"], "mine")
    assert edges.GATEWAY_CERTIFICATE_TO_APPS in edges.applying(exposed)
    assert edges.GATEWAY_CERTIFICATE_TO_APPS not in edges.applying(hidden)


def test_the_certificate_edge_still_fails_an_exposed_stack_that_does_not_read_it() -> None:
    recording = copy.deepcopy(run_config("mine", **VALID["one exposed service"]))
    s = parse(VALID["one exposed service"], "mine")
    assert not invariants.edges_hold(recording, s)
    cert = invariants.found(recording, edges.GATEWAY_CERTIFICATE, s)
    for r in recording.resources:  # cut the data edge: nothing of the apps reads the certificate
        r.dependencies = [d for d in r.dependencies if d not in cert]
    messages = [v.message for v in invariants.edges_hold(recording, s)]
    assert any(m.startswith("nothing reads Certificate istio-ingress/gateway-tls") for m in messages), messages


# --- a stack that sets nothing says which defaults it runs on -----------------------------------


def test_an_empty_stack_names_its_defaults() -> None:
    line = defaults_used(parse({}, "mine"))
    assert line is not None
    assert line.startswith("stack mine sets nothing of its own and runs on the defaults: cluster kind 'mesh-mine', Kubernetes ")
    s = Settings(stack="mine")
    for shown in (s.calico.version, s.istio.version, s.cert_manager.version, "my-service (v1+v2, exposed)", "observability off"):
        assert shown in line


def test_a_stack_repeating_defaults_is_default_only_and_one_value_of_its_own_is_not() -> None:
    assert defaults_used(parse({"cluster": {"provider": "kind", "workers": 1}, "apps": {"enabled": True}}, "mine"))
    assert defaults_used(parse({"cluster": {"workers": 2}}, "mine")) is None


def test_verify_and_render_print_the_line_for_an_empty_stack_only(tmp_path: Path, capsys) -> None:
    from offline import render

    empty = write_stack_file(tmp_path / "Pulumi.mine.yaml")
    assert verify(["--config-file", str(empty), "--format", "json"]) == 0
    got = capsys.readouterr()
    assert got.err.startswith("note: stack mine sets nothing of its own") and got.err.count("\n") == 1
    assert got.out.startswith("{"), "the JSON report stays JSON"
    assert render.main(["--config-file", str(empty), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err.startswith("note: stack mine sets nothing")
    own = write_stack_file(tmp_path / "Pulumi.own.yaml", cluster={"workers": 0})
    assert verify(["--config-file", str(own)]) == 0
    assert "note:" not in capsys.readouterr().err
