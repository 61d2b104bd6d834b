"""CertManager: the pinned jetstack chart through its Pulumi package, the issuer chain, ordering, validation."""

from __future__ import annotations

import json
from importlib import resources

import pulumi
import pulumi_kubernetes_cert_manager as kcm
import pytest
from conftest import graph, objects, one, run_config

from components import cert_manager as cm
from mesh_platform.loader import parse
from mesh_platform.versions import CERT_MANAGER_VERSION, ISTIO_CSR_VERSION, JETSTACK_REPO
from offline import remote

RELEASE = "kubernetes:helm.sh/v3:Release"
PACKAGE = "kubernetes-cert-manager:index:CertManager"
#: What the chart must get: CRDs installed and kept (installCRDs is deprecated since chart 1.15;
#: crds.keep, so that removing the release never deletes every Certificate and Issuer with the
#: CRDs), and cluster-scoped issuers' secrets read from cert-manager's namespace.
CHART_VALUES = {"crds": {"enabled": True, "keep": True}, "clusterResourceNamespace": "cert-manager"}


def test_installed_through_the_package_component(like) -> None:
    rec = like("dev")
    component = one(rec, PACKAGE, "cert-manager-install")
    ours = one(rec, "mesh-platform:index:CertManager", "cert-manager")
    assert component.parent == ours.urn and not component.custom
    helm = component.inputs["helmOptions"]
    assert helm["name"] == "cert-manager" and helm["chart"] == "cert-manager" and helm["namespace"] == "cert-manager"
    assert helm["version"] == CERT_MANAGER_VERSION and helm["repositoryOpts"] == {"repo": JETSTACK_REPO}
    # clusterResourceNamespace is a typed input of the package: in helmOptions.values it would be
    # overwritten by the unset typed one (offline/remote_components.yaml, typedValues).
    assert component.inputs["clusterResourceNamespace"] == "cert-manager"
    assert helm["values"] == {"crds": {"enabled": True, "keep": True}}
    assert not set(helm["values"]) & set(remote.behaviour(PACKAGE)["typedValues"])


def test_the_release_the_package_constructs_gets_the_values(like) -> None:
    rec = like("dev")
    component = one(rec, PACKAGE, "cert-manager-install")
    install = one(rec, RELEASE, "cert-manager-install-helm")
    assert install.parent == component.urn and install.custom
    # The merged values: helmOptions.values with the package's typed inputs laid over them.
    assert install.inputs["values"] == CHART_VALUES
    assert install.inputs["chart"] == "cert-manager" and install.inputs["name"] == "cert-manager"
    assert install.inputs["version"] == CERT_MANAGER_VERSION and install.inputs["repositoryOpts"] == {"repo": JETSTACK_REPO}
    assert install.inputs["namespace"] == "cert-manager"
    # The stack's one Kubernetes provider reaches the package's release through the component.
    provider = one(rec, "pulumi:providers:kubernetes")
    assert install.provider == provider.urn


def test_the_values_check_fails_where_the_package_would_drop_a_value() -> None:
    # The mistake the check above exists for: clusterResourceNamespace handed over in
    # helmOptions.values. The package's unset typed input erases it; the merged values lack it.
    (child,) = remote.construct(
        PACKAGE,
        "cert-manager-install",
        {"helmOptions": {"name": "cert-manager", "values": {**CHART_VALUES}}},
    )
    assert child.inputs["values"] != CHART_VALUES
    assert child.inputs["values"] == {"crds": {"enabled": True, "keep": True}}


def test_replicas_reach_the_chart_through_the_typed_input() -> None:
    rec = run_config(certManager={"replicas": 3})
    assert one(rec, PACKAGE, "cert-manager-install").inputs["replicaCount"] == 3
    assert one(rec, RELEASE, "cert-manager-install-helm").inputs["values"] == {**CHART_VALUES, "replicaCount": 3}


def test_a_chart_mirror_reaches_the_package_release() -> None:
    mirrored = one(run_config(charts={"mirror": "https://charts.example.com"}), RELEASE, "cert-manager-install-helm")
    assert mirrored.inputs["repositoryOpts"] == {"repo": "https://charts.example.com"}
    own = run_config(charts={"mirror": "https://charts.example.com", "repos": {"cert-manager": "https://jetstack.example.com"}})
    assert one(own, RELEASE, "cert-manager-install-helm").inputs["repositoryOpts"] == {"repo": "https://jetstack.example.com"}


def test_the_package_asks_for_the_plugin_the_table_records() -> None:
    plugin = json.loads(resources.files(kcm).joinpath("pulumi-plugin.json").read_text())
    assert plugin == {"resource": True, "name": remote.package(PACKAGE), "version": remote.version(PACKAGE)}
    assert "pluginDownloadURL" not in plugin  # the CLI's default sources (README.md, "Air-gapped installs")


