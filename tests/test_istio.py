"""Istio: pinned charts in order, gateway NodePorts matching kind's port mappings, STRICT mTLS."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from conftest import objects, one, run_config

from mesh_platform.versions import ISTIO_REPO, ISTIO_VERSION

RELEASE = "kubernetes:helm.sh/v3:Release"


def test_charts_share_one_pinned_version(like) -> None:
    dev = like("dev")
    charts = {r.inputs["chart"]: r for r in dev.by_type(RELEASE) if r.inputs["repositoryOpts"]["repo"] == ISTIO_REPO}
    assert set(charts) == {"base", "istiod", "gateway"}
    assert {r.inputs["version"] for r in charts.values()} == {ISTIO_VERSION}


def test_chain_base_istiod_gateway(like) -> None:
    dev = like("dev")
    base, istiod, gateway = (one(dev, RELEASE, f"istio-{n}") for n in ("base", "istiod", "gateway"))
    assert base.urn in istiod.dependencies and istiod.urn in gateway.dependencies
    assert base.inputs["values"]["base"]["validationFailurePolicy"] == "Fail"


def test_gateway_node_ports_match_kind_port_mappings(like) -> None:
    dev = like("dev")
    gateway = one(dev, RELEASE, "istio-gateway")
    assert gateway.inputs["name"] == "istio-ingress"
    svc = gateway.inputs["values"]["service"]
    assert svc["type"] == "NodePort"
    node_ports = {p["name"]: p.get("nodePort") for p in svc["ports"]}
    kind_cfg = yaml.safe_load(one(dev, "command:local:Command", "cluster-kind").inputs["stdin"])
    mapped = {m["containerPort"]: m["hostPort"] for m in kind_cfg["nodes"][0]["extraPortMappings"]}
    assert mapped == {node_ports["http2"]: 8080, node_ports["https"]: 8443}


def test_cni_option_adds_the_cni_chart_and_tells_istiod() -> None:
    rec = run_config(istio={"cni": True})
    cni = one(rec, RELEASE, "istio-cni")
    istiod = one(rec, RELEASE, "istio-istiod")
    assert cni.urn in istiod.dependencies
    assert istiod.inputs["values"]["pilot"]["cni"] == {"enabled": True}
    system = next(n for n in objects(rec, "Namespace") if n["metadata"]["name"] == "istio-system")
    assert system["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_without_cni_istiod_keeps_istio_init(like) -> None:
    istiod = one(like("dev"), RELEASE, "istio-istiod")
    assert istiod.inputs["values"]["pilot"]["cni"] == {"enabled": False}
    assert not [r for r in like("dev").by_type(RELEASE) if r.inputs["chart"] == "cni"]


def test_mesh_wide_mtls_is_strict_and_waits_for_istiod(like) -> None:
    dev = like("dev")
    pa = one(dev, "kubernetes:security.istio.io/v1:PeerAuthentication", "istio-mtls-strict")
    assert pa.inputs["metadata"] == {"name": "default", "namespace": "istio-system"}
    assert pa.inputs["spec"] == {"mtls": {"mode": "STRICT"}}
    assert one(dev, RELEASE, "istio-istiod").urn in pa.dependencies


def test_istiod_finds_the_ingress_service_in_the_gateway_namespace(like) -> None:
    # meshConfig.ingressService is looked up in K8S_INGRESS_NS (istiod's default: istio-system).
    values = one(like("dev"), RELEASE, "istio-istiod").inputs["values"]
    gateway = one(like("dev"), RELEASE, "istio-gateway")
    assert values["meshConfig"]["ingressService"] == gateway.inputs["name"]
    assert values["pilot"]["env"]["K8S_INGRESS_NS"] == gateway.inputs["namespace"] == "istio-ingress"
    other = one(run_config(istio={"gatewayNamespace": "edge"}), RELEASE, "istio-istiod")
    assert other.inputs["values"]["pilot"]["env"]["K8S_INGRESS_NS"] == "edge"


def test_with_istio_csr_istiod_waits_for_its_issued_certificate() -> None:
    rec = run_config(istio={"ca": "cert-manager"})
    istiod = one(rec, RELEASE, "istio-istiod")
    csr = one(rec, RELEASE, "istio-cert-manager-istio-csr")
    cert = one(rec, "kubernetes:cert-manager.io/v1:Certificate", "istio-istiod-cert")
    assert csr.urn in istiod.dependencies and cert.urn in istiod.dependencies
    assert cert.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    assert cert.inputs["metadata"]["namespace"] == "istio-system"
    assert cert.inputs["spec"]["secretName"] == "istiod-tls"
    assert cert.inputs["spec"]["dnsNames"] == ["istiod.istio-system.svc"]
    # The chart would make a second, unawaited one of the same name.
    assert csr.inputs["values"]["app"]["tls"]["istiodCertificateEnable"] is False
    assert istiod.inputs["values"]["pilot"]["env"]["ENABLE_CA_SERVER"] == "false"


# --- replicas spread over zones and nodes, and a PDB that lets a drain through ----------------

TABLE = yaml.safe_load((Path(__file__).parent / "data" / "upstream_charts.yaml").read_text())
SPREAD_KEYS = {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def spread_problems(chart: str, values: dict, table: dict = TABLE) -> list[str]:
    """istiod's or the gateway's replicas, spread and PDB against the pods the real chart runs."""
    pod = table[chart]["workloads"][0]
    scoped = values.get("pilot", {}) if chart == "istiod" else values
    replicas = scoped.get("replicaCount", 1)
    constraints = scoped.get("topologySpreadConstraints") or []
    problems = []
    if replicas <= 1:
        return [f"{chart}: spread constraints with one replica"] if constraints else []
    keys = {c["topologyKey"] for c in constraints}
    if keys != SPREAD_KEYS:
        problems.append(f"{chart}: spread over {sorted(keys)}, not {sorted(SPREAD_KEYS)}")
    for c in constraints:
        selector = c.get("labelSelector", {}).get("matchLabels") or {}
        if not selector or not selector.items() <= pod["podLabels"].items():
            problems.append(f"{chart}: spread selector {selector} does not select the chart's pods")
        if c["whenUnsatisfiable"] != "ScheduleAnyway":
            # Hard spreading strands a replica where nodes or zones are fewer than replicas (kind, a drain).
            problems.append(f"{chart}: {c['topologyKey']} is {c['whenUnsatisfiable']}")
    if chart == "istiod":
        if not (values.get("global", {}).get("defaultPodDisruptionBudget") or {}).get("enabled"):
            return [*problems, "istiod: no PodDisruptionBudget"]
        min_available = (scoped.get("pdb") or {}).get("minAvailable", table["istiod"]["podDisruptionBudget"]["minAvailable"])
    else:
        min_available = (values.get("podDisruptionBudget") or {}).get("minAvailable")
        if min_available is None:
            return [*problems, "gateway: no PodDisruptionBudget"]
    if not 1 <= min_available < replicas:
        problems.append(
            f"{chart}: PDB minAvailable {min_available} of {replicas} replicas (a drain needs one to go, one to stay)"
        )
    return problems


def _istio_values(rec) -> dict[str, dict]:
    return {c: copy.deepcopy(one(rec, RELEASE, f"istio-{c}").inputs["values"]) for c in ("istiod", "gateway")}


def test_prod_spreads_istiod_and_the_gateway_and_lets_a_drain_through(like) -> None:
    for chart, values in _istio_values(like("prod")).items():
        assert spread_problems(chart, values) == [], chart


def test_one_replica_gets_no_spread(like) -> None:
    for chart, values in _istio_values(like("dev")).items():
        assert spread_problems(chart, values) == [], chart
        assert "topologySpreadConstraints" not in (values.get("pilot", values))


def test_a_spread_that_selects_other_pods_is_hard_or_a_pdb_that_blocks_a_drain_fails(like) -> None:
    values = _istio_values(like("prod"))
    values["gateway"]["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"] = {"istio": "ingressgateway"}
    values["gateway"]["podDisruptionBudget"]["minAvailable"] = 2
    problems = spread_problems("gateway", values["gateway"])
    assert any("does not select the chart's pods" in p for p in problems)
    assert any("minAvailable 2 of 2" in p for p in problems)
    values["istiod"]["pilot"]["topologySpreadConstraints"] = values["istiod"]["pilot"]["topologySpreadConstraints"][:1]
    values["istiod"]["pilot"]["topologySpreadConstraints"][0]["whenUnsatisfiable"] = "DoNotSchedule"
    problems = spread_problems("istiod", values["istiod"])
    assert any("not ['kubernetes.io/hostname'" in p for p in problems)
    assert any("is DoNotSchedule" in p for p in problems)
    table = copy.deepcopy(TABLE)
    table["istiod"]["podDisruptionBudget"]["minAvailable"] = 2
    assert any("minAvailable 2 of 2" in p for p in spread_problems("istiod", _istio_values(like("prod"))["istiod"], table))
