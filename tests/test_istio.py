"""Istio: pinned charts in order, gateway NodePorts matching kind's port mappings, STRICT mTLS."""

from __future__ import annotations

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
