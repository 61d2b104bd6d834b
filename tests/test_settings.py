"""Settings: defaults pinned, every bad value rejected with a message naming key, value and rule."""

from __future__ import annotations

import pulumi
import pytest

from mesh_platform import settings, versions
from mesh_platform.settings import ChartName, parse
from mesh_platform.versions import ISTIO_REPO, UPSTREAM_CHART_REPOS


def test_defaults_are_pinned() -> None:
    s = parse({}, "dev")
    assert s.cluster.provider == "kind"
    assert s.cluster.pod_subnet == "10.244.0.0/16" and s.cluster.service_subnet == "10.96.0.0/16"
    assert s.cluster.kind.node_image == versions.KIND_NODE_IMAGE and "@sha256:" in s.cluster.kind.node_image
    assert s.calico.version == "v3.31.7" and s.istio.version == "1.30.5"
    assert s.cluster.kubernetes_version == "1.35" and s.cluster.kind.node_image.startswith("kindest/node:v1.35.8@sha256:")
    assert s.cert_manager.version == "v1.21.1" and s.cert_manager.istio_csr_version == "v0.17.0"
    assert s.observability.kiali_version == "2.26.0"
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
    # Strict: no value is coerced into another type.
    ("bool as int", {"cluster": {"workers": True}}, "mesh-platform:cluster.workers: Input should be a valid integer (got true)"),
    ("string as int", {"cluster": {"workers": "2"}}, 'mesh-platform:cluster.workers: Input should be a valid integer (got "2")'),
    ("float as int", {"cluster": {"workers": 1.5}}, "mesh-platform:cluster.workers: Input should be a valid integer (got 1.5)"),
    ("string as bool", {"apps": {"enabled": "yes"}}, 'mesh-platform:apps.enabled: Input should be a valid boolean (got "yes")'),
    ("int as bool", {"istio": {"cni": 1}}, "mesh-platform:istio.cni: Input should be a valid boolean (got 1)"),
    ("int as string", {"apps": {"namespace": 7}}, "mesh-platform:apps.namespace: Input should be a valid string (got 7)"),
    ("string as list", {"apps": {"hosts": "a.example.com"}}, "mesh-platform:apps.hosts: Input should be a valid array"),
    (
        "string as int under eks",
        {"cluster": {"provider": "eks", "kubernetesVersion": "1.34", "eks": {"region": "eu-west-1", "desiredNodes": "2"}}},
        'mesh-platform:cluster.eks.desiredNodes: Input should be a valid integer (got "2")',
    ),
    (
        "int in a subnet list",
        {"cluster": {"provider": "eks", "kubernetesVersion": "1.34", "eks": {"region": "eu-west-1", "publicSubnetIds": [7]}}},
        "mesh-platform:cluster.eks.publicSubnetIds[0]: Input should be a valid string (got 7)",
    ),
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
        "kind.nodeImage tag v1.35.8 does not match kubernetesVersion 1.33",
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
        'mesh-platform:cluster: Input should be an object (got "kind")',
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
    bad = {
        "apps": {
            "services": [
                {**DEMO_SERVICE, "routes": [{"destinations": [{"subset": "v1", "weight": 60}, {"subset": "v2", "weight": 30}]}]}
            ]
        }
    }
    with pytest.raises(pulumi.RunError) as err:
        parse(bad, "dev")
    text = str(err.value)
    assert "sum to 100 (got 90)" in text
    assert "(got {" not in text and '"subset"' not in text, text


# --- compatibility matrix -----------------------------------------------------------------------

EKS = {"provider": "eks", "eks": {"region": "eu-west-1"}}
REFUSED = [
    (
        "eks 1.99",
        {"cluster": {**EKS, "kubernetesVersion": "1.99"}},
        [
            "mesh-platform:cluster.kubernetesVersion: 1.99 is outside the Kubernetes range of istio.version 1.30.5 (1.32-1.36,",
            "mesh-platform:cluster.kubernetesVersion: 1.99 is outside the Kubernetes range of calico.version v3.31.7 (1.32-1.35,",
            "mesh-platform:cluster.kubernetesVersion: EKS offers no Kubernetes 1.99; supported: 1.33, 1.34, 1.35",
        ],
    ),
    (
        "kubernetes newer than calico",
        {"cluster": {"provider": "existing", "kubernetesVersion": "1.36", "existing": {"kubeconfig": "k"}}},
        ["1.36 is outside the Kubernetes range of calico.version v3.31.7 (1.32-1.35, docs.tigera.io"],
    ),
    (
        "kubernetes older than cert-manager",
        {"cluster": {"provider": "existing", "kubernetesVersion": "1.32", "existing": {"kubeconfig": "k"}}},
        ["1.32 is outside the Kubernetes range of certManager.version v1.21.1 (1.33-1.36,"],
    ),
    (
        "istio line unknown",
        {"istio": {"version": "1.28.4"}},
        ["mesh-platform:istio.version: 1.28.4 is not in the compatibility matrix"],
    ),
    (
        "istio-csr for another istio",
        {"istio": {"ca": "cert-manager"}, "certManager": {"istioCsrVersion": "v0.16.0"}},
        ["mesh-platform:certManager.istioCsrVersion: v0.16.0 is not built for istio.version 1.30.5; use v0.17.x"],
    ),
    (
        "kiali outside istio's range",
        {"observability": {"enabled": True, "kialiVersion": "2.20.0"}},
        ["mesh-platform:observability.kialiVersion: 2.20.0 is outside the Kiali range istio.version 1.30.5 ships (2.22-2.26)"],
    ),
    (
        "node image of another kind release",
        {"cluster": {"kind": {"nodeImage": "kindest/node:v1.35.0@sha256:" + "0" * 64}}},
        ["mesh-platform:cluster.kind.nodeImage: kindest/node:v1.35.0@sha256:000", "is not a node image of kind v0.33.0"],
    ),
    (
        "numeric kubernetesVersion",
        {"cluster": {"kubernetesVersion": 1.3}},
        [
            'mesh-platform:cluster.kubernetesVersion: Input should be a valid string; write it quoted, such as kubernetesVersion: "1.35"'
        ],
    ),
]