def test_the_alias_transform_starts_no_callback_server() -> None:
    # The SDK would serve transforms from a gRPC server whose threads outlive the render and
    # make every later fork print to stderr; the mock engine hands it offline references instead.
    from pulumi.runtime import settings

    from offline.thirdparty import pulumi_sdk

    run_config(certManager={"replicas": 2})
    callbacks = settings.SETTINGS.callbacks
    assert isinstance(callbacks, pulumi_sdk.Callbacks) and len(callbacks.transforms) == 1


def test_the_former_release_is_aliased() -> None:
    # A stack made before registered the release itself, as cert-manager-install under this
    # component: the package's release takes that identity instead of installing a second one.
    owner = pulumi.ComponentResource.__new__(pulumi.ComponentResource)
    transform = cm.CertManager._keep_former_release(owner, "cert-manager-install")  # type: ignore[arg-type]
    opts = pulumi.ResourceOptions()
    args = pulumi.ResourceTransformArgs(custom=True, type_=RELEASE, name="cert-manager-install-helm", props={}, opts=opts)
    result = transform(args)
    assert result is not None
    (alias,) = result.opts.aliases or []
    assert isinstance(alias, pulumi.Alias) and alias.name == "cert-manager-install" and alias.parent is owner
    other = pulumi.ResourceTransformArgs(custom=False, type_=PACKAGE, name="x", props={}, opts=opts)
    assert transform(other) is None


def test_issuer_chain(like) -> None:
    rec = like("dev")
    issuers = {i["metadata"]["name"]: i["spec"] for i in objects(rec, "ClusterIssuer")}
    assert issuers == {
        "mesh-platform-selfsigned": {"selfSigned": {}},
        "mesh-platform-ca": {"ca": {"secretName": "mesh-platform-ca"}},
    }
    ca = next(c for c in objects(rec, "Certificate") if c["metadata"]["name"] == "mesh-platform-ca")
    assert ca["metadata"]["namespace"] == "cert-manager"
    assert ca["spec"]["isCA"] is True and ca["spec"]["secretName"] == "mesh-platform-ca"
    assert ca["spec"]["issuerRef"]["name"] == "mesh-platform-selfsigned"
    # Each link waits for the one before it, and is itself awaited until Ready.
    sel, cert, ca_issuer = (
        one(rec, t, n)
        for t, n in [
            ("kubernetes:cert-manager.io/v1:ClusterIssuer", "cert-manager-selfsigned"),
            ("kubernetes:cert-manager.io/v1:Certificate", "cert-manager-ca-cert"),
            ("kubernetes:cert-manager.io/v1:ClusterIssuer", "cert-manager-ca-issuer"),
        ]
    )
    assert sel.urn in cert.dependencies and cert.urn in ca_issuer.dependencies
    for r in (sel, cert, ca_issuer):
        assert r.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"


def test_acme_issuer_from_config() -> None:
    rec = run_config(
        certManager={"acme": {"email": "ops@example.com"}, "gatewayIssuer": "mesh-platform-acme"},
        apps={"hosts": ["mesh.example.com"]},  # ACME validates public DNS names only
    )
    acme = next(i for i in objects(rec, "ClusterIssuer") if i["metadata"]["name"] == "mesh-platform-acme")
    assert acme["spec"]["acme"]["email"] == "ops@example.com"
    assert acme["spec"]["acme"]["server"].startswith("https://acme-staging-v02.api.letsencrypt.org")
    gw_cert = next(c for c in objects(rec, "Certificate") if c["metadata"]["name"] == "gateway-tls")
    assert gw_cert["spec"]["issuerRef"]["name"] == "mesh-platform-acme"


def test_cert_manager_is_off_the_critical_path_by_default(like) -> None:
    rec = like("dev")
    g = graph(rec)
    install = one(rec, RELEASE, "cert-manager-install-helm").urn
    ready = one(rec, "kubernetes:operator.tigera.io/v1:Installation").urn
    assert g.waits_for(install, ready), "cert-manager must wait for Calico"
    for name in ("istio-base", "istio-istiod", "istio-gateway"):
        assert not g.waits_for(one(rec, RELEASE, name).urn, install), f"{name} waits for cert-manager"
    for d in rec.by_type("kubernetes:apps/v1:Deployment"):
        assert not g.waits_for(d.urn, install), f"{d.urn} waits for cert-manager"
    assert not [r for r in rec.by_type(RELEASE) if r.inputs["chart"] == "cert-manager-istio-csr"]


