"""cert-manager and the CA chain the stack owns.

cert-manager is installed by its Pulumi package, ``pulumi_kubernetes_cert_manager.CertManager``
(PyPI pulumi-kubernetes-cert-manager 0.2.0): a remote component, constructed by the CLI's resource
plugin kubernetes-cert-manager 0.2.0, which registers the jetstack chart as one Helm v3 release
(``<name>-helm``, a child of the package's component; awaited, CRDs installed), like every other
chart of the stack. offline/remote_components.yaml records, from the package's source, what it
lays over the values given here. Then the chain:

    ClusterIssuer mesh-platform-selfsigned ─signs─▶ Certificate mesh-platform-ca (isCA, key in a
    Secret in cert-manager's namespace) ─backs─▶ ClusterIssuer mesh-platform-ca ─signs─▶ everything else

and, optionally, an ACME ClusterIssuer for cloud stacks. Issuers and the CA certificate carry
``pulumi.com/waitFor: condition=Ready``, so ``CertManager.ca_issuer`` exists only once it can sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_kubernetes_cert_manager as kcm

from mesh_platform.kube import TOKEN
from mesh_platform.settings import ACME_ISSUER, CA_ISSUER, SELFSIGNED_ISSUER, AcmeSettings, ChartsSettings

NAMESPACE = "cert-manager"
#: Secret (in NAMESPACE) holding the CA's certificate and key.
CA_SECRET = "mesh-platform-ca"
READY = {"pulumi.com/waitFor": "condition=Ready"}
#: Chart values (cert-manager/cert-manager deploy/charts/cert-manager/values.yaml at the pinned
#: version): CRDs installed by the chart (``installCRDs`` is deprecated since 1.15), and kept when the
#: release goes (deleting them would delete every Certificate and Issuer with them). The package has
#: no typed input for ``crds`` (its chart.go at v0.2.0 predates it), so they go in helmOptions.values.
HELM_VALUES = {"crds": {"enabled": True, "keep": True}}
#: Cluster-scoped issuers read their secrets (the CA's key) from cert-manager's own namespace
#: (values.yaml ``clusterResourceNamespace``). A typed input of the package: given in
#: helmOptions.values instead, the package would overwrite it with its unset typed input, and the
#: chart would never see it (offline/remote_components.yaml, typedValues).
CLUSTER_RESOURCE_NAMESPACE = NAMESPACE
#: The Helm release's name (its objects are named after it). The package's release would be
#: auto-named ``<resource name>-helm-<random>`` without it (pulumi-kubernetes helm_release.go Check).
RELEASE = "cert-manager"
#: The release's Pulumi name before the package installed it: the stack's own
#: ``kubernetes:helm.sh/v3:Release`` ``cert-manager-install``, a child of this component. The
#: package's release is aliased to it, so a stack made before updates the release in place.
FORMER_RELEASE_NAME = "install"
#: HTTP-01 solver Ingresses carry the ``kubernetes.io/ingress.class`` annotation (``class``),
#: which istiod compares with meshConfig.ingressClass. ``ingressClassName`` would make istiod
#: look up an IngressClass object, which no Istio chart creates, and in STRICT mode ignore the
#: Ingress (istio/istio pilot/pkg/config/kube/ingress).
ACME_SOLVER = {"http01": {"ingress": {"class": "istio"}}}
#: Where users put the CA certificate to trust the gateway: ``curl --cacert``.
CA_FILE = "mesh-platform-ca.crt"
CA_FETCH_COMMAND = f"kubectl -n {NAMESPACE} get secret {CA_SECRET} -o jsonpath='{{.data.ca\\.crt}}' | base64 -d > {CA_FILE}"


@dataclass(frozen=True)
class CertManagerArgs:
    version: str
    acme: AcmeSettings | None = None
    charts: ChartsSettings = field(default_factory=ChartsSettings)
    """Where the charts come from (``charts`` in the stack: a mirror, or one repository per chart)."""
    replicas: int | None = None
    """cert-manager controller replicas (the package's typed ``replicaCount``); None: the chart's default."""
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)


def issuer_ref(name: str) -> dict:
    return {"name": name, "kind": "ClusterIssuer", "group": "cert-manager.io"}


class CertManager(pulumi.ComponentResource):
    ca_issuer: k8s.apiextensions.CustomResource
    """The CA ClusterIssuer, created once Ready: it can sign."""
    issuers: dict[str, k8s.apiextensions.CustomResource]

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:CertManager", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        # The package's component waits for its release (awaited until its resources are ready):
        # whatever depends on it waits for cert-manager's webhook to answer.
        install = kcm.CertManager(
            f"{name}-install",
            cluster_resource_namespace=CLUSTER_RESOURCE_NAMESPACE,
            replica_count=args.replicas,
            helm_options=kcm.ReleaseArgs(
                name=RELEASE,
                chart="cert-manager",
                version=args.version,
                repository_opts=kcm.RepositoryOptsArgs(repo=args.charts.repo("cert-manager")),
                namespace=NAMESPACE,
                values=HELM_VALUES,
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[namespace], transforms=[self._keep_former_release(f"{name}-{FORMER_RELEASE_NAME}")]
            ),
        )
        after_install = pulumi.ResourceOptions(parent=self, depends_on=[install])
        selfsigned = k8s.apiextensions.CustomResource(
            f"{name}-selfsigned",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": SELFSIGNED_ISSUER, "annotations": READY},
            spec={"selfSigned": {}},
            opts=after_install,
        )
        ca_cert = k8s.apiextensions.CustomResource(
            f"{name}-ca-cert",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": CA_SECRET, "namespace": NAMESPACE, "annotations": READY},
            spec={
                "isCA": True,
                "commonName": "mesh-platform CA",
                "secretName": CA_SECRET,
                "duration": "8760h",
                "renewBefore": "720h",
                # Renewal keeps the key. istio-csr publishes exactly one root (app.tls.rootCAFile) to
                # every namespace; a new key would be a new root that no certificate issued before
                # it chains to, and mesh mTLS would break until every workload renewed. Rotating
                # the root key is a deliberate two-root procedure, not a renewal.
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Never"},
                "issuerRef": issuer_ref(SELFSIGNED_ISSUER),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[selfsigned]),
        )
        self.ca_issuer = k8s.apiextensions.CustomResource(
            f"{name}-ca-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": CA_ISSUER, "annotations": READY},
            spec={"ca": {"secretName": CA_SECRET}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ca_cert]),
        )
        self.issuers = {CA_ISSUER: self.ca_issuer}
        if args.acme:
            self.issuers[ACME_ISSUER] = k8s.apiextensions.CustomResource(
                f"{name}-acme-issuer",
                api_version="cert-manager.io/v1",
                kind="ClusterIssuer",
                metadata={"name": ACME_ISSUER, "annotations": READY},
                spec={
                    "acme": {
                        "email": args.acme.email,
                        "server": args.acme.server,
                        "privateKeySecretRef": {"name": f"{ACME_ISSUER}-account"},
                        "solvers": [ACME_SOLVER],
                    }
                },
                opts=after_install,
            )
        self.register_outputs({"caIssuer": CA_ISSUER, "caSecret": f"{NAMESPACE}/{CA_SECRET}"})

    def _keep_former_release(self, former: str) -> pulumi.ResourceTransform:
        """A transform for the package's component: its Helm release is the one this component
        registered itself before (Pulumi name ``former``, parent this component), so that the
        engine updates it in place. A new URN alone would mean creating a second release named
        ``cert-manager`` (refused by Helm: the name is in use), then deleting the first."""

        def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
            if args.type_ != "kubernetes:helm.sh/v3:Release":
                return None
            alias = pulumi.Alias(name=former, parent=self)
            return pulumi.ResourceTransformResult(
                props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(aliases=[alias]))
            )

        return transform
