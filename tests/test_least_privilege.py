"""Least privilege: what the charts would grant or mount that the stack does not need is left out.

Each fact comes from tests/data/upstream_charts.yaml (read in the charts at their pinned tags), never
from components/, and each check is shown able to fail on a broken input.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from combinations import OFFERED, render

TABLE = yaml.safe_load((Path(__file__).parent / "data" / "upstream_charts.yaml").read_text())
RELEASE = "kubernetes:helm.sh/v3:Release"


def _releases(combo) -> dict[str, dict]:
    return {r.inputs["chart"]: r.inputs for r in render(combo).by_type(RELEASE)}


def _go_to_string(value) -> str:
    """Sprig's ``toString``: a YAML boolean false is "false", as the string "false" is."""
    return str(value).lower() if isinstance(value, bool) else str(value)


# --- istiod: no Gateway API deployment controller RBAC ----------------------------------------


def rendered_conditional_roles(istiod_values: dict, table: dict = TABLE) -> list[str]:
    """The istiod chart's conditional ClusterRoles these values leave in."""
    env = {**(istiod_values.get("env") or {}), **((istiod_values.get("pilot") or {}).get("env") or {})}
    return [
        role["name"]
        for role in table["istiod"]["conditionalClusterRoles"]
        if _go_to_string(env.get(role["env"])) != role["omitted_when"]
    ]


