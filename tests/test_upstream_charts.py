"""The program's assumptions about the charts it installs, against what the real charts render.

tests/data/upstream_charts.yaml records, with sources, the pods, Services and ports each real chart
renders at the pinned version. Every NetworkPolicy peer the stack writes for a chart's namespace
must select a pod that chart really runs, every port it opens there must be one those pods really
listen on, the Gateway must select the real gateway pods, and every in-cluster address the stack
hands a chart (the CA address, Kiali's Prometheus URL) must be a real Service port. The table is
read from upstream, never from components/, so a constant the program gets wrong fails here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from combinations import OFFERED, render

TABLE = yaml.safe_load((Path(__file__).parent / "data" / "upstream_charts.yaml").read_text())
NS_LABEL = "kubernetes.io/metadata.name"
#: What istiod's injector adds to a pod annotated ``sidecar.istio.io/inject: "true"``: the proxy's
#: 15090 (istio/istio manifests/charts/istio-control/istio-discovery/files/injection-template.yaml and
#: gateway-injection-template.yaml @1.31.0-rc.0: containerPort http-envoy-prom 15090) and the agent's
#: 15020 (merged metrics) and 15021 (health), served without a declared containerPort.
INJECTED_PORTS = {15020, 15021, 15090}


@dataclass(frozen=True)
class Pod:
    chart: str
    name: str
    labels: dict
    ports: frozenset


def chart_pods(table: dict, gateway_ns: str) -> dict[str, list[Pod]]:
    """namespace → the pods the real charts run there, each with every port it listens on."""
    out: dict[str, list[Pod]] = {}
    for chart, row in table.items():
        ns = row["release"]["namespace"]
        ns = gateway_ns if ns == "<istio.gatewayNamespace>" else ns
        for w in row["workloads"]:
            labels = w["podLabels"]
            ports = {p["containerPort"] for p in w["ports"]}
            ports |= {p["targetPort"] for s in row["services"] if s["selector"].items() <= labels.items() for p in s["ports"]}
            annotations = w.get("podAnnotations", {})
            if "prometheus.io/port" in annotations:
                ports.add(int(annotations["prometheus.io/port"]))
            if annotations.get("sidecar.istio.io/inject") == "true":
                ports |= INJECTED_PORTS
            out.setdefault(ns, []).append(Pod(chart, w["name"], labels, frozenset(ports)))
    return out


def _matches(selector: dict | None, labels: dict) -> bool:
    selector = selector or {}
    if not (selector.get("matchLabels") or {}).items() <= labels.items():
        return False
    for e in selector.get("matchExpressions") or []:
        has = e["key"] in labels
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
        if e["operator"] == "NotIn" and has and labels[e["key"]] in e["values"]:
            return False
        if (e["operator"], has) in (("Exists", False), ("DoesNotExist", True)):
            return False
    return True


def _gateway_ns(releases: list[dict]) -> str:
    """Where the stack installs the gateway chart (istio.gatewayNamespace)."""
    return next(r["namespace"] for r in releases if r["chart"] == "gateway")


def mismatches(manifests: list[dict], releases: list[dict], table: dict, gateway_ns: str = "istio-ingress") -> list[str]:
    pods = chart_pods(table, gateway_ns)
    own_labels: dict[str, list[dict]] = {}  # the program's own workloads (Jaeger, the apps), by namespace
    for m in manifests:
        if m["kind"] == "Deployment":
            own_labels.setdefault(m["metadata"]["namespace"], []).append(m["spec"]["template"]["metadata"]["labels"])
    problems = []
    for m in manifests:
        if m["kind"] != "NetworkPolicy":
            continue
        ref = f"NetworkPolicy {m['metadata']['namespace']}/{m['metadata']['name']}"
        spec = m["spec"]
        for direction, peers_key in (("egress", "to"), ("ingress", "from")):
            for rule in spec.get(direction) or []:
                ports = [p["port"] for p in rule.get("ports") or [] if isinstance(p.get("port"), int)]
                for peer in rule.get(peers_key) or []:
                    ns = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get(NS_LABEL)
                    if ns not in pods:
                        continue
                    hit = [p for p in pods[ns] if _matches(peer.get("podSelector"), p.labels)]
                    if not hit and not any(_matches(peer.get("podSelector"), lab) for lab in own_labels.get(ns, [])):
                        problems.append(
                            f"{ref}: {direction} peer {peer.get('podSelector')} in {ns} selects no pod the charts run"
                        )
                        continue
                    if direction == "egress" and hit:
                        for port in ports:
                            if not any(port in p.ports for p in hit):
                                problems.append(
                                    f"{ref}: egress to {ns} {[p.name for p in hit]} on {port}, which they do not listen on "
                                    f"(they listen on {sorted(set().union(*(p.ports for p in hit)))})"
                                )
        ns = m["metadata"]["namespace"]
        if ns in pods:
            selected = [p for p in pods[ns] if _matches(spec.get("podSelector"), p.labels)]
            if not selected and not any(_matches(spec.get("podSelector"), lab) for lab in own_labels.get(ns, [])):
                problems.append(f"{ref}: podSelector {spec.get('podSelector')} selects no pod in {ns}")
            only_chart = (
                selected
                and spec.get("podSelector")
                and not any(_matches(spec.get("podSelector"), lab) for lab in own_labels.get(ns, []))
            )
            for rule in spec.get("ingress") or [] if only_chart else []:
                for p in rule.get("ports") or []:
                    if isinstance(p.get("port"), int) and not any(p["port"] in s.ports for s in selected):
                        problems.append(f"{ref}: admits {p['port']} to {[s.name for s in selected]}, which they do not listen on")
    for m in manifests:
        if m["kind"] == "Gateway" and m["apiVersion"].startswith("networking.istio.io"):
            selector = {"matchLabels": m["spec"]["selector"]}
            if not any(_matches(selector, p.labels) for p in pods.get(gateway_ns, [])):
                problems.append(f"Gateway {m['metadata']['namespace']}/{m['metadata']['name']}: selects no gateway pod")
    services = {
        (s["name"], (gateway_ns if row["release"]["namespace"].startswith("<") else row["release"]["namespace"])): {
            p["port"] for p in s["ports"]
        }
        for row in table.values()
        for s in row["services"]
    }
    for address, what in _addresses(releases):
        host, port = address
        name, _, rest = host.partition(".")
        ns = rest.split(".")[0]
        if port not in services.get((name, ns), set()):
            problems.append(
                f"{what}: {name}.{ns}:{port} is no Service port of the charts ({sorted(services.get((name, ns), []))})"
            )
    return problems


def _addresses(releases: list[dict]) -> list[tuple[tuple[str, int], str]]:
    """In-cluster addresses the stack hands the charts: (host, port), where from."""
    out = []
    for r in releases:
        values = r["values"]
        ca = (values.get("global") or {}).get("caAddress")
        if ca:
            host, _, port = ca.rpartition(":")
            out.append(((host, int(port)), f"{r['chart']} global.caAddress"))
        url = (
            (((values.get("external_services") or {}).get("prometheus") or {}).get("url"))
            if r["chart"] == "kiali-server"
            else None
        )
        if url:
            u = urlsplit(url)
            out.append(((u.hostname, u.port or 80), f"{r['chart']} external_services.prometheus.url"))
    return out


def _releases(rec) -> list[dict]:
    return [r.inputs for r in rec.by_type("kubernetes:helm.sh/v3:Release")]


#: Every option on, for each provider: what the stack can ask of the charts.
EVERYTHING = [c for c in OFFERED if c.cni and c.ca == "cert-manager" and c.observability and c.cert_manager]


@pytest.mark.parametrize("combo", EVERYTHING, ids=[c.id for c in EVERYTHING])
def test_the_program_selects_real_pods_and_opens_ports_they_listen_on(combo) -> None:
    rec = render(combo)
    manifests = rec.manifests()
    assert not mismatches(manifests, _releases(rec), TABLE, _gateway_ns(_releases(rec)))


def test_the_addresses_the_program_hands_the_charts_are_checked() -> None:
    rec = render(EVERYTHING[0])
    found = {what for _, what in _addresses(_releases(rec))}
    assert found == {"istiod global.caAddress", "kiali-server external_services.prometheus.url"}


# --- each check can fail -------------------------------------------------------------------------


def _mutated(table_edit=None, manifest_edit=None, release_edit=None) -> list[str]:
    rec = render(EVERYTHING[0])
    manifests = copy.deepcopy(rec.manifests())
    releases = copy.deepcopy(_releases(rec))
    table = copy.deepcopy(TABLE)
    if table_edit:
        table_edit(table)
    if manifest_edit:
        manifest_edit(manifests)
    if release_edit:
        release_edit(releases)
    return mismatches(manifests, releases, table, _gateway_ns(releases))


def _workload(table: dict, chart: str, name: str) -> dict:
    return next(w for w in table[chart]["workloads"] if w["name"] == name)


def test_a_chart_whose_pods_lose_a_label_the_program_selects_fails() -> None:
    def edit(t):
        del _workload(t, "istiod", "istiod")["podLabels"]["app"]

    assert any("selects no pod the charts run" in p for p in _mutated(table_edit=edit))


def test_a_chart_that_moves_a_port_the_program_opens_fails() -> None:
    def edit(t):
        w = _workload(t, "istiod", "istiod")
        w["ports"] = [p for p in w["ports"] if p["containerPort"] != 15012]
        for s in t["istiod"]["services"]:
            s["ports"] = [p for p in s["ports"] if p["targetPort"] != 15012]

    assert any("on 15012, which they do not listen on" in p for p in _mutated(table_edit=edit))


def test_a_program_selector_no_real_pod_carries_fails() -> None:
    # What offline/verify/intent.py once assumed of Prometheus: an `app: prometheus` label it lacks.
    def edit(manifests):
        for m in manifests:
            if m["kind"] == "NetworkPolicy":
                for rule in m["spec"].get("ingress") or []:
                    for peer in rule.get("from") or []:
                        if (peer.get("podSelector") or {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "prometheus":
                            peer["podSelector"]["matchLabels"]["app"] = "prometheus"

    assert any("selects no pod the charts run" in p for p in _mutated(manifest_edit=edit))


def test_a_service_port_the_charts_do_not_serve_fails() -> None:
    def edit(releases):
        for r in releases:
            if r["chart"] == "kiali-server":
                r["values"]["external_services"]["prometheus"]["url"] = "http://prometheus-server.observability.svc:9090"

    assert any("prometheus-server.observability:9090 is no Service port" in p for p in _mutated(release_edit=edit))