@pytest.mark.parametrize(("case", "raw", "messages"), REFUSED, ids=[r[0] for r in REFUSED])
def test_versions_outside_the_matrix_are_refused(case: str, raw: dict, messages: list[str]) -> None:
    with pytest.raises(pulumi.RunError) as err:
        parse(raw, "dev")
    for message in messages:
        assert message in str(err.value), f"{case}: {err.value}"


def test_every_row_inside_the_matrix_is_accepted() -> None:
    for minor in ("1.33", "1.34", "1.35"):
        assert parse({"cluster": {**EKS, "kubernetesVersion": minor}}, "prod").cluster.kubernetes_version == minor
        kind = parse({"cluster": {"kubernetesVersion": minor}} if minor != "1.33" else {}, "dev")
        assert kind.cluster.kind.node_image in versions.KIND_NODE_IMAGES[versions.KIND_VERSION].values()
    assert parse({"istio": {"ca": "cert-manager"}, "observability": {"enabled": True}}, "dev").istio.ca == "cert-manager"


def test_the_default_kubernetes_is_the_newest_every_component_supports() -> None:
    newest = min(
        (
            row[1]
            for (component, line), row in versions.KUBERNETES_SUPPORT.items()
            if (component, line) in {("istio", "1.30"), ("calico", "3.31"), ("certManager", "1.21")}
        ),
        key=lambda m: tuple(map(int, m.split("."))),
    )
    assert newest == versions.KUBERNETES_VERSION
    assert versions.KUBERNETES_VERSION in versions.EKS_VERSIONS
    assert versions.KIND_NODE_IMAGES[versions.KIND_VERSION][versions.KUBERNETES_VERSION] == versions.KIND_NODE_IMAGE


def test_every_pin_falls_in_a_row_of_the_matrix() -> None:
    # A bumped pin without its row (and source) fails here, not on a cluster.
    assert parse({}, "dev") is not None
    for component, pin in (
        ("istio", versions.ISTIO_VERSION),
        ("calico", versions.CALICO_CHART_VERSION),
        ("certManager", versions.CERT_MANAGER_VERSION),
    ):
        assert (component, versions.minor(pin)) in versions.KUBERNETES_SUPPORT, component
    assert versions.ISTIO_CSR_FOR_ISTIO[versions.minor(versions.ISTIO_VERSION)] == versions.minor(versions.ISTIO_CSR_VERSION)
    low, high = versions.KIALI_FOR_ISTIO[versions.minor(versions.ISTIO_VERSION)]
    assert versions.within(versions.minor(versions.KIALI_CHART_VERSION), low, high)


def test_stack_images_are_pinned_by_digest() -> None:
    for image in (versions.ECHO_IMAGE, versions.CURL_IMAGE, versions.JAEGER_IMAGE, versions.KIND_NODE_IMAGE):
        assert "@sha256:" in image and len(image.rsplit(":", 1)[1]) == 64, image


def test_namespace_errors_pass_the_project_and_provider_namespaces() -> None:
    keys = ["mesh-platform:cluster", "kubernetes:context", "aws:region", "pulumi:tags", "eks:x", "awsx:y", "command:z"]
    assert settings.namespace_errors(keys) == []


def test_namespace_errors_name_the_key_meant() -> None:
    lines = settings.namespace_errors(["mesh-platfrom:cluster", "cluster", "calcio", "zzz:qqq"])
    assert lines[0].startswith("mesh-platfrom:cluster: namespace 'mesh-platfrom' is neither")
    assert lines[0].endswith("did you mean mesh-platform:cluster?")
    assert lines[1].startswith("cluster: has no namespace") and lines[1].endswith("did you mean mesh-platform:cluster?")
    assert lines[2].endswith("did you mean mesh-platform:calico?")
    assert lines[3].endswith("project keys are mesh-platform:<cluster|calico|istio|certManager|apps|observability|charts>")