@pytest.mark.parametrize("combo", OFFERED[:: max(1, len(OFFERED) // 8)], ids=lambda c: c.id)
def test_istiod_gets_no_gateway_deployment_controller_role(combo) -> None:
    assert rendered_conditional_roles(_releases(combo)["istiod"]["values"]) == []


def test_an_istiod_with_the_deployment_controller_on_would_get_the_role() -> None:
    values = copy.deepcopy(_releases(OFFERED[0])["istiod"]["values"])
    del values["pilot"]["env"]["PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER"]
    assert rendered_conditional_roles(values) == ["istiod-gateway-controller-istio-system"]
    values["pilot"]["env"]["PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER"] = "False"
    assert rendered_conditional_roles(values) == ["istiod-gateway-controller-istio-system"]
    values["pilot"]["env"]["PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER"] = False
    assert rendered_conditional_roles(values) == []


# --- istio-csr: the CA's certificate, not its key --------------------------------------------


def istio_csr_mount_problems(values: dict, ca_secret: str, table: dict = TABLE) -> list[str]:
    """What istio-csr's values would mount of the CA Secret beyond its root, or where its root file is missing."""
    keys = table["cert-manager-istio-csr"]["caSecretKeys"]
    every_key = [keys["certificate"], keys["privateKey"], keys["ca"]]
    problems = []
    mounted: dict[str, str] = {}  # file path in the container -> Secret key
    volumes = {v["name"]: v for v in values.get("volumes") or []}
    for m in values.get("volumeMounts") or []:
        secret = volumes[m["name"]].get("secret") or {}
        if secret.get("secretName") != ca_secret:
            continue
        # Without `items` a secret volume projects every key of the Secret.
        items = secret.get("items") or [{"key": k, "path": k} for k in every_key]
        for item in items:
            if item["key"] == keys["privateKey"]:
                problems.append(f"istio-csr mounts the CA's private key ({item['key']}) at {m['mountPath']}/{item['path']}")
            mounted[f"{m['mountPath'].rstrip('/')}/{item['path']}"] = item["key"]
    root = values["app"]["tls"]["rootCAFile"]
    if mounted.get(root) != keys["ca"]:
        problems.append(f"app.tls.rootCAFile {root} is not the CA Secret's {keys['ca']} (mounted: {mounted})")
    return problems


def _csr_values() -> dict:
    combo = next(c for c in OFFERED if c.ca == "cert-manager")
    return copy.deepcopy(_releases(combo)["cert-manager-istio-csr"]["values"])


def test_istio_csr_mounts_only_the_ca_certificate() -> None:
    assert istio_csr_mount_problems(_csr_values(), "mesh-platform-ca") == []


def test_a_whole_ca_secret_mount_or_a_root_file_elsewhere_fails() -> None:
    whole = _csr_values()
    del whole["volumes"][0]["secret"]["items"]
    assert any("private key (tls.key)" in p for p in istio_csr_mount_problems(whole, "mesh-platform-ca"))
    moved = _csr_values()
    moved["volumes"][0]["secret"]["items"] = [{"key": "ca.crt", "path": "root.pem"}]
    assert any("is not the CA Secret's ca.crt" in p for p in istio_csr_mount_problems(moved, "mesh-platform-ca"))
    wrong_key = _csr_values()
    wrong_key["volumes"][0]["secret"]["items"] = [{"key": "tls.crt", "path": "ca.crt"}]
    assert any("is not the CA Secret's ca.crt" in p for p in istio_csr_mount_problems(wrong_key, "mesh-platform-ca"))


# --- istiod's certificate names istiod's real ServiceAccount ----------------------------------


def istiod_identity_problems(cert_spec: dict, trust_domain: str, table: dict = TABLE) -> list[str]:
    """The istiod certificate's URI SANs against the identity the istiod chart's pods really run as."""
    row = table["istiod"]
    accounts = {w["serviceAccount"] for w in row["workloads"] if w["name"] == "istiod"}
    assert accounts <= {a["name"] for a in row["serviceAccounts"]}, "the table's istiod runs as an account it does not create"
    ns = row["release"]["namespace"]
    want = [f"spiffe://{trust_domain}/ns/{ns}/sa/{a}" for a in sorted(accounts)]
    got = cert_spec.get("uris") or []
    return [] if got == want else [f"istiod's certificate names {got}, istiod runs as {want}"]


def _istiod_cert(combo) -> tuple[dict, str]:
    rec = render(combo)
    cert = next(r for r in rec.by_type("kubernetes:cert-manager.io/v1:Certificate") if r.name == "istio-istiod-cert")
    csr = next(r for r in rec.by_type(RELEASE) if r.inputs["chart"] == "cert-manager-istio-csr")
    return copy.deepcopy(cert.inputs["spec"]), csr.inputs["values"]["app"]["tls"]["trustDomain"]


CA_COMBOS = [c for c in OFFERED if c.ca == "cert-manager"]


@pytest.mark.parametrize("combo", CA_COMBOS[:: max(1, len(CA_COMBOS) // 4)], ids=lambda c: c.id)
def test_istiods_certificate_names_the_account_istiod_runs_as(combo) -> None:
    spec, trust_domain = _istiod_cert(combo)
    assert istiod_identity_problems(spec, trust_domain) == []


def test_a_certificate_for_an_account_istiod_does_not_run_as_fails() -> None:
    spec, trust_domain = _istiod_cert(CA_COMBOS[0])
    spec["uris"] = ["spiffe://cluster.local/ns/istio-system/sa/istiod-service-account"]
    assert istiod_identity_problems(spec, trust_domain)
    spec, _ = _istiod_cert(CA_COMBOS[0])
    assert istiod_identity_problems(spec, "example.org")


# --- Prometheus: read what its jobs discover, nothing else ------------------------------------


def prometheus_rbac_problems(manifests: list[dict], values: dict, table: dict = TABLE) -> list[str]:
    """Rights of Prometheus's ServiceAccount (the stack's RBAC and the chart's, as its values render it)
    against what its jobs' service discovery reads."""
    row = table["prometheus"]
    sa = next(w["serviceAccount"] for w in row["workloads"] if w["name"] == "prometheus-server")
    ns = row["release"]["namespace"]
    roles = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "ClusterRole"}
    rules: list[dict] = []
    for b in (m for m in manifests if m["kind"] == "ClusterRoleBinding"):
        if {"kind": "ServiceAccount", "name": sa, "namespace": ns} in b.get("subjects", []):
            rules += roles[b["roleRef"]["name"]]["rules"]
    if ((values.get("rbac") or {}).get("create", True)) is not False:
        rules += row["clusterRole"]["rules"]
    granted = set()
    problems = []
    for r in rules:
        if r.get("nonResourceURLs") or r.get("apiGroups") != [""] or set(r.get("verbs", [])) - {"get", "list", "watch"}:
            problems.append(
                f"Prometheus may {r.get('verbs')} {r.get('apiGroups')} {r.get('resources') or r.get('nonResourceURLs')}"
            )
            continue
        granted |= set(r["resources"])
    jobs = values["serverFiles"]["prometheus.yml"]["scrape_configs"]
    needed = {res for j in jobs for sd in j.get("kubernetes_sd_configs", []) for res in row["sdRoleResources"][sd["role"]]}
    if granted - needed:
        problems.append(f"Prometheus reads {sorted(granted - needed)}, which no job discovers")
    if needed - granted:
        problems.append(f"Prometheus's jobs discover {sorted(needed - granted)}, which it may not read")
    return problems


OBS_COMBO = next(c for c in OFFERED if c.observability)


def _prometheus() -> tuple[list[dict], dict]:
    rec = render(OBS_COMBO)
    values = next(r.inputs for r in rec.by_type(RELEASE) if r.inputs["chart"] == "prometheus")["values"]
    return copy.deepcopy(rec.manifests()), copy.deepcopy(values)


def test_prometheus_reads_only_what_its_jobs_discover() -> None:
    manifests, values = _prometheus()
    assert prometheus_rbac_problems(manifests, values) == []


def test_prometheus_with_the_charts_role_or_a_wider_one_or_too_little_fails() -> None:
    manifests, values = _prometheus()
    values["rbac"]["create"] = True
    assert any("configmaps" in p and "no job discovers" in p for p in prometheus_rbac_problems(manifests, values))
    manifests, values = _prometheus()
    role = next(m for m in manifests if m["kind"] == "ClusterRole" and m["metadata"]["name"] == "mesh-platform-prometheus")
    role["rules"].append({"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]})
    assert any("['nodes/proxy']" in p for p in prometheus_rbac_problems(manifests, values))
    manifests, values = _prometheus()
    values["serverFiles"]["prometheus.yml"]["scrape_configs"].append(
        {"job_name": "x", "kubernetes_sd_configs": [{"role": "endpoints"}]}
    )
    assert any("may not read" in p for p in prometheus_rbac_problems(manifests, values))
    manifests, values = _prometheus()
    manifests = [m for m in manifests if m["kind"] != "ClusterRoleBinding"]
    assert any("discover ['pods'], which it may not read" in p for p in prometheus_rbac_problems(manifests, values))
