"""Settings: defaults pinned, every bad value rejected with a message naming key, value and rule."""

from __future__ import annotations

import pulumi
import pytest

from components import settings
from components.settings import parse


def test_defaults_are_pinned() -> None:
    s = parse({}, "dev")
    assert s.cluster.provider == "kind"
    assert s.cluster.pod_subnet == "10.244.0.0/16" and s.cluster.service_subnet == "10.96.0.0/16"
    assert s.cluster.kind.node_image == settings.KIND_NODE_IMAGE and "@sha256:" in s.cluster.kind.node_image
    assert s.calico.version == "v3.31.3" and s.istio.version == "1.30.4"
    assert s.istio.ca == "istiod" and s.istio.cni is False
    assert s.cluster_name == "mesh-dev"
    assert [svc.name for svc in s.apps.services] == ["my-service", "frontend"]


def test_settings_are_frozen() -> None:
    s = parse({}, "dev")
    with pytest.raises(Exception):
        s.cluster.workers = 3  # type: ignore[misc]


def test_camel_case_keys_map_to_fields() -> None:
    s = parse({"cluster": {"podSubnet": "10.32.0.0/16", "kind": {"httpHostPort": 9080}}}, "dev")
    assert s.cluster.pod_subnet == "10.32.0.0/16" and s.cluster.kind.http_host_port == 9080


DEMO_SERVICE = {"name": "svc", "port": 8080, "versions": ["v1", "v2"]}

BAD = [
    ("unknown top key", {"clustr": {}}, "mesh-platform:clustr: unknown key; allowed: cluster, calico"),
    ("unknown nested key", {"cluster": {"wrkers": 1}}, "mesh-platform:cluster.wrkers: unknown key; allowed here: eks, existing"),
    (
        "provider enum",
        {"cluster": {"provider": "gke"}},
        "mesh-platform:cluster.provider: Input should be 'kind', 'existing' or 'eks' (got \"gke\")",
    ),
    (
        "bad CIDR",
        {"cluster": {"podSubnet": "10.244.0.0/33"}},
        "mesh-platform:cluster.podSubnet: must be a network in CIDR notation",
    ),
    (
        "host bits set",
        {"cluster": {"serviceSubnet": "10.96.0.1/16"}},
        "mesh-platform:cluster.serviceSubnet: must be a network in CIDR notation",
    ),
    (
        "overlapping subnets",
        {"cluster": {"podSubnet": "10.96.0.0/12"}},
        "podSubnet 10.96.0.0/12 overlaps serviceSubnet 10.96.0.0/16",
    ),
    ("cluster name", {"cluster": {"name": "Mesh_Dev"}}, "mesh-platform:cluster.name: must be a DNS-1123 label"),
    (
        "too many workers",
        {"cluster": {"workers": 11}},
        "mesh-platform:cluster.workers: Input should be less than or equal to 10 (got 11)",
    ),
    ("latest image", {"cluster": {"kind": {"nodeImage": "kindest/node:latest"}}}, "must be an image pinned by tag"),
    (
        "image vs version",
        {"cluster": {"kubernetesVersion": "1.33"}},
        "kind.nodeImage tag v1.34.0 does not match kubernetesVersion 1.33",
    ),
    ("version range", {"istio": {"version": "^1.30"}}, "mesh-platform:istio.version: must be an exact version"),
    ("latest version", {"calico": {"version": "latest"}}, "mesh-platform:calico.version: must be an exact version"),
    ("encapsulation enum", {"calico": {"encapsulation": "GRE"}}, "mesh-platform:calico.encapsulation: Input should be 'VXLAN'"),
    ("ca enum", {"istio": {"ca": "vault"}}, "mesh-platform:istio.ca: Input should be 'istiod' or 'cert-manager'"),
    (
        "node port range",
        {"cluster": {"kind": {"httpNodePort": 8080}}},
        "mesh-platform:cluster.kind.httpNodePort: Input should be greater than or equal to 30000",
    ),
    (
        "existing without kubeconfig",
        {"cluster": {"provider": "existing"}},
        "provider 'existing' needs cluster.existing.kubeconfig",
    ),
    ("eks without settings", {"cluster": {"provider": "eks"}}, "provider 'eks' needs cluster.eks"),
    (
        "eks region",
        {"cluster": {"provider": "eks", "kubernetesVersion": "1.34", "eks": {"region": "Frankfurt"}}},
        "mesh-platform:cluster.eks.region: must be an AWS region",
    ),
    (
        "not an object",
        {"cluster": "kind"},
        "mesh-platform:cluster: Input should be a valid dictionary or instance of ClusterSettings",
    ),
]


@pytest.mark.parametrize(("case", "raw", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_configuration_is_rejected(case: str, raw: dict, message: str) -> None:
    with pytest.raises(pulumi.RunError) as err:
        parse(raw, "dev")
    assert message in str(err.value), f"{case}: {err.value}"
    assert str(err.value).startswith("invalid stack configuration:")


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(pulumi.RunError) as err:
        parse({"cluster": {"workers": -1, "name": "X"}, "istio": {"version": "latest"}, "nope": 1}, "dev")
    lines = str(err.value).splitlines()[1:]
    assert len(lines) == 4, lines


def test_a_cross_field_error_names_its_values_without_echoing_the_object() -> None:
    # A rule over a whole object (weights of one service, the ACME issuer with the hosts) says
    # which values break it; the object itself, up to the whole stack config, stays out.
    bad = {"apps": {"services": [{**DEMO_SERVICE, "routes": [{"destinations": [{"subset": "v1", "weight": 60}, {"subset": "v2", "weight": 30}]}]}]}}
    with pytest.raises(pulumi.RunError) as err:
        parse(bad, "dev")
    text = str(err.value)
    assert "sum to 100 (got 90)" in text
    assert "(got {" not in text and '"subset"' not in text, text