def test_istio_ca_cert_manager_puts_istio_csr_before_istiod() -> None:
    rec = run_config(istio={"ca": "cert-manager"})
    g = graph(rec)
    csr = one(rec, RELEASE, "istio-cert-manager-istio-csr")
    assert csr.inputs["version"] == ISTIO_CSR_VERSION and csr.inputs["namespace"] == "cert-manager"
    assert csr.inputs["values"]["app"]["certmanager"]["issuer"] == {
        "name": "mesh-platform-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert csr.inputs["values"]["volumes"] == [
        {"name": "root-ca", "secret": {"secretName": "mesh-platform-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
    ]
    istiod = one(rec, RELEASE, "istio-istiod")
    ca_issuer = one(rec, "kubernetes:cert-manager.io/v1:ClusterIssuer", "cert-manager-ca-issuer").urn
    assert csr.urn in istiod.dependencies and ca_issuer in istiod.dependencies
    assert g.waits_for(csr.urn, ca_issuer)
    values = istiod.inputs["values"]
    assert values["pilot"]["env"]["ENABLE_CA_SERVER"] == "false"
    assert values["global"]["caAddress"] == "cert-manager-istio-csr.cert-manager.svc:443"


def test_disabled_leaves_no_trace() -> None:
    rec = run_config(certManager={"enabled": False})
    assert not [r for r in rec.resources if "cert-manager" in r.type or "CertManager" in r.type or "GatewayTls" in r.type]
    (gw,) = objects(rec, "Gateway")
    assert [s["port"]["number"] for s in gw["spec"]["servers"]] == [80]


BAD = [
    (
        "unknown issuer",
        {"certManager": {"gatewayIssuer": "letsencrypt"}},
        "mesh-platform:certManager.gatewayIssuer: Input should be 'mesh-platform-ca' or 'mesh-platform-acme'",
    ),
    ("acme without email", {"certManager": {"acme": {"server": "https://acme.example/dir"}}}, "an ACME issuer needs acme.email"),
    (
        "acme issuer unset",
        {"certManager": {"gatewayIssuer": "mesh-platform-acme"}},
        "gatewayIssuer mesh-platform-acme needs certManager.acme",
    ),
    ("bad email", {"certManager": {"acme": {"email": "ops"}}}, "mesh-platform:certManager.acme.email: must be an e-mail address"),
    (
        "acme over http",
        {"certManager": {"acme": {"email": "a@b.io", "server": "http://x"}}},
        "mesh-platform:certManager.acme.server: must be an https:// URL",
    ),
    (
        "no replicas",
        {"certManager": {"replicas": 0}},
        "mesh-platform:certManager.replicas: Input should be greater than or equal to 1",
    ),
    (
        "too many replicas",
        {"certManager": {"replicas": 6}},
        "mesh-platform:certManager.replicas: Input should be less than or equal to 5",
    ),
    ("bad hostname", {"apps": {"hosts": ["bad_host.example.com"]}}, "mesh-platform:apps.hosts[0]: must be a lower-case DNS name"),
    (
        "mesh CA without cert-manager",
        {"istio": {"ca": "cert-manager"}, "certManager": {"enabled": False}},
        "istio.ca 'cert-manager' needs certManager.enabled true",
    ),
]


@pytest.mark.parametrize(("case", "raw", "message"), BAD, ids=[b[0] for b in BAD])
def test_invalid_tls_config_is_rejected(case, raw, message) -> None:
    with pytest.raises(pulumi.RunError) as err:
        parse(raw, "dev")
    assert message in str(err.value), str(err.value)


def test_acme_solver_uses_the_class_istiod_serves() -> None:
    # istiod in STRICT mode serves an Ingress with spec.ingressClassName only if that IngressClass
    # exists (no Istio chart makes one); the annotation form is compared with meshConfig.ingressClass.
    rec = run_config(
        certManager={"acme": {"email": "ops@example.com"}, "gatewayIssuer": "mesh-platform-acme"},
        apps={"hosts": ["mesh.example.com"]},
    )
    acme = next(i for i in objects(rec, "ClusterIssuer") if i["metadata"]["name"] == "mesh-platform-acme")
    (solver,) = acme["spec"]["acme"]["solvers"]
    assert solver == {"http01": {"ingress": {"class": "istio"}}}
    mesh = one(rec, RELEASE, "istio-istiod").inputs["values"]["meshConfig"]
    assert mesh["ingressControllerMode"] == "STRICT" and mesh["ingressClass"] == solver["http01"]["ingress"]["class"]
    assert not objects(rec, "IngressClass")


def test_ca_root_keeps_its_key_on_renewal(like) -> None:
    # istio-csr publishes one root; a new root key on renewal would leave every issued workload
    # certificate chaining to a root no one trusts any more.
    ca = next(c for c in objects(like("dev"), "Certificate") if c["metadata"]["name"] == "mesh-platform-ca")
    assert ca["spec"]["privateKey"]["rotationPolicy"] == "Never"
