"""STAND-IN Helm charts for the local control plane: same names and versions as the stack's pins.

These are NOT the upstream charts. Nothing here runs a container (kwok marks pods Running), so a
stand-in carries only what the stack relies on from the real chart:

- the CRDs of every group, version and kind the stack creates (schemas open: the API server stores
  what the program sends, so a render-vs-reality comparison sees exactly the program's objects);
- the Deployments and Services, with the names and pod labels that the stack's NetworkPolicies,
  AuthorizationPolicies, Gateway and routes select (istiod ``app: istiod``, the gateway
  ``istio: ingress``, prometheus-server, kiali, istio-csr ...).

Every stand-in is marked: its Chart.yaml description and every object's
``mesh-platform.dev/stand-in: "true"`` label. ``package()`` writes them, runs ``helm package`` at the
pinned versions and ``helm repo index``: the directory is then a Helm repository to serve.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from components import settings
from components.istio import GATEWAY_RELEASE, GATEWAY_SELECTOR, ISTIO_CSR_LABELS, ISTIOD_SELECTOR
from components.observability import KIALI_LABELS, PROMETHEUS_LABELS

STAND_IN = {"mesh-platform.dev/stand-in": "true"}
#: (group, version, kind, plural, scope) of every custom resource the stack creates, per chart.
CRDS: dict[str, list[tuple[str, str, str, str, str]]] = {
    "tigera-operator": [
        ("operator.tigera.io", "v1", "Installation", "installations", "Cluster"),
        ("operator.tigera.io", "v1", "Goldmane", "goldmanes", "Cluster"),
        ("operator.tigera.io", "v1", "Whisker", "whiskers", "Cluster"),
    ],
    "base": [
        ("networking.istio.io", "v1", "VirtualService", "virtualservices", "Namespaced"),
        ("networking.istio.io", "v1", "DestinationRule", "destinationrules", "Namespaced"),
        ("networking.istio.io", "v1", "Gateway", "gateways", "Namespaced"),
        ("security.istio.io", "v1", "PeerAuthentication", "peerauthentications", "Namespaced"),
        ("security.istio.io", "v1", "AuthorizationPolicy", "authorizationpolicies", "Namespaced"),
        ("telemetry.istio.io", "v1", "Telemetry", "telemetries", "Namespaced"),
    ],
    "cert-manager": [
        ("cert-manager.io", "v1", "Certificate", "certificates", "Namespaced"),
        ("cert-manager.io", "v1", "Issuer", "issuers", "Namespaced"),
        ("cert-manager.io", "v1", "ClusterIssuer", "clusterissuers", "Cluster"),
        ("cert-manager.io", "v1", "CertificateRequest", "certificaterequests", "Namespaced"),
    ],
}
#: chart → [(name, pod labels, container ports)]; the Deployment and Service are called ``name``
#: (``{{ .Release.Name }}`` for the gateway, whose release name becomes its labels and Service).
WORKLOADS: dict[str, list[tuple[str, dict[str, str], tuple[int, ...]]]] = {
    "tigera-operator": [("tigera-operator", {"name": "tigera-operator"}, ())],
    "base": [],
    "cni": [],
    "istiod": [("istiod", {**ISTIOD_SELECTOR, "istio": "pilot"}, (15010, 15012, 443, 15014))],
    "gateway": [(GATEWAY_RELEASE, {"app": GATEWAY_RELEASE, **GATEWAY_SELECTOR}, (15021, 80, 443))],
    "cert-manager": [
        ("cert-manager", {"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"}, (9402,)),
        ("cert-manager-webhook", {"app.kubernetes.io/name": "webhook", "app.kubernetes.io/component": "webhook"}, (10250,)),
        ("cert-manager-cainjector", {"app.kubernetes.io/name": "cainjector"}, ()),
    ],
    "cert-manager-istio-csr": [("cert-manager-istio-csr", ISTIO_CSR_LABELS, (6443,))],
    "prometheus": [("prometheus-server", PROMETHEUS_LABELS, (9090,))],
    "kiali-server": [("kiali", {**KIALI_LABELS, "app": "kiali"}, (20001,))],
}
VERSIONS = {
    "tigera-operator": settings.CALICO_CHART_VERSION,
    "base": settings.ISTIO_VERSION,
    "cni": settings.ISTIO_VERSION,
    "istiod": settings.ISTIO_VERSION,
    "gateway": settings.ISTIO_VERSION,
    "cert-manager": settings.CERT_MANAGER_VERSION,
    "cert-manager-istio-csr": settings.ISTIO_CSR_VERSION,
    "prometheus": settings.PROMETHEUS_CHART_VERSION,
    "kiali-server": settings.KIALI_CHART_VERSION,
}
#: Pod Security 'restricted' (cert-manager's namespace enforces it): what every stand-in pod runs as.
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}
#: Never pulled: kwok runs no container.
IMAGE = "registry.invalid/mesh-platform/stand-in:0"


def crd(group: str, version: str, kind: str, plural: str, scope: str) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": STAND_IN, "annotations": {"helm.sh/resource-policy": "keep"}},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


def workload(name: str, labels: dict[str, str], ports: tuple[int, ...], service_type: str = "ClusterIP") -> list[dict]:
    meta = {"name": name, "namespace": "{{ .Release.Namespace }}", "labels": {**labels, **STAND_IN}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, **STAND_IN}},
                "spec": {
                    "securityContext": RESTRICTED_POD,
                    "containers": [
                        {
                            "name": "stand-in",
                            "image": IMAGE,
                            "ports": [{"containerPort": p} for p in ports],
                            "securityContext": RESTRICTED_CONTAINER,
                        }
                    ],
                },
            },
        },
    }
    if not ports:
        return [deployment]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": service_type, "selector": labels, "ports": [{"name": f"p{p}", "port": p} for p in ports]},
    }
    return [deployment, service]


def templates(chart: str) -> str:
    docs = [crd(*c) for c in CRDS.get(chart, [])]
    for name, labels, ports in WORKLOADS[chart]:
        docs += workload(name, labels, ports)
    return "".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs)


def package(dest: Path, helm: Path) -> Path:
    """Write every stand-in chart, package each at its pinned version, index: ``dest`` is a repository."""
    dest.mkdir(parents=True, exist_ok=True)
    src = dest / "src"
    for chart, version in VERSIONS.items():
        d = src / chart
        (d / "templates").mkdir(parents=True, exist_ok=True)
        meta = {
            "apiVersion": "v2",
            "name": chart,
            "version": version.removeprefix("v") if chart != "tigera-operator" else version,
            "description": f"STAND-IN for the {chart} chart: CRDs and labelled workloads only (mesh-platform local control plane)",
        }
        (d / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        (d / "templates" / "stand-in.yaml").write_text(templates(chart))
        subprocess.run([str(helm), "package", str(d), "--version", version, "-d", str(dest)], check=True, capture_output=True)
    subprocess.run([str(helm), "repo", "index", str(dest)], check=True, capture_output=True)
    return dest