def test_load_rejects_a_misspelt_namespace_before_anything_is_registered() -> None:
    pulumi.runtime.set_all_config({"mesh-platfrom:cluster": '{"workers": 3}'}, [])
    try:
        with pytest.raises(pulumi.RunError, match="did you mean mesh-platform:cluster"):
            settings.load()
    finally:
        pulumi.runtime.set_all_config({}, [])


def test_lists_under_eks_are_tuples_whatever_the_cluster_validator_did() -> None:
    eks = {"region": "eu-west-1", "vpcId": "vpc-1", "privateSubnetIds": ["a", "b"], "publicSubnetIds": ["c"]}
    s = parse({"cluster": {"provider": "eks", "kubernetesVersion": "1.34", "eks": eks}}, "prod")
    assert s.cluster.eks.private_subnet_ids == ("a", "b")


# --- charts: a mirror for every chart, or a repository per chart --------------------------------


def test_charts_come_from_upstream_by_default() -> None:
    s = parse({}, "t")
    assert {c: s.charts.repo(c) for c in UPSTREAM_CHART_REPOS} == UPSTREAM_CHART_REPOS


def test_chart_mirror_then_per_chart_repository() -> None:
    s = parse({"charts": {"mirror": "http://127.0.0.1:8879/", "repos": {"istiod": "https://charts.example.com/istio"}}}, "t")
    assert s.charts.repo("istiod") == "https://charts.example.com/istio"
    assert s.charts.repo("tigera-operator") == s.charts.repo("kiali-server") == "http://127.0.0.1:8879"
    only = parse({"charts": {"repos": {"cert-manager": "https://proxy.example.com/jetstack"}}}, "t").charts
    assert only.repo("cert-manager") == "https://proxy.example.com/jetstack" and only.repo("base") == ISTIO_REPO


def test_chart_names_are_the_charts_the_stack_installs(run) -> None:
    rec = run(
        charts={"mirror": "http://127.0.0.1:8879"}, istio={"cni": True, "ca": "cert-manager"}, observability={"enabled": True}
    )
    releases = rec.by_type("kubernetes:helm.sh/v3:Release")
    assert {r.inputs["chart"] for r in releases} == set(UPSTREAM_CHART_REPOS) == set(ChartName.__args__)
    assert {r.inputs["repositoryOpts"]["repo"] for r in releases} == {"http://127.0.0.1:8879"}


@pytest.mark.parametrize(
    ("charts", "message"),
    [
        (
            {"mirror": "ftp://mirror.example.com"},
            "mesh-platform:charts.mirror: must be the http:// or https:// URL of a Helm chart repository",
        ),
        ({"mirror": "http://"}, "mesh-platform:charts.mirror: must be the http:// or https:// URL"),
        ({"repos": {"nginx": "http://127.0.0.1:8879"}}, "mesh-platform:charts.repos.nginx: Input should be 'tigera-operator'"),
        ({"repos": {"istiod": "istio-release"}}, "mesh-platform:charts.repos.istiod: must be the http:// or https:// URL"),
        ({"mirrors": "http://127.0.0.1:8879"}, "mesh-platform:charts.mirrors: unknown key; allowed here: mirror, repos"),
    ],
)
def test_bad_chart_sources_are_refused(charts, message) -> None:
    with pytest.raises(pulumi.RunError) as err:
        parse({"charts": charts}, "t")
    assert message in str(err.value)


def test_every_multi_field_apps_error_is_reported_in_one_run_each_once() -> None:
    bad = {
        "apps": {
            "services": [
                {
                    "name": "my-service",
                    "port": 5000,
                    "versions": ["v1", "v2"],
                    "routes": [
                        {"destinations": [{"subset": "v1", "weight": 50}, {"subset": "v3", "weight": 20}]},
                        {"prefix": "/v1", "destinations": [{"subset": "v1"}]},
                    ],
                    "allowFrom": ["frontnd"],
                },
                {"name": "frontend", "port": 8080},
            ]
        }
    }
    with pytest.raises(pulumi.RunError) as err:
        parse(bad, "dev")
    lines = str(err.value).splitlines()[1:]
    assert [line.strip() for line in lines] == [
        "mesh-platform:apps.services[0].routes[0]: destination weights must sum to 100 (got 70)",
        "mesh-platform:apps.services[0].routes[0].destinations[1]: names unknown subset 'v3'; known: ['v1', 'v2']",
        "mesh-platform:apps.services[0].routes[0]: has no prefix (catch-all) but is not the last route",
        "mesh-platform:apps.services[0].allowFrom[0]: service 'my-service' allows calls from unknown workload "
        "'frontnd'; known: ['my-service', 'frontend', 'client']",
    ]
    assert "{" not in str(err.value)  # no object dumped
