"""Settings: defaults pinned, every bad value rejected with a message naming key, value and rule."""

from __future__ import annotations

import datetime as dt
import itertools
import typing

import pulumi
import pytest
from conftest import LIKE, render_config

from mesh_platform import loader, settings, versions
from mesh_platform.loader import parse
from mesh_platform.settings import ChartName
from mesh_platform.versions import ISTIO_REPO, UPSTREAM_CHART_REPOS


def test_defaults_are_pinned() -> None:
    s = parse({}, "dev")
    assert s.cluster.provider == "kind"
    assert s.cluster.pod_subnet == "10.244.0.0/16" and s.cluster.service_subnet == "10.96.0.0/16"
    assert s.cluster.kind.node_image == versions.KIND_NODE_IMAGE and "@sha256:" in s.cluster.kind.node_image
    assert s.calico.version == "v3.32.1" and s.istio.version == "1.31.4"
    assert s.cluster.kubernetes_version == "1.36" and s.cluster.kind.node_image.startswith("kindest/node:v1.36.4@sha256:")
    assert s.cert_manager.version == "v1.21.2" and s.cert_manager.istio_csr_version == "v0.17.0"
    assert s.observability.kiali_version == "2.27.0"
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
        {"cluster": {"provider": "eks", "kubernetesVersion": "1.36", "eks": {"region": "eu-west-1", "desiredNodes": "2"}}},
        'mesh-platform:cluster.eks.desiredNodes: Input should be a valid integer (got "2")',
    ),
    (
        "int in a subnet list",
        {"cluster": {"provider": "eks", "kubernetesVersion": "1.36", "eks": {"region": "eu-west-1", "publicSubnetIds": [7]}}},
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
        "kind.nodeImage tag v1.36.4 does not match kubernetesVersion 1.33",
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
        {"cluster": {"provider": "eks", "kubernetesVersion": "1.36", "eks": {"region": "Frankfurt"}}},
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
    keys = sorted(line.split(": ", 1)[0].strip() for line in lines)
    assert keys == [
        "mesh-platform:cluster.name",
        "mesh-platform:cluster.workers",
        "mesh-platform:istio.version",
        "mesh-platform:nope",
    ]


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
LIKE_EKS = LIKE["staging"]["cluster"]
REFUSED = [
    (
        "eks 1.99",
        {"cluster": {**EKS, "kubernetesVersion": "1.99"}},
        [
            "mesh-platform:cluster.kubernetesVersion: 1.99 is outside the Kubernetes range of istio.version 1.31.4 (1.32-1.36,",
            "mesh-platform:cluster.kubernetesVersion: 1.99 is outside the Kubernetes range of calico.version v3.32.1 (1.34-1.36,",
            "mesh-platform:cluster.kubernetesVersion: EKS offers no Kubernetes 1.99; supported: 1.33, 1.34, 1.35, 1.36",
        ],
    ),
    (
        "kubernetes newer than calico",
        {"cluster": {"provider": "existing", "kubernetesVersion": "1.37", "existing": {"kubeconfig": "k"}}},
        ["1.37 is outside the Kubernetes range of calico.version v3.32.1 (1.34-1.36, docs.tigera.io"],
    ),
    (
        "kubernetes older than calico",
        {"cluster": {"provider": "existing", "kubernetesVersion": "1.33", "existing": {"kubeconfig": "k"}}},
        ["1.33 is outside the Kubernetes range of calico.version v3.32.1 (1.34-1.36, docs.tigera.io"],
    ),
    (
        "kubernetes older than cert-manager",
        {"cluster": {"provider": "existing", "kubernetesVersion": "1.32", "existing": {"kubeconfig": "k"}}},
        ["1.32 is outside the Kubernetes range of certManager.version v1.21.2 (1.33-1.36,"],
    ),
    (
        "istio line unknown",
        {"istio": {"version": "1.28.4"}},
        ["mesh-platform:istio.version: 1.28.4 is not in the compatibility matrix"],
    ),
    (
        "istio line out of support",
        {"istio": {"version": "1.30.5"}},
        [
            "mesh-platform:istio.version: 1.30.5 is refused: Istio 1.30's support ends six weeks after Istio "
            "1.32.0, in early December 2026 (istio.io supported releases), and its charts pull images from "
            "registry.istio.io/release, which Istio retires in December 2026 (24-hour outage from 2026-12-08); use 1.31.4"
        ],
    ),
    (
        "istio below the floor",
        {"istio": {"version": "1.30.3"}},
        ["mesh-platform:istio.version: 1.30.3 is older than 1.30.4: below it istiod can report ready", "; use 1.31.4"],
    ),
    (
        "istio-csr for another istio",
        {"istio": {"ca": "cert-manager"}, "certManager": {"istioCsrVersion": "v0.16.0"}},
        [
            "mesh-platform:certManager.istioCsrVersion: v0.16.0 is not the istio-csr line for istio.version 1.31.4; use v0.17.x "
            "(istio-csr 0.17 with Istio 1.31, tested upstream through Istio 1.30)"
        ],
    ),
    (
        "kiali outside istio's range",
        {"observability": {"enabled": True, "kialiVersion": "2.20.0"}},
        ["mesh-platform:observability.kialiVersion: 2.20.0 is outside the Kiali range istio.version 1.31.4 ships (2.27-2.27)"],
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
            'mesh-platform:cluster.kubernetesVersion: Input should be a valid string; write it quoted, such as kubernetesVersion: "1.36"'
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
    # Calico 3.32 runs on 1.34-1.36; kind v0.33.0 offers 1.35 and 1.36 of those; EKS's 1.34 is in
    # extended support on the tests' date (conftest.RUN_DATE), so it takes the opt-in.
    for minor in ("1.34", "1.35", "1.36"):
        eks = {**EKS, "kubernetesVersion": minor, "eks": {**EKS["eks"], "allowExtendedSupport": minor == "1.34"}}
        assert parse({"cluster": eks}, "prod").cluster.kubernetes_version == minor
    for minor in ("1.35", "1.36"):
        kind = parse({"cluster": {"kubernetesVersion": minor}}, "dev")
        assert kind.cluster.kind.node_image == versions.KIND_NODE_IMAGES[versions.KIND_VERSION][minor]
    assert parse({"istio": {"ca": "cert-manager"}, "observability": {"enabled": True}}, "dev").istio.ca == "cert-manager"


def test_the_default_kubernetes_is_the_newest_every_component_supports() -> None:
    pins = {
        "istio": versions.ISTIO_VERSION,
        "calico": versions.CALICO_CHART_VERSION,
        "certManager": versions.CERT_MANAGER_VERSION,
    }
    newest = min(
        (versions.KUBERNETES_SUPPORT[(component, versions.minor(pin))][1] for component, pin in pins.items()),
        key=lambda m: tuple(map(int, m.split("."))),
    )
    assert newest == versions.KUBERNETES_VERSION
    assert versions.KUBERNETES_VERSION in versions.EKS_VERSIONS
    assert versions.KIND_NODE_IMAGES[versions.KIND_VERSION][versions.KUBERNETES_VERSION] == versions.KIND_NODE_IMAGE


# --- EKS extended support, read at the date of the run -------------------------------------------

EKS_134 = {"cluster": {**EKS, "kubernetesVersion": "1.34"}}
OPTED_IN = {"cluster": {**EKS, "kubernetesVersion": "1.34", "eks": {**EKS["eks"], "allowExtendedSupport": True}}}


def _on(raw: dict, day: dt.date) -> list[str]:
    _, lines = loader.validate(raw, "prod", day)
    return lines


def test_the_tests_run_at_a_fixed_date_not_the_clocks() -> None:
    # tests/conftest.py names it for this process and every one it starts.
    assert settings.run_date() == dt.date(2026, 12, 4) == parse({}, "dev").run_date


def test_a_version_in_extended_support_is_refused_from_the_day_its_standard_support_ends() -> None:
    assert versions.EKS_VERSIONS["1.34"] == ("2026-12-02", "2027-12-02")
    assert _on(EKS_134, dt.date(2026, 12, 1)) == []
    for day, standard in ((dt.date(2026, 12, 2), "1.35, 1.36"), (dt.date(2027, 3, 27), "1.36")):
        assert _on(EKS_134, day) == [
            f"mesh-platform:cluster.kubernetesVersion: EKS Kubernetes 1.34 is in extended support: its standard support "
            f"ended on 2026-12-02 (today is {day}), and AWS bills extended support per cluster hour, on top of standard "
            f"support, until 2027-12-02; use a version in standard support ({standard}) or set "
            "cluster.eks.allowExtendedSupport: true"
        ]


def test_the_opt_in_takes_extended_support_and_the_run_warns() -> None:
    s = parse(OPTED_IN, "prod", dt.date(2026, 12, 4))
    assert s.cluster.eks.allow_extended_support and s.eks_standard_support_ended == "2026-12-02"
    assert s.extended_support_warning == (
        "cluster.kubernetesVersion 1.34: EKS standard support ended on 2026-12-02; this cluster runs in extended support, "
        "billed per cluster hour on top of standard support, until 2027-12-02 (cluster.eks.allowExtendedSupport: true). "
        "Upgrade to a version in standard support."
    )
    # In standard support the opt-in changes nothing and nothing is said.
    assert parse(OPTED_IN, "prod", dt.date(2026, 12, 1)).extended_support_warning is None
    assert parse({"cluster": {**EKS, "kubernetesVersion": "1.36"}}, "prod").extended_support_warning is None


def test_past_its_extended_support_a_version_is_refused_even_with_the_opt_in() -> None:
    for raw in (EKS_134, OPTED_IN):
        assert _on(raw, dt.date(2027, 12, 2)) == [
            "mesh-platform:cluster.kubernetesVersion: EKS offers no Kubernetes 1.34 any more: its extended support ended "
            "on 2027-12-02 (today is 2027-12-02); supported: 1.35, 1.36"
        ]


def test_the_calendar_applies_to_eks_only() -> None:
    assert (
        parse({"cluster": {**EXISTING, "kubernetesVersion": "1.34"}}, "dev", dt.date(2027, 12, 2)).cluster.kubernetes_version
        == "1.34"
    )


def test_the_date_of_the_run_comes_from_the_environment_or_the_clock(monkeypatch) -> None:
    monkeypatch.setenv(settings.RUN_DATE_ENV, "2026-12-01")
    assert parse(EKS_134, "prod").run_date == dt.date(2026, 12, 1)
    monkeypatch.setenv(settings.RUN_DATE_ENV, "2026-12-02")
    assert "is in extended support" in "".join(loader.validate(EKS_134, "prod")[1])
    monkeypatch.setenv(settings.RUN_DATE_ENV, "tomorrow")
    assert loader.validate({}, "dev")[1] == ["MESH_PLATFORM_RUN_DATE must be a date such as 2026-12-04 (got 'tomorrow')"]
    # Unset: today in UTC, the calendar's time zone (a stand-in clock; no test reads the real one).
    monkeypatch.delenv(settings.RUN_DATE_ENV)

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            assert tz is dt.UTC
            return dt.datetime(2026, 12, 2, 0, 30, tzinfo=dt.UTC)

    monkeypatch.setattr(settings.dt, "datetime", Clock)
    assert settings.run_date() == dt.date(2026, 12, 2)


def test_with_the_opt_in_preview_and_up_warn(caplog) -> None:
    eks = {**LIKE_EKS, "kubernetesVersion": "1.34", "eks": {**LIKE_EKS["eks"], "allowExtendedSupport": True}}
    with caplog.at_level("WARNING"):
        render_config("prod", cluster=eks, observability={"nodeCidrs": ["10.0.0.0/16"]})
    assert any("EKS standard support ended on 2026-12-02" in r.getMessage() for r in caplog.records), caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        render_config("prod", cluster={**LIKE_EKS, "kubernetesVersion": "1.36"})
    assert not [r for r in caplog.records if "extended support" in r.getMessage()]


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
    assert loader.namespace_errors(keys) == []


def test_namespace_errors_name_the_key_meant() -> None:
    lines = loader.namespace_errors(["mesh-platfrom:cluster", "cluster", "calcio", "zzz:qqq"])
    assert lines[0].startswith("mesh-platfrom:cluster: namespace 'mesh-platfrom' is neither")
    assert lines[0].endswith("did you mean mesh-platform:cluster?")
    assert lines[1].startswith("cluster: has no namespace") and lines[1].endswith("did you mean mesh-platform:cluster?")
    assert lines[2].endswith("did you mean mesh-platform:calico?")
    assert lines[3].endswith("project keys are mesh-platform:<cluster|calico|istio|certManager|apps|observability|charts>")


def test_load_rejects_a_misspelt_namespace_before_anything_is_registered() -> None:
    pulumi.runtime.set_all_config({"mesh-platfrom:cluster": '{"workers": 3}'}, [])
    try:
        with pytest.raises(pulumi.RunError, match="did you mean mesh-platform:cluster"):
            loader.load()
    finally:
        pulumi.runtime.set_all_config({}, [])


def test_lists_under_eks_are_tuples_whatever_the_cluster_validator_did() -> None:
    eks = {"region": "eu-west-1", "vpcId": "vpc-1", "privateSubnetIds": ["a", "b"], "publicSubnetIds": ["c"]}
    s = parse({"cluster": {"provider": "eks", "kubernetesVersion": "1.36", "eks": eks}}, "prod")
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


def test_every_chart_is_installed_at_the_pin_the_chart_list_names(run) -> None:
    rec = run(istio={"cni": True, "ca": "cert-manager"}, observability={"enabled": True})
    releases = rec.by_type("kubernetes:helm.sh/v3:Release")
    assert {r.inputs["chart"]: r.inputs["version"] for r in releases} == {c: p.version for c, p in versions.CHARTS.items()}


def test_no_pinned_repository_is_a_retired_one() -> None:
    from urllib.parse import urlsplit

    for chart, pinned in versions.CHARTS.items():
        assert urlsplit(pinned.repo).hostname not in versions.RETIRED_CHART_HOSTS, chart
    assert versions.CHARTS["istiod"].repo == "https://blob.istio.io/istio-release/charts"


def test_a_mirror_with_a_port_is_still_accepted() -> None:
    assert parse({"charts": {"mirror": "http://127.0.0.1:8879"}}, "t").charts.mirror == "http://127.0.0.1:8879"


@pytest.mark.parametrize(
    ("charts", "message"),
    [
        (
            {"mirror": "ftp://mirror.example.com"},
            "mesh-platform:charts.mirror: must be the http:// or https:// URL of a Helm chart repository",
        ),
        ({"mirror": "http://"}, "mesh-platform:charts.mirror: must be the http:// or https:// URL"),
        (
            {"repos": {"nginx": "http://127.0.0.1:8879"}},
            "mesh-platform:charts.repos.nginx: Input should be 'crd.projectcalico.org.v1', 'tigera-operator'",
        ),
        ({"repos": {"istiod": "istio-release"}}, "mesh-platform:charts.repos.istiod: must be the http:// or https:// URL"),
        ({"mirrors": "http://127.0.0.1:8879"}, "mesh-platform:charts.mirrors: unknown key; allowed here: mirror, repos"),
        # Istio's old bucket: gone in December 2026, so a stack still naming it is told where the charts are.
        (
            {"repos": {"istiod": "https://istio-release.storage.googleapis.com/charts"}},
            "mesh-platform:charts.repos.istiod: istio-release.storage.googleapis.com serves no charts any more: retired by "
            "Istio in December 2026 (istio.io blog retirement-of-gcp); use https://blob.istio.io/istio-release/charts",
        ),
        ({"mirror": "https://ISTIO-RELEASE.storage.googleapis.com/charts/"}, "serves no charts any more"),
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


# --- every problem at once: field errors and cross-field rules together -------------------------

FOUR_PROBLEMS = {
    "cluster": {"workers": "2"},  # a field: not an integer
    "apps": {"namespace": "Demo"},  # a field: not a DNS label
    "istio": {"ca": "cert-manager"},  # a rule: the mesh CA needs cert-manager ...
    "certManager": {"enabled": False},  # ... which is off
    "calico": {"version": "v3.29.0"},  # a rule: a Calico line outside the matrix
}


def test_four_problems_are_reported_at_once() -> None:
    with pytest.raises(pulumi.RunError) as err:
        parse(FOUR_PROBLEMS, "dev")
    assert str(err.value).splitlines() == [
        "invalid stack configuration:",
        '  mesh-platform:cluster.workers: Input should be a valid integer (got "2")',
        "  mesh-platform:apps.namespace: must be a DNS-1123 label: lower-case letters, digits and '-', starting and "
        'ending with a letter or digit, at most 63 characters (got "Demo")',
        "  mesh-platform:istio.ca: istio.ca 'cert-manager' needs certManager.enabled true (got false); enable "
        "cert-manager or set istio.ca istiod",
        "  mesh-platform:calico.version: v3.29.0 is not in the compatibility matrix; supported lines: 3.32",
    ]


_error_lines, _rule_problems = loader._error_lines, loader._rule_problems


#: Loaders that stop early, each of which the four-problems test must catch.
STOPS_EARLY = [
    # Rules only once every field passes (pydantic's own model validators): two lines, not four.
    ("rules wait for the fields", loader._Pruned, ("remove", lambda self, errors: False)),
    # Stop at the first field error.
    ("first field error only", loader, ("_error_lines", lambda err: _error_lines(err)[:1])),
    # Stop at the first cross-field problem.
    ("first rule problem only", loader, ("_rule_problems", lambda *a: itertools.islice(_rule_problems(*a), 1))),
    # Skip every rule: field errors only.
    ("no rules", loader, ("_rule_problems", lambda *a: iter(()))),
]


@pytest.mark.parametrize(("mutation", "target", "replacement"), STOPS_EARLY, ids=[m[0] for m in STOPS_EARLY])
def test_the_four_problems_test_fails_on_a_loader_that_stops_early(monkeypatch, mutation, target, replacement) -> None:
    monkeypatch.setattr(target, *replacement)
    with pytest.raises(AssertionError):
        test_four_problems_are_reported_at_once()


#: Two field errors in keys no rule reads: each rule below must be reported beside them.
FIELD_ERRORS = {"calico": {"readyTimeoutMinutes": 0}, "istio": {"istiodReplicas": "2"}}
FIELD_LINES = {
    "mesh-platform:calico.readyTimeoutMinutes: Input should be greater than or equal to 1 (got 0)",
    'mesh-platform:istio.istiodReplicas: Input should be a valid integer (got "2")',
}
SVC = {"name": "svc", "port": 8080, "versions": ["v1", "v2"]}
EXISTING = {"provider": "existing", "existing": {"kubeconfig": "k"}}
ACME = {"gatewayIssuer": "mesh-platform-acme", "acme": {"email": "ops@example.com"}}
#: Every cross-field rule of the schema (model.method), a config that breaks it, and its line.
RULES = [
    (
        "EksSettings._node_counts_ordered",
        {"cluster": {**EKS, "kubernetesVersion": "1.36", "eks": {"region": "eu-west-1", "minNodes": 3}}},
        "mesh-platform:cluster.eks.desiredNodes: node counts must satisfy minNodes <= desiredNodes <= maxNodes (got 3 <= 2 <= 4)",
    ),
    (
        "EksSettings._own_vpc_names_its_subnets",
        {
            "cluster": {
                **EKS,
                "kubernetesVersion": "1.36",
                "eks": {"region": "eu-west-1", "vpcId": "vpc-1", "privateSubnetIds": ["a"]},
            }
        },
        "mesh-platform:cluster.eks.vpcId: with vpcId set, give at least two privateSubnetIds and one publicSubnetIds (got 1 and 0)",
    ),
    (
        "ClusterSettings._subnets_disjoint",
        {"cluster": {"podSubnet": "10.96.0.0/12"}},
        "mesh-platform:cluster.podSubnet: podSubnet 10.96.0.0/12 overlaps serviceSubnet 10.96.0.0/16; they must be disjoint",
    ),
    (
        "ClusterSettings._existing_needs_kubeconfig",
        {"cluster": {"provider": "existing"}},
        "mesh-platform:cluster.provider: provider 'existing' needs cluster.existing.kubeconfig",
    ),
    (
        "ClusterSettings._eks_needs_its_settings",
        {"cluster": {"provider": "eks", "kubernetesVersion": "1.36"}},
        "mesh-platform:cluster.provider: provider 'eks' needs cluster.eks (at least region)",
    ),
    (
        "ClusterSettings._node_image_is_the_version",
        {"cluster": {"kubernetesVersion": "1.35", "kind": {"nodeImage": versions.KIND_NODE_IMAGE}}},
        "mesh-platform:cluster.kind.nodeImage: kind.nodeImage tag v1.36.4 does not match kubernetesVersion 1.35",
    ),
    (
        "ClusterSettings._node_ports_differ",
        {"cluster": {"kind": {"httpsNodePort": 30080}}},
        "mesh-platform:cluster.kind.httpsNodePort: kind.httpNodePort and kind.httpsNodePort must differ (both 30080)",
    ),
    (
        "ClusterSettings._vpc_clear_of_services",
        {"cluster": {**EKS, "kubernetesVersion": "1.36", "serviceSubnet": "10.0.0.0/16"}},
        "mesh-platform:cluster.eks.vpcCidr: eks.vpcCidr 10.0.0.0/16 overlaps serviceSubnet 10.0.0.0/16",
    ),
    (
        "IstioSettings._at_least_the_floor",
        {"istio": {"version": "1.30.3"}},
        "mesh-platform:istio.version: 1.30.3 is older than 1.30.4: below it istiod can report ready before its webhook "
        "server accepts connections (istio#61049, fixed in 1.30.4)",
    ),
    (
        "CertManagerSettings._acme_issuer_needs_acme",
        {"certManager": {"gatewayIssuer": "mesh-platform-acme"}},
        "mesh-platform:certManager.gatewayIssuer: gatewayIssuer mesh-platform-acme needs certManager.acme (email, server)",
    ),
    (
        "Route._weights_sum_to_100",
        {
            "apps": {
                "services": [
                    {**SVC, "routes": [{"destinations": [{"subset": "v1", "weight": 60}, {"subset": "v2", "weight": 30}]}]}
                ]
            }
        },
        "mesh-platform:apps.services[0].routes[0]: destination weights must sum to 100 (got 90)",
    ),
    (
        "Service._versions_unique",
        {"apps": {"services": [{**SVC, "versions": ["v1", "v1"]}]}},
        "mesh-platform:apps.services[0].versions: duplicate version in ['v1', 'v1']",
    ),
    (
        "Service._subsets_are_versions",
        {"apps": {"services": [{**SVC, "routes": [{"destinations": [{"subset": "v3"}]}]}]}},
        "mesh-platform:apps.services[0].routes[0].destinations[0]: names unknown subset 'v3'; known: ['v1', 'v2']",
    ),
    (
        "Service._exposed_has_a_route",
        {"apps": {"services": [{**SVC, "expose": True}]}},
        "mesh-platform:apps.services[0].routes: service 'svc' has expose true but no routes (got none), so the gateway "
        "would answer 404 for it; allowed: at least one route, such as routes: [{destinations: [{subset: v1}]}], or expose false",
    ),
    (
        "Service._catch_all_last",
        {
            "apps": {
                "services": [
                    {
                        **SVC,
                        "routes": [{"destinations": [{"subset": "v1"}]}, {"prefix": "/a", "destinations": [{"subset": "v2"}]}],
                    }
                ]
            }
        },
        "mesh-platform:apps.services[0].routes[0]: has no prefix (catch-all) but is not the last route",
    ),
    (
        "AppsSettings._workload_names_unique",
        {"apps": {"services": [SVC, SVC]}},
        "mesh-platform:apps.services: duplicate workload names ['svc']; every service (and 'client') needs its own name",
    ),
    (
        "AppsSettings._callers_known",
        {"apps": {"services": [{**SVC, "allowFrom": ["ghost"]}]}},
        "mesh-platform:apps.services[0].allowFrom[0]: service 'svc' allows calls from unknown workload 'ghost'; known: ['svc', 'client']",
    ),
    (
        "AppsSettings._one_exposed_catch_all",
        {
            "apps": {
                "services": [
                    {**SVC, "expose": True, "routes": [{"destinations": [{"subset": "v1"}]}]},
                    {**SVC, "name": "svc2", "expose": True, "routes": [{"destinations": [{"subset": "v2"}]}]},
                ]
            }
        },
        "mesh-platform:apps.services: exposed services ['svc', 'svc2'] each have a catch-all route (no prefix)",
    ),
    (
        "Settings._mesh_ca_needs_cert_manager",
        {"istio": {"ca": "cert-manager"}, "certManager": {"enabled": False}},
        "mesh-platform:istio.ca: istio.ca 'cert-manager' needs certManager.enabled true (got false)",
    ),
    (
        "Settings._node_cidrs_known",
        {"cluster": EXISTING, "observability": {"enabled": True}},
        "mesh-platform:observability.nodeCidrs: observability.nodeCidrs is required for this cluster (the nodes' addresses",
    ),
    (
        "Settings._apps_namespace_is_their_own",
        {"apps": {"namespace": "istio-system"}},
        "mesh-platform:apps.namespace: apps.namespace 'istio-system' is a platform namespace; pick another",
    ),
    (
        "Settings._acme_hosts_are_dns_names",
        {"certManager": ACME, "apps": {"hosts": ["shop.example.com", "shop"]}},
        "mesh-platform:apps.hosts[1]: apps.hosts[1] 'shop' is one word, which gatewayIssuer mesh-platform-acme cannot serve",
    ),
    (
        "Settings._istio_runs_on_kubernetes",
        {"istio": {"version": "1.28.4"}},
        "mesh-platform:istio.version: 1.28.4 is not in the compatibility matrix; supported lines: 1.31",
    ),
    (
        "Settings._calico_runs_on_kubernetes",
        {"cluster": {**EXISTING, "kubernetesVersion": "1.33"}},
        "mesh-platform:cluster.kubernetesVersion: 1.33 is outside the Kubernetes range of calico.version v3.32.1 (1.34-1.36,",
    ),
    (
        "Settings._cert_manager_runs_on_kubernetes",
        {"cluster": {**EXISTING, "kubernetesVersion": "1.32"}},
        "mesh-platform:cluster.kubernetesVersion: 1.32 is outside the Kubernetes range of certManager.version v1.21.2 (1.33-1.36,",
    ),
    (
        "Settings._istio_csr_built_for_istio",
        {"istio": {"ca": "cert-manager"}, "certManager": {"istioCsrVersion": "v0.16.0"}},
        "mesh-platform:certManager.istioCsrVersion: v0.16.0 is not the istio-csr line for istio.version 1.31.4; use v0.17.x",
    ),
    (
        "Settings._kiali_shipped_with_istio",
        {"observability": {"enabled": True, "kialiVersion": "2.20.0"}},
        "mesh-platform:observability.kialiVersion: 2.20.0 is outside the Kiali range istio.version 1.31.4 ships (2.27-2.27)",
    ),
    (
        "Settings._node_image_of_kind_release",
        {"cluster": {"kind": {"nodeImage": "kindest/node:v1.35.0@sha256:" + "0" * 64}}},
        "mesh-platform:cluster.kind.nodeImage: kindest/node:v1.35.0@sha256:" + "0" * 64 + " is not a node image of kind v0.33.0",
    ),
    (
        "Settings._eks_offers_kubernetes",
        {"cluster": {**EKS, "kubernetesVersion": "1.37"}},
        "mesh-platform:cluster.kubernetesVersion: EKS offers no Kubernetes 1.37; supported: 1.33, 1.34, 1.35, 1.36",
    ),
    (
        "Settings._eks_standard_support_or_the_opt_in",
        {"cluster": {**EKS, "kubernetesVersion": "1.34"}},
        "mesh-platform:cluster.kubernetesVersion: EKS Kubernetes 1.34 is in extended support: its standard support ended "
        "on 2026-12-02 (today is 2026-12-04), and AWS bills extended support per cluster hour",
    ),
]


def _merged(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _lines(raw: dict) -> set[str]:
    _, lines = loader.validate(raw, "dev")
    return set(lines)


@pytest.mark.parametrize(("rule", "raw", "line"), RULES, ids=[r[0] for r in RULES])
def test_each_rule_is_reported_together_with_the_field_errors(rule, raw, line) -> None:
    alone = _lines(raw)
    assert any(got.startswith(line) for got in alone), f"{rule}: {sorted(alone)}"
    assert not alone & FIELD_LINES
    # With two field errors elsewhere: exactly those two lines more, the rule's own unchanged.
    assert _lines(_merged(raw, FIELD_ERRORS)) == alone | FIELD_LINES, rule


def _models(model: type = settings.Settings) -> list[type]:
    out = [model]
    for field in model.model_fields.values():
        for t in (*typing.get_args(field.annotation), field.annotation):
            if isinstance(t, type) and issubclass(t, settings.BaseModel) and t not in out:
                out += [m for m in _models(t) if m not in out]
    return out


def test_the_table_holds_every_rule_of_the_schema() -> None:
    declared = {f"{m.__name__}.{r.__name__}" for m in _models() for r in settings.rules(m)}
    assert declared == {r[0] for r in RULES}


def _reads_a_key(model: type, parts: tuple) -> bool:
    head, *rest = parts
    field = next((f for f in model.model_fields.values() if f.alias == head), None)
    if field is None:
        return False
    ann, rest = field.annotation, list(rest)
    if rest[:1] == ["[]"]:
        if typing.get_origin(ann) is not tuple:
            return False
        ann, rest = typing.get_args(ann)[0], rest[1:]
    if not rest:
        return True
    nested = [t for t in (*typing.get_args(ann), ann) if isinstance(t, type) and issubclass(t, settings.BaseModel)]
    return bool(nested) and _reads_a_key(nested[0], tuple(rest))


def test_every_rule_reads_keys_its_model_has() -> None:
    # A misspelt key in @rule(...) would never match a failed one, and the rule would judge a default.
    for model in _models():
        for check in settings.rules(model):
            for key in check.reads:
                assert _reads_a_key(model, loader._parts(key)), f"{model.__name__}.{check.__name__} reads {key!r}"


SKIPPED = [
    (
        # The version failed: the image is not judged against the default put in its place.
        "numeric kubernetesVersion",
        {"cluster": {"kubernetesVersion": 1.35, "kind": {"nodeImage": versions.KIND_NODE_IMAGES["v0.33.0"]["1.35"]}}},
        "does not match kubernetesVersion",
    ),
    (
        # A weight failed: the default put in its place (100) is not summed with the others.
        "weight as a string",
        {
            "apps": {
                "services": [
                    {**SVC, "routes": [{"destinations": [{"subset": "v1", "weight": "50"}, {"subset": "v2", "weight": 50}]}]}
                ]
            }
        },
        "must sum to 100",
    ),
    (
        # The image failed under its snake_case name: the rule, which names it nodeImage, is skipped all the same.
        "snake_case key",
        {"cluster": {"kubernetes_version": "1.35", "kind": {"node_image": "x"}}},
        "does not match kubernetesVersion",
    ),
    (
        # services[0] lacks its port and is set aside: 'svc' is still a workload the user declared.
        "service without a port",
        {"apps": {"services": [{"name": "svc"}, {"name": "b", "port": 80, "allowFrom": ["svc"]}]}},
        "unknown workload 'svc'",
    ),
]


@pytest.mark.parametrize(("case", "raw", "absent"), SKIPPED, ids=[s[0] for s in SKIPPED])
def test_a_rule_that_reads_a_failed_key_is_not_run(case, raw, absent) -> None:
    lines = _lines(raw)
    assert lines, case
    assert not [line for line in lines if absent in line], sorted(lines)


@pytest.mark.parametrize(("case", "raw", "absent"), SKIPPED, ids=[s[0] for s in SKIPPED])
def test_each_skipped_case_would_report_a_wrong_line_if_rules_judged_defaults(monkeypatch, case, raw, absent) -> None:
    monkeypatch.setattr(loader, "_overlap", lambda read, removed: False)
    assert [line for line in _lines(raw) if absent in line], case


def test_rules_after_a_set_aside_list_item_name_the_users_own_index() -> None:
    raw = {"apps": {"services": [{"name": "x"}, {**SVC, "routes": [{"destinations": [{"subset": "v9"}]}]}]}}
    _, lines = loader.validate(raw, "dev")
    assert lines[0].startswith("mesh-platform:apps.services[0].port: Field required")
    assert lines[1:] == [
        "mesh-platform:apps.services[1].routes[0].destinations[0]: names unknown subset 'v9'; known: ['v1', 'v2']"
    ]


def test_load_reports_namespaces_fields_and_rules_together() -> None:
    pulumi.runtime.set_all_config(
        {
            "mesh-platfrom:apps": "{}",
            "mesh-platform:cluster": '{"workers": true}',
            "mesh-platform:istio": '{"ca": "cert-manager"}',
            "mesh-platform:certManager": '{"enabled": false}',
            "mesh-platform:charts": "not json",
        },
        [],
    )
    try:
        with pytest.raises(pulumi.RunError) as err:
            loader.load()
    finally:
        pulumi.runtime.set_all_config({}, [])
    keys = [line.split(": ", 1)[0].strip() for line in str(err.value).splitlines()[1:]]
    assert keys == ["mesh-platfrom:apps", "mesh-platform:cluster.workers", "mesh-platform:charts", "mesh-platform:istio.ca"]


def test_every_settings_field_says_what_it_does() -> None:
    # The string under each field is its description: the README's reference and the message for a
    # missing key quote it.
    undocumented = [
        f"{m.__name__}.{n}" for m in _models() for n, f in m.model_fields.items() if not (f.description or "").strip()
    ]
    assert not undocumented


def test_a_missing_required_key_says_what_it_is_for() -> None:
    _, lines = loader.validate({"cluster": {"provider": "existing", "existing": {}}}, "dev")
    assert lines == [
        "mesh-platform:cluster.existing.kubeconfig: Field required: path of a kubeconfig file for a cluster you already run "
        "(it must have no CNI but Calico's); required with provider existing"
    ]


# --- the Istio rows: each test fails when its row says something else ---------------------------


def _istio_range_lines(k8s: str) -> list[str]:
    return [line for line in _lines({"cluster": {**EXISTING, "kubernetesVersion": k8s}}) if "range of istio.version" in line]


@pytest.mark.parametrize("k8s", ["1.31", "1.32", "1.35", "1.36", "1.37"])
def test_istio_1_31_runs_on_kubernetes_1_32_to_1_36(k8s) -> None:
    # istio.io announcing-1.31: "officially supported on Kubernetes versions 1.32 to 1.36".
    outside = k8s in ("1.31", "1.37")
    assert bool(_istio_range_lines(k8s)) == outside, k8s


def test_istio_1_30_is_refused_as_out_of_support_and_names_the_pin(monkeypatch) -> None:
    refused = [line for line in _lines({"istio": {"version": "1.30.8"}}) if "is refused: Istio 1.30" in line]
    assert refused and refused[0].startswith("mesh-platform:istio.version: 1.30.8 is refused: Istio 1.30's support")
    assert refused[0].endswith(f"; use {versions.ISTIO_VERSION}") and "registry.istio.io/release" in refused[0]
    # Without the row, 1.30 would only be an unknown line, with no reason and no version to use.
    monkeypatch.delitem(versions.SUPPORT_ENDED, ("istio", "1.30"))
    assert not [line for line in _lines({"istio": {"version": "1.30.8"}}) if "is refused: Istio 1.30" in line]


@pytest.mark.parametrize(
    ("version", "refused"),
    [("1.29.9", True), ("1.30.3", True), ("v1.30.3", True), ("1.30.4", False), ("1.30.10", False), ("1.31.0", False)],
)
def test_istio_below_the_webhook_readiness_fix_is_refused(version, refused) -> None:
    floor = [line for line in _lines({"istio": {"version": version}}) if "is older than 1.30.4" in line]
    assert bool(floor) == refused, version
    if refused:
        assert "istio#61049" in floor[0] and floor[0].endswith(f"; use {versions.ISTIO_VERSION}")


def test_the_floor_is_the_one_that_refuses(monkeypatch) -> None:
    monkeypatch.setattr(settings, "ISTIO_MIN_VERSION", "1.30.3")
    assert not [line for line in _lines({"istio": {"version": "1.30.3"}}) if "is older than" in line]


def test_istio_csr_0_17_runs_with_istio_1_31_and_names_what_upstream_tested() -> None:
    # Accepted: v0.17.0 with the pinned 1.31 (tested upstream through 1.30, nothing says 1.31 breaks it).
    assert parse({"istio": {"ca": "cert-manager"}}, "dev").cert_manager.istio_csr_version == "v0.17.0"
    assert versions.minor(versions.ISTIO_VERSION) == "1.31"
    refused = _lines({"istio": {"ca": "cert-manager"}, "certManager": {"istioCsrVersion": "v0.16.0"}})
    assert refused == {
        "mesh-platform:certManager.istioCsrVersion: v0.16.0 is not the istio-csr line for istio.version 1.31.4; "
        "use v0.17.x (istio-csr 0.17 with Istio 1.31, tested upstream through Istio 1.30)"
    }


def test_every_supported_istio_line_names_its_istio_csr_line_and_how_far_it_is_tested() -> None:
    for component, line in versions.KUBERNETES_SUPPORT:
        if component == "istio":
            csr = versions.ISTIO_CSR_FOR_ISTIO.get(line)
            assert csr is not None, f"Istio {line} has no istio-csr row"
            assert csr in versions.ISTIO_CSR_TESTED_THROUGH, f"istio-csr {csr}: how far upstream tests it is not recorded"
    assert not [line for (c, line) in versions.SUPPORT_ENDED if (c, line) in versions.KUBERNETES_SUPPORT]
