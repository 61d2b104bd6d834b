"""offline.verify.sidecar: ports the sidecar does not capture inbound are the CNI's alone."""

from __future__ import annotations

from verify_cases import DENY_ALL, allow, netpol, shop

from components import observability
from offline.verify import intent, sidecar
from offline.verify.connectivity import flows

ALLOW_NOTHING = {
    "apiVersion": "security.istio.io/v1",
    "kind": "AuthorizationPolicy",
    "metadata": {"name": "allow-nothing", "namespace": "shop"},
    "spec": {},
}


def _meshed(*extra: dict, annotations: dict[str, str] | None = None, injected: bool = True) -> list[dict]:
    calls = allow("shop", "frontend", "api", 8080)
    for policy in calls:  # the same call on every sidecar port too
        rule = (policy["spec"].get("ingress") or policy["spec"].get("egress"))[0]
        rule["ports"] = [{"protocol": "TCP", "port": p} for p in (8080, 15020, 15021, 15090)]
    objs = shop(netpol("shop", "deny-all", DENY_ALL), *calls, ALLOW_NOTHING, *extra)
    if injected:
        objs[0]["metadata"]["labels"]["istio-injection"] = "enabled"
    api = next(o for o in objs if o["metadata"]["name"] == "api-v1")
    api["spec"]["template"]["metadata"]["annotations"] = annotations or {}
    return objs


def combined(objs) -> set[tuple[str, str, str]]:
    return {(f.src, f.dst, f.port) for f in flows(objs, scope={"shop"}) if f.layer == "combined" and f.dst == "shop/api"}


def test_uncaptured_ports_pass_an_allow_nothing_policy_captured_ones_do_not() -> None:
    assert combined(_meshed()) == {("shop/frontend", "shop/api", p) for p in ("15020", "15021", "15090")}


def test_the_exclude_annotation_takes_a_port_out_of_the_mesh() -> None:
    got = combined(_meshed(annotations={sidecar.EXCLUDE_INBOUND: "8080"}))
    assert ("shop/frontend", "shop/api", "8080") in got


def test_an_include_list_leaves_every_other_port_uncaptured() -> None:
    got = combined(_meshed(annotations={sidecar.INCLUDE_INBOUND: "9000"}))
    assert ("shop/frontend", "shop/api", "8080") in got
    assert combined(_meshed(annotations={sidecar.INCLUDE_INBOUND: "8080"})) == combined(_meshed())


def test_a_status_port_of_zero_captures_15020() -> None:
    got = combined(_meshed(annotations={sidecar.STATUS_PORT: "0"}))
    assert ("shop/frontend", "shop/api", "15020") not in got and ("shop/frontend", "shop/api", "15021") in got


def test_who_runs_a_sidecar() -> None:
    ns = {"on": {"istio-injection": "enabled"}, "rev": {"istio.io/rev": "stable"}, "off": {}}

    def pod(namespace: str, **annotations: str) -> dict:
        return {
            "kind": "Deployment",
            "metadata": {"namespace": namespace},
            "spec": {"template": {"metadata": {"annotations": annotations}}},
        }

    assert sidecar.capture(pod("on"), ns) is not None and sidecar.capture(pod("rev"), ns) is not None
    assert sidecar.capture(pod("off"), ns) is None
    assert sidecar.capture(pod("on", **{sidecar.INJECT: "false"}), ns) is None
    assert sidecar.capture(pod("off", **{sidecar.INJECT: "true"}), ns) is not None


def test_istio_s_always_excluded_ports_and_the_scraped_one_agree() -> None:
    # istio/istio injection-template.yaml: istio-iptables -d "15090,15021,<statusPort 15020>".
    assert {"15090", "15021", "15020"} == sidecar.ALWAYS_EXCLUDED
    assert set(intent.SIDECAR_METRIC_PORTS) <= sidecar.ALWAYS_EXCLUDED
    assert {str(p) for p in observability.SIDECAR_METRICS_PORTS} == set(intent.SIDECAR_METRIC_PORTS)


def test_prometheus_scrapes_every_dev_workload_in_the_combined_flows(verified) -> None:
    result = verified("dev")
    scrapes = {
        (f.dst, f.port)
        for f in result.flows
        if f.layer == "combined" and f.src == "observability/prometheus" and f.dst.startswith("demo/")
    }
    assert scrapes == {(f"demo/{w}", "15020") for w in ("client", "frontend", "my-service")}
    # The mesh layer's own verdict is unchanged: scrapes never meet an AuthorizationPolicy.
    assert not [
        f for f in result.flows if f.layer == "mesh" and f.src == "observability/prometheus" and f.dst.startswith("demo/")
    ]
