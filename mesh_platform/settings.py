"""The schema of a stack's settings: every key, its type, its default, its rules.

Every stack value lives under one of the grouped keys of ``Settings`` (``mesh-platform:cluster``,
``mesh-platform:calico`` ...); ``mesh_platform/loader.py`` reads them and validates the whole tree
against these models. Every rule is written once, in one of two places:

- a rule about one value is its field's type (``Cidr``, ``DnsLabel``, ``Port`` ...), checked by
  pydantic, which reports every field that breaks its type in one pass;
- a rule over several values is a ``@rule`` method on the model that holds them all, naming the
  keys it reads; the loader runs each one whose keys are all valid, so cross-field problems are
  reported together with the field errors, not after they are fixed.

Unknown keys are errors (``extra="forbid"``) and nothing is coerced (``strict``). The versions the
defaults name, and the compatibility matrix the stack is checked against, are in
``mesh_platform/versions.py``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, Strict, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel

from mesh_platform.kube import ISTIO_NAMESPACE
from mesh_platform.versions import (
    CALICO_CHART_VERSION,
    CERT_MANAGER_VERSION,
    CHARTS,
    EKS_VERSIONS,
    ISTIO_CSR_FOR_ISTIO,
    ISTIO_CSR_TESTED_THROUGH,
    ISTIO_CSR_VERSION,
    ISTIO_MIN_VERSION,
    ISTIO_MIN_VERSION_REASON,
    ISTIO_VERSION,
    KIALI_CHART_VERSION,
    KIALI_FOR_ISTIO,
    KIND_NODE_IMAGE,
    KIND_NODE_IMAGES,
    KIND_VERSION,
    KUBERNETES_SUPPORT,
    KUBERNETES_VERSION,
    PROMETHEUS_CHART_VERSION,
    RETIRED_CHART_HOSTS,
    SUPPORT_ENDED,
    UPSTREAM_CHART_REPOS,
    minor,
    within,
)

# --- The date of the run ----------------------------------------------------------------------

#: Names the date of the run (ISO, such as 2026-12-04) in place of today's: the day the EKS
#: support calendar (``EKS_VERSIONS``) is read at. The tests set it (tests/conftest.py), so that
#: none of them depends on the real clock; a real run leaves it unset.
RUN_DATE_ENV = "MESH_PLATFORM_RUN_DATE"


def run_date() -> dt.date:
    """Today (UTC, the calendar's time zone), or the date ``$MESH_PLATFORM_RUN_DATE`` names."""
    named = os.environ.get(RUN_DATE_ENV)
    if not named:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(named)
    except ValueError:
        raise ValueError(f"{RUN_DATE_ENV} must be a date such as 2026-12-04 (got {named!r})") from None


# --- Field types: each carries its own rule and says what is allowed --------------------------

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")
_K8S_MINOR = re.compile(r"^1\.\d{2}$")
_IMAGE = re.compile(r"^[a-z0-9.\-/:_]+:[A-Za-z0-9._\-]+(@sha256:[a-f0-9]{64})?$")
_HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
_DURATION = re.compile(r"^\d+(ms|s|m|h)$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


def _dns_label(value: str) -> str:
    if not _DNS1123_LABEL.match(value):
        raise ValueError(
            "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending "
            "with a letter or digit, at most 63 characters"
        )
    return value


def _exact_version(value: str) -> str:
    if not _EXACT_VERSION.match(value):
        raise ValueError("must be an exact version such as 1.2.3 or v1.2.3 (no ranges, no 'latest')")
    return value


def _release(version: str) -> tuple[int, ...]:
    """``1.30.4`` (or ``v1.30.4``) → (1, 30, 4): an exact version, compared numerically."""
    return tuple(int(p) for p in version.removeprefix("v").split("."))


def _k8s_minor(value: str) -> str:
    if not _K8S_MINOR.match(value):
        raise ValueError(f"must be a Kubernetes minor version such as {KUBERNETES_VERSION}")
    return value


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"must be a network in CIDR notation such as 10.244.0.0/16 ({err})") from None
    if net.version != 4:
        raise ValueError("must be an IPv4 CIDR such as 10.244.0.0/16 (IPv6 is not supported yet)")
    return value


def _image(value: str) -> str:
    if not _IMAGE.match(value) or value.rsplit(":", 1)[-1] == "latest" or ":latest@" in value:
        raise ValueError("must be an image pinned by tag (and optionally @sha256 digest); 'latest' is not allowed")
    return value


def _hostname(value: str) -> str:
    if len(value) > 253 or not _HOSTNAME.match(value):
        raise ValueError("must be a lower-case DNS name such as app.example.com (a leading '*.' is allowed)")
    return value


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError("must be a duration such as 500ms, 2s, 1m")
    return value


def _region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError("must be an AWS region such as eu-west-1")
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("must be an e-mail address such as ops@example.com")
    return value


def _chart_repo(value: str) -> str:
    m = re.match(r"^https?://([^\s/?#:]+)(:\d+)?(/[^\s?#]*)?$", value)
    if not m:
        raise ValueError("must be the http:// or https:// URL of a Helm chart repository (its index.yaml is read there)")
    if m.group(1).lower() in RETIRED_CHART_HOSTS:
        raise ValueError(f"{m.group(1)} serves no charts any more: {RETIRED_CHART_HOSTS[m.group(1).lower()]}")
    return value.rstrip("/")


def _path_prefix(value: str) -> str:
    if not value.startswith("/") or " " in value:
        raise ValueError("must be a URI path prefix starting with '/'")
    return value


def _https_url(value: str) -> str:
    if not value.startswith("https://"):
        raise ValueError("must be an https:// URL")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
ExactVersion = Annotated[str, AfterValidator(_exact_version)]
K8sMinor = Annotated[str, AfterValidator(_k8s_minor)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Image = Annotated[str, AfterValidator(_image)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Duration = Annotated[str, AfterValidator(_duration)]
Region = Annotated[str, AfterValidator(_region)]
Email = Annotated[str, AfterValidator(_email)]
PathPrefix = Annotated[str, AfterValidator(_path_prefix)]
HttpsUrl = Annotated[str, AfterValidator(_https_url)]
ChartRepo = Annotated[str, AfterValidator(_chart_repo)]
#: A name from ``CHARTS`` (pydantic lists them when a stack names another); to a type checker, a str.
if TYPE_CHECKING:
    ChartName = str
else:
    ChartName = Literal[tuple(CHARTS)]
Port = Annotated[int, Field(ge=1, le=65535)]
NodePort = Annotated[int, Field(ge=30000, le=32767)]
#: Ports the Istio sidecar listens on in every injected pod (envoy admin, outbound/inbound capture,
#: HBONE, merged metrics, health, prometheus): a workload port among them never receives traffic.
SIDECAR_PORTS = (15000, 15001, 15004, 15006, 15008, 15020, 15021, 15090)


def _not_a_sidecar_port(value: int) -> int:
    if value in SIDECAR_PORTS:
        raise ValueError(f"port {value} is reserved by the Istio sidecar ({', '.join(map(str, SIDECAR_PORTS))}); pick another")
    return value


ServicePort = Annotated[Port, AfterValidator(_not_a_sidecar_port)]


class _Settings(BaseModel):
    """Base: camelCase keys in the stack file, snake_case in Python, frozen, unknown keys rejected."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        # No coercion: `workers: true` or `port: "80"` is an error naming the key, not a 1 or an 80.
        # Stack values are validated as JSON (``loader.validate``, under both ``load()`` and ``parse()``), where an array is a valid tuple
        # and an integer a valid float.
        strict=True,
        # The string under each field is its description: the loader quotes it for a missing
        # required key, the README's configuration reference is checked against these fields.
        use_attribute_docstrings=True,
    )


#: What a cross-field rule reports: (key below the model the rule is on, message); ``""`` is the
#: model itself.
Problem = tuple[str, str]
Check = Callable[[Any], Iterator[Problem]]


def rule(*reads: str) -> Callable[[Check], Check]:
    """Mark a model method as a cross-field rule over the keys it ``reads``.

    Keys are the stack file's (camelCase), below the model the rule is on; ``[]`` stands for every
    item of a list (``routes[].destinations[].subset``). The method yields one ``Problem`` per thing
    it finds wrong. The loader runs every rule whose keys all hold the user's own valid values,
    whatever failed elsewhere, so all problems are reported at once; a rule that reads a key which
    failed its own field rule is skipped, since it would judge a default put in its place.
    """
    if not reads:
        raise ValueError("a rule names the keys it reads")

    def mark(check: Check) -> Check:
        check.reads = reads  # type: ignore[attr-defined]
        return check

    return mark


def rules(model: type[BaseModel]) -> tuple[Check, ...]:
    """The cross-field rules of ``model``, in the order they are written."""
    found: dict[str, Check] = {}
    for klass in reversed(model.__mro__):
        found.update({name: v for name, v in vars(klass).items() if callable(v) and hasattr(v, "reads")})
    return tuple(found.values())


# --- cluster ----------------------------------------------------------------------------------


class KindSettings(_Settings):
    node_image: Image = KIND_NODE_IMAGE
    """kind node image, by tag and digest: only the images of the pinned kind release are accepted, and
    its tag must match ``cluster.kubernetesVersion``. Unset, that release's image for the stack's
    Kubernetes minor. kind only."""
    http_host_port: Port = 8080
    """Host port (on 127.0.0.1) mapped to the gateway's HTTP NodePort, so the apps answer at
    ``http://localhost:<this>/``. kind only; change it when another program holds it."""
    https_host_port: Port = 8443
    """Host port (on 127.0.0.1) mapped to the gateway's HTTPS NodePort. kind only."""
    http_node_port: NodePort = 30080
    """NodePort (30000-32767) of the gateway's HTTP listener, the container port kind maps to
    ``httpHostPort``. kind only."""
    https_node_port: NodePort = 30443
    """NodePort (30000-32767) of the gateway's HTTPS listener, mapped to ``httpsHostPort``; must differ
    from ``httpNodePort``. kind only."""


class ExistingSettings(_Settings):
    kubeconfig: str
    """Path of a kubeconfig file for a cluster you already run (it must have no CNI but Calico's);
    required with provider ``existing``."""
    context: str | None = None
    """Context in that file; the file's current context when unset."""


class EksSettings(_Settings):
    region: Region
    """AWS region the cluster, its VPC and its nodes are created in, such as eu-west-1; required with provider ``eks``."""
    vpc_cidr: Cidr = "10.0.0.0/16"
    """IPv4 CIDR of the VPC the stack creates (ignored when ``vpcId`` is set); must not overlap
    ``cluster.serviceSubnet``."""
    availability_zones: Annotated[int, Field(ge=2, le=6)] = 2
    """How many AZs the created VPC spans (at least two, for the control plane and for HA)."""
    vpc_id: str | None = None
    """An existing VPC; then ``privateSubnetIds`` and ``publicSubnetIds`` are required."""
    # Lax only about the container (a list is a tuple): ClusterSettings' before-validator hands this
    # model Python lists, which strict mode would refuse. The items stay strict.
    private_subnet_ids: Annotated[tuple[str, ...], Strict(False)] = ()
    """With ``vpcId``: the private subnets the nodes run in (at least two, in different AZs); ignored without it."""
    public_subnet_ids: Annotated[tuple[str, ...], Strict(False)] = ()
    """With ``vpcId``: the public subnets for internet-facing load balancers such as the gateway's (at
    least one); ignored without it."""
    public_access_cidrs: Annotated[tuple[Cidr, ...], Strict(False)] = ()
    """Who may reach the public API endpoint; empty means the endpoint is private only."""
    instance_type: str = "m6i.large"
    """EC2 instance type of the managed node group's nodes, such as m6i.large."""
    desired_nodes: Annotated[int, Field(ge=1, le=100)] = 2
    """Nodes the managed node group runs (a count, 1-100; ``minNodes`` <= this <= ``maxNodes``)."""
    min_nodes: Annotated[int, Field(ge=1, le=100)] = 2
    """Fewest nodes the node group scales down to (a count, 1-100)."""
    max_nodes: Annotated[int, Field(ge=1, le=100)] = 4
    """Most nodes the node group scales up to (a count, 1-100)."""
    nat_gateways: Literal["Single", "OnePerAz"] = "Single"
    """NAT for the private subnets of the created VPC: one (cheaper) or one per AZ (survives an AZ
    outage); ignored with ``vpcId``."""
    admin_principal_arns: Annotated[
        tuple[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$")], ...], Strict(False)
    ] = ()
    """IAM roles/users granted cluster admin through EKS access entries (besides the creator)."""
    protect: bool = False
    """Protect the cluster, VPC and node group from ``pulumi destroy`` (prod)."""
    allow_extended_support: bool = False
    """Run on a Kubernetes version that EKS has moved to extended support, which AWS bills per cluster
    hour on top of standard support. Unset, such a version is refused from the day its standard
    support ends (the EKS calendar in mesh_platform/versions.py); set, ``pulumi preview`` and ``up``
    warn instead. A version past its extended support is refused either way."""

    @rule("minNodes", "desiredNodes", "maxNodes")
    def _node_counts_ordered(self) -> Iterator[Problem]:
        if not self.min_nodes <= self.desired_nodes <= self.max_nodes:
            yield (
                "desiredNodes",
                f"node counts must satisfy minNodes <= desiredNodes <= maxNodes "
                f"(got {self.min_nodes} <= {self.desired_nodes} <= {self.max_nodes})",
            )

    @rule("vpcId", "privateSubnetIds", "publicSubnetIds")
    def _own_vpc_names_its_subnets(self) -> Iterator[Problem]:
        if self.vpc_id and (len(self.private_subnet_ids) < 2 or len(self.public_subnet_ids) < 1):
            yield (
                "vpcId",
                f"with vpcId set, give at least two privateSubnetIds and one publicSubnetIds "
                f"(got {len(self.private_subnet_ids)} and {len(self.public_subnet_ids)})",
            )


ClusterProvider = Literal["kind", "existing", "eks"]


class ClusterSettings(_Settings):
    provider: ClusterProvider = "kind"
    """Where the cluster comes from: ``kind`` (local), ``existing`` (a kubeconfig), ``eks`` (AWS)."""
    name: DnsLabel | None = None
    """Cluster name (a DNS-1123 label); ``mesh-<stack>`` when unset."""
    kubernetes_version: K8sMinor = KUBERNETES_VERSION
    """Kubernetes minor version, quoted (``"1.36"``): the EKS version, the schema version for
    verification; on kind it picks the node image. Refused outside the compatibility matrix, and on
    EKS once in extended support unless ``eks.allowExtendedSupport``."""
    workers: Annotated[int, Field(ge=0, le=10)] = 1
    """kind worker nodes besides the control plane (a count, 0-10). kind only."""
    pod_subnet: Cidr = "10.244.0.0/16"
    """Pod CIDR: kind's podSubnet and Calico's IP pool (10.244/16 avoids home-LAN 192.168/16); must not
    overlap ``serviceSubnet``."""
    service_subnet: Cidr = "10.96.0.0/16"
    """Service (ClusterIP) CIDR of the cluster kind or EKS creates; must not overlap ``podSubnet``, nor
    on EKS ``eks.vpcCidr``."""
    kind: KindSettings = KindSettings()
    """The kind cluster's node image and port mappings; read with provider ``kind`` only."""
    existing: ExistingSettings | None = None
    """The cluster you already run; required with provider ``existing``."""
    eks: EksSettings | None = None
    """The EKS cluster, its VPC and node group; required with provider ``eks`` (at least ``region``)."""

    @model_validator(mode="before")
    @classmethod
    def _node_image_for_version(cls, data: Any) -> Any:
        # A default, not a check: a kind stack that names only kubernetesVersion gets kind's own
        # image for that minor.
        if isinstance(data, Mapping) and isinstance(data.get("kubernetesVersion"), str):
            image = KIND_NODE_IMAGES[KIND_VERSION].get(data["kubernetesVersion"])
            kind = data.get("kind") or {}
            if image and isinstance(kind, Mapping) and "nodeImage" not in kind and "node_image" not in kind:
                return {**data, "kind": {**kind, "nodeImage": image}}
        return data

    @rule("podSubnet", "serviceSubnet")
    def _subnets_disjoint(self) -> Iterator[Problem]:
        if ipaddress.ip_network(self.pod_subnet).overlaps(ipaddress.ip_network(self.service_subnet)):
            yield "podSubnet", f"podSubnet {self.pod_subnet} overlaps serviceSubnet {self.service_subnet}; they must be disjoint"

    @rule("provider", "existing")
    def _existing_needs_kubeconfig(self) -> Iterator[Problem]:
        if self.provider == "existing" and self.existing is None:
            yield "provider", "provider 'existing' needs cluster.existing.kubeconfig (the cluster's kubeconfig file)"

    @rule("provider", "eks")
    def _eks_needs_its_settings(self) -> Iterator[Problem]:
        if self.provider == "eks" and self.eks is None:
            yield "provider", "provider 'eks' needs cluster.eks (at least region)"

    @rule("provider", "kind.nodeImage", "kubernetesVersion")
    def _node_image_is_the_version(self) -> Iterator[Problem]:
        tag = self.kind.node_image.split(":", 1)[1].split("@")[0]
        if self.provider == "kind" and not tag.startswith(f"v{self.kubernetes_version}."):
            yield "kind.nodeImage", f"kind.nodeImage tag {tag} does not match kubernetesVersion {self.kubernetes_version}"

    @rule("provider", "kind.httpNodePort", "kind.httpsNodePort")
    def _node_ports_differ(self) -> Iterator[Problem]:
        if self.provider == "kind" and self.kind.http_node_port == self.kind.https_node_port:
            yield (
                "kind.httpsNodePort",
                f"kind.httpNodePort and kind.httpsNodePort must differ (both {self.kind.http_node_port})",
            )

    @rule("provider", "eks.vpcId", "eks.vpcCidr", "serviceSubnet")
    def _vpc_clear_of_services(self) -> Iterator[Problem]:
        if self.provider != "eks" or self.eks is None or self.eks.vpc_id:
            return
        if ipaddress.ip_network(self.eks.vpc_cidr).overlaps(ipaddress.ip_network(self.service_subnet)):
            yield "eks.vpcCidr", f"eks.vpcCidr {self.eks.vpc_cidr} overlaps serviceSubnet {self.service_subnet}"


# --- calico, istio ----------------------------------------------------------------------------


class CalicoSettings(_Settings):
    version: ExactVersion = CALICO_CHART_VERSION
    """Calico version, exact with its leading ``v``: that of the tigera-operator chart and of the
    crd.projectcalico.org.v1 chart of its CRDs (released together); its line must be in the compatibility matrix."""
    encapsulation: Literal["VXLAN", "VXLANCrossSubnet", "IPIP", "IPIPCrossSubnet", "None"] = "VXLAN"
    """IP-pool encapsulation on kind (VXLAN: works across Docker's bridge without BGP)."""
    ready_timeout_minutes: Annotated[int, Field(ge=1, le=60)] = 10
    """How long the readiness gate waits for the Installation's Ready condition (minutes, 1-60)."""


class IstioSettings(_Settings):
    version: ExactVersion = ISTIO_VERSION
    """Version of Istio's base, cni, istiod and gateway charts (exact, no leading ``v``, at least
    1.30.4); its minor must be a supported line and decides which istio-csr and Kiali versions fit."""
    cni: bool = False
    """Install istio-cni so pods need no NET_ADMIN init container; workload namespaces then enforce Pod
    Security ``restricted`` instead of ``privileged``."""
    ca: Literal["istiod", "cert-manager"] = "istiod"
    """Who signs workload certificates: istiod's own CA, or cert-manager through istio-csr (needs
    ``certManager.enabled``)."""
    istiod_replicas: Annotated[int, Field(ge=1, le=5)] = 1
    """istiod replicas (1-5); above one, a PodDisruptionBudget keeps one running through node drains, and they spread over zones and nodes (soft)."""
    gateway_replicas: Annotated[int, Field(ge=1, le=10)] = 1
    """Ingress gateway replicas (1-10); above one, a PodDisruptionBudget keeps one serving, and they spread over zones and nodes (soft)."""
    gateway_namespace: DnsLabel = "istio-ingress"
    """Namespace of the ingress gateway (a DNS-1123 label); the sample apps may not use it."""

    @rule("version")
    def _at_least_the_floor(self) -> Iterator[Problem]:
        if _release(self.version) < _release(ISTIO_MIN_VERSION):
            yield "version", f"{self.version} is older than {ISTIO_MIN_VERSION}: {ISTIO_MIN_VERSION_REASON}; use {ISTIO_VERSION}"


# --- cert-manager -----------------------------------------------------------------------------

#: Issuers the stack defines; ``certManager.gatewayIssuer`` must name one of them.
CA_ISSUER: Literal["mesh-platform-ca"] = "mesh-platform-ca"
ACME_ISSUER: Literal["mesh-platform-acme"] = "mesh-platform-acme"
SELFSIGNED_ISSUER = "mesh-platform-selfsigned"


class AcmeSettings(_Settings):
    email: Email
    """Where the ACME CA sends expiry notices, such as ops@example.com; an ACME issuer needs acme.email."""
    server: HttpsUrl = "https://acme-staging-v02.api.letsencrypt.org/directory"
    """ACME directory URL (https://). The default is Let's Encrypt's staging directory, whose
    certificates no browser trusts: name the production one for real use."""


class CertManagerSettings(_Settings):
    enabled: bool = True
    """Install cert-manager, the stack's CA and the gateway certificate; off, the gateway serves plain
    HTTP only and ``istio.ca`` must be istiod."""
    version: ExactVersion = CERT_MANAGER_VERSION
    """cert-manager chart version, exact with its leading ``v``; its line must be in the compatibility matrix."""
    istio_csr_version: ExactVersion = ISTIO_CSR_VERSION
    """cert-manager-istio-csr chart version (exact), of the istio-csr line the compatibility matrix names
    for the Istio minor in use (v0.17 for Istio 1.31, tested upstream through Istio 1.30); installed only
    with ``istio.ca: cert-manager``."""
    gateway_issuer: Literal["mesh-platform-ca", "mesh-platform-acme"] = CA_ISSUER
    """ClusterIssuer that signs the gateway's certificate: the stack's own CA, or ACME (then ``acme``
    is required, and ``apps.hosts`` must be full DNS names)."""
    https_redirect: bool = False
    """Answer plain HTTP on the gateway with a 301 to HTTPS, on every path except the ACME HTTP-01
    challenge, which stays served."""
    acme: AcmeSettings | None = None
    """The ACME account; required with ``gatewayIssuer: mesh-platform-acme``."""
    replicas: Annotated[int, Field(ge=1, le=5)] | None = None
    """Replicas of cert-manager's controller (1-5; the chart's ``replicaCount``); they elect one
    leader, the others stand by. Unset: the chart's default, 1."""

    @rule("gatewayIssuer", "acme")
    def _acme_issuer_needs_acme(self) -> Iterator[Problem]:
        if self.gateway_issuer == ACME_ISSUER and self.acme is None:
            yield "gatewayIssuer", f"gatewayIssuer {ACME_ISSUER} needs certManager.acme (email, server)"


# --- apps -------------------------------------------------------------------------------------


class Destination(_Settings):
    subset: DnsLabel
    """The version of its service (one of its ``versions``) this share of the traffic goes to."""
    weight: Annotated[int, Field(ge=0, le=100)] = 100
    """Percent of the route's requests sent there (0-100); a route's weights sum to 100."""


class Retries(_Settings):
    attempts: Annotated[int, Field(ge=1, le=10)]
    """Retries after the first try (1-10), on connection failures, resets and 5xx answers."""
    per_try_timeout: Duration = "2s"
    """Timeout of each try, a duration such as 500ms or 2s."""


class Route(_Settings):
    prefix: PathPrefix | None = None
    """URI prefix this route matches; the route without one is the catch-all and must come last."""
    destinations: tuple[Destination, ...] = Field(min_length=1)
    """Where matched requests go: one or more subsets, with weights summing to 100."""
    retries: Retries | None = None
    """Retry failed requests; no retries when unset."""
    timeout: Duration | None = None
    """Timeout of the whole request, retries included, a duration such as 10s; Istio's default (none) when unset."""

    @rule("destinations[].weight")
    def _weights_sum_to_100(self) -> Iterator[Problem]:
        total = sum(d.weight for d in self.destinations)
        if total != 100:
            yield "", f"destination weights must sum to 100 (got {total})"


class Service(_Settings):
    name: DnsLabel
    """Workload name (a DNS-1123 label): its Deployments, Service and ServiceAccount, and how
    ``allowFrom`` lists name it."""
    port: ServicePort
    """Port the service listens on and is called at (1-65535, none the Istio sidecar reserves)."""
    versions: tuple[DnsLabel, ...] = ("v1",)
    """Versions deployed side by side, one Deployment each with the pod label ``version``; routes send
    traffic to them as subsets."""
    role: DnsLabel | None = None
    """Value of the pod label ``role`` (``frontend`` gets the seed's no-ingress intent)."""
    expose: bool = False
    """Route it through the ingress gateway (the gateway may then call it on ``port``)."""
    routes: tuple[Route, ...] = ()
    """HTTP routes, in order, the first match winning; without any, no VirtualService is made and
    requests spread over every version."""
    allow_from: tuple[DnsLabel, ...] = ()
    """Workloads (in ``apps.namespace``) that may call this service; enforced on both layers."""
    replicas: Annotated[int, Field(ge=1, le=10)] = 1
    """Pods per version (1-10)."""

    @rule("versions")
    def _versions_unique(self) -> Iterator[Problem]:
        if len(set(self.versions)) != len(self.versions):
            yield "versions", f"duplicate version in {list(self.versions)}"

    @rule("versions", "routes[].destinations[].subset")
    def _subsets_are_versions(self) -> Iterator[Problem]:
        for i, route in enumerate(self.routes):
            for j, dest in enumerate(route.destinations):
                if dest.subset not in self.versions:
                    yield f"routes[{i}].destinations[{j}]", f"names unknown subset {dest.subset!r}; known: {list(self.versions)}"

    @rule("routes[].prefix")
    def _catch_all_last(self) -> Iterator[Problem]:
        for i, route in enumerate(self.routes):
            if route.prefix is None and i != len(self.routes) - 1:
                yield f"routes[{i}]", "has no prefix (catch-all) but is not the last route"


def _demo_services() -> tuple[Service, ...]:
    return (
        Service(
            name="my-service",
            port=5000,
            versions=("v1", "v2"),
            expose=True,
            routes=(
                Route(prefix="/v1", destinations=(Destination(subset="v1"),)),
                Route(
                    destinations=(Destination(subset="v2"),),
                    retries=Retries(attempts=3, per_try_timeout="2s"),
                    timeout="10s",
                ),
            ),
            allow_from=("frontend", "client"),
        ),
        Service(name="frontend", port=8080, role="frontend"),
    )


class AppsSettings(_Settings):
    enabled: bool = True
    """Deploy the sample apps and their zero-trust policies."""
    namespace: DnsLabel = "demo"
    """Namespace the sample workloads run in (a DNS-1123 label, not a platform namespace)."""
    hosts: tuple[Hostname, ...] = Field(default=("localhost",), min_length=1)
    """Host names the gateway answers for (and the gateway certificate covers); with the ACME issuer,
    full DNS names only."""
    client: bool = True
    """Run the in-mesh ``client`` workload (curl) to probe from."""
    services: tuple[Service, ...] = Field(default_factory=_demo_services)
    """The sample services, as data; the two-service demo when unset."""

    @rule("services[].name", "client")
    def _workload_names_unique(self) -> Iterator[Problem]:
        names = list(self.workloads)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            yield "services", f"duplicate workload names {dupes}; every service (and 'client') needs its own name"

    @rule("services[].name", "services[].allowFrom", "client")
    def _callers_known(self) -> Iterator[Problem]:
        names = list(self.workloads)
        for i, svc in enumerate(self.services):
            for j, caller in enumerate(svc.allow_from):
                key = f"services[{i}].allowFrom[{j}]"
                if caller not in names:
                    yield key, f"service {svc.name!r} allows calls from unknown workload {caller!r}; known: {names}"
                elif caller == svc.name:
                    yield key, f"service {svc.name!r} lists itself in allowFrom"

    @rule("services[].name", "services[].expose", "services[].routes[].prefix")
    def _one_exposed_catch_all(self) -> Iterator[Problem]:
        catch_alls = [s.name for s in self.services if s.expose and any(r.prefix is None for r in s.routes)]
        if len(catch_alls) > 1:
            # Exposed services share the gateway's hosts, so istiod merges their routes into one
            # virtual host and keeps only the first catch-all (SortVHostRoutes).
            yield (
                "services",
                f"exposed services {catch_alls} each have a catch-all route (no prefix); they share the "
                f"gateway's hosts, so only one would ever answer: give all but one of them prefixes",
            )

    @property
    def workloads(self) -> tuple[str, ...]:
        """Every workload name: the services, then the probe client."""
        return tuple(s.name for s in self.services) + (("client",) if self.client else ())

    def calls(self) -> tuple[tuple[str, Service], ...]:
        """The declared calls as (caller, callee) pairs: the one allow list both layers enforce."""
        return tuple((caller, svc) for svc in self.services for caller in svc.allow_from)

    def callees_of(self, caller: str) -> tuple[Service, ...]:
        return tuple(svc for c, svc in self.calls() if c == caller)


# --- observability ----------------------------------------------------------------------------


class ObservabilitySettings(_Settings):
    enabled: bool = False
    """Install Prometheus, Kiali and Jaeger, and send the mesh's metrics and traces to them."""
    namespace: DnsLabel = "observability"
    """Namespace of Prometheus, Kiali and Jaeger (a DNS-1123 label)."""
    prometheus_version: ExactVersion = PROMETHEUS_CHART_VERSION
    """prometheus chart version (exact)."""
    kiali_version: ExactVersion = KIALI_CHART_VERSION
    """kiali-server chart version (exact), in the range the Istio minor ships."""
    tracing_sampling: Annotated[float, Field(ge=0, le=100)] = 1.0
    """Percent of requests traced (0-100), through Istio's Telemetry API (1 in prod, 100 in dev)."""
    calico_flows: bool = True
    """Calico's Goldmane (flow aggregation) and Whisker (flow UI), with ``enabled`` only."""
    node_cidrs: tuple[Cidr, ...] = ()
    """Where the nodes (and so the API server, Felix and Typha) live, for the observability
    namespace's egress policy. Defaults: kind the IPv4 subnet of the Docker network the cluster
    really got (read after it is created), EKS the VPC."""


# --- charts -----------------------------------------------------------------------------------


class ChartsSettings(_Settings):
    """Where each Helm chart is fetched from: air-gapped clusters and sites behind a chart proxy."""

    mirror: ChartRepo | None = None
    """One Helm repository (http:// or https://) for every release: its index.yaml must list every
    chart the stack installs, at the pinned versions."""
    repos: dict[ChartName, ChartRepo] = Field(default_factory=dict)
    """One repository per chart, which wins over ``mirror``, keyed by chart name:
    ``crd.projectcalico.org.v1``, ``tigera-operator``, ``base``, ``cni``, ``istiod``, ``gateway``,
    ``cert-manager``, ``cert-manager-istio-csr``, ``prometheus``, ``kiali-server``."""

    def repo(self, chart: str) -> str:
        """The repository ``chart`` is installed from: its own entry, else the mirror, else upstream."""
        return self.repos.get(chart) or self.mirror or UPSTREAM_CHART_REPOS[chart]


# --- the whole stack --------------------------------------------------------------------------

#: Namespaces the platform itself runs in; the sample apps may not take one of them.
PLATFORM_NAMESPACES = ("kube-system", ISTIO_NAMESPACE, "calico-system")


class Settings(_Settings):
    stack: DnsLabel
    """The stack's name, from Pulumi (not a config key): the cluster is named after it when ``cluster.name`` is unset."""
    cluster: ClusterSettings = ClusterSettings()
    """Where the cluster comes from (kind, existing, eks), its size, subnets and node image."""
    calico: CalicoSettings = CalicoSettings()
    """Calico version (its CRD and tigera-operator charts), IP-pool encapsulation, readiness timeout."""
    istio: IstioSettings = IstioSettings()
    """Istio chart version, istio-cni, certificate authority, replicas, gateway namespace."""
    cert_manager: CertManagerSettings = CertManagerSettings()
    """cert-manager and istio-csr versions, gateway issuer, ACME, HTTPS redirect."""
    apps: AppsSettings = AppsSettings()
    """Sample services as data: name, port, versions, routes, who may call them."""
    observability: ObservabilitySettings = ObservabilitySettings()
    """Prometheus, Kiali, tracing sampling and Calico flow visibility."""
    charts: ChartsSettings = ChartsSettings()
    """Where the Helm charts come from: one mirror for every chart, or a repository per chart."""
    #: The date of the run (``run_date()``), which the loader hands in: not a config key.
    _run_date: dt.date | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _date_of_the_run(self, info: ValidationInfo) -> Settings:
        if info.context and info.context.get("run_date"):
            self._run_date = info.context["run_date"]
        return self

    @property
    def run_date(self) -> dt.date:
        """The day the EKS support calendar is read at: the loader's, else today's (``run_date()``)."""
        return self._run_date or run_date()

    @rule("istio.ca", "certManager.enabled")
    def _mesh_ca_needs_cert_manager(self) -> Iterator[Problem]:
        if self.mesh_ca_is_cert_manager and not self.cert_manager.enabled:
            yield (
                "istio.ca",
                "istio.ca 'cert-manager' needs certManager.enabled true (got false); enable cert-manager or set istio.ca istiod",
            )

    @rule("observability.enabled", "observability.nodeCidrs", "cluster.provider", "cluster.eks")
    def _node_cidrs_known(self) -> Iterator[Problem]:
        if self.observability.enabled and not self.node_cidrs and self.cluster.provider != "kind":
            yield (
                "observability.nodeCidrs",
                f"observability.nodeCidrs is required for this cluster (the nodes' addresses, for egress "
                f"policy): provider {self.cluster.provider!r} does not tell them"
                + (" when cluster.eks.vpcId names a VPC of your own" if self.cluster.provider == "eks" else ""),
            )

    @rule("apps.namespace", "istio.gatewayNamespace")
    def _apps_namespace_is_their_own(self) -> Iterator[Problem]:
        platform = (*PLATFORM_NAMESPACES, self.istio.gateway_namespace)
        if self.apps.namespace in platform:
            yield (
                "apps.namespace",
                f"apps.namespace {self.apps.namespace!r} is a platform namespace; pick another "
                f"(platform namespaces: {', '.join(platform)})",
            )

    @rule("certManager.enabled", "certManager.gatewayIssuer", "apps.hosts")
    def _acme_hosts_are_dns_names(self) -> Iterator[Problem]:
        if not (self.cert_manager.enabled and self.cert_manager.gateway_issuer == ACME_ISSUER):
            return
        for i, host in enumerate(self.apps.hosts):
            if "." not in host:
                # istiod resolves a one-word VirtualService host to <host>.<namespace>.svc.cluster.local
                # (ResolveShortnameToFQDN), the solver Ingress's route included.
                yield (
                    f"apps.hosts[{i}]",
                    f"apps.hosts[{i}] {host!r} is one word, which gatewayIssuer {ACME_ISSUER} cannot serve: the "
                    "ACME CA validates only public DNS names, and istiod reads the HTTP-01 solver's one-word "
                    f"host as {host}.<namespace>.svc.cluster.local, so the challenge never reaches the solver; "
                    "use a full DNS name such as app.example.com",
                )

    # The compatibility matrix (mesh_platform/versions.py): one rule per pair of things it relates.

    @rule("istio.version", "cluster.kubernetesVersion")
    def _istio_runs_on_kubernetes(self) -> Iterator[Problem]:
        yield from self._runs_on_kubernetes("istio", "istio.version", self.istio.version, ISTIO_VERSION)

    @rule("calico.version", "cluster.kubernetesVersion")
    def _calico_runs_on_kubernetes(self) -> Iterator[Problem]:
        yield from self._runs_on_kubernetes("calico", "calico.version", self.calico.version, CALICO_CHART_VERSION)

    @rule("certManager.enabled", "certManager.version", "cluster.kubernetesVersion")
    def _cert_manager_runs_on_kubernetes(self) -> Iterator[Problem]:
        if self.cert_manager.enabled:
            yield from self._runs_on_kubernetes(
                "certManager", "certManager.version", self.cert_manager.version, CERT_MANAGER_VERSION
            )

    def _runs_on_kubernetes(self, component: str, key: str, version: str, pin: str) -> Iterator[Problem]:
        k8s = self.cluster.kubernetes_version
        row = KUBERNETES_SUPPORT.get((component, minor(version)))
        if row is None and (component, minor(version)) in SUPPORT_ENDED:
            yield key, f"{version} is refused: {SUPPORT_ENDED[component, minor(version)]}; use {pin}"
        elif row is None:
            lines = sorted(line for c, line in KUBERNETES_SUPPORT if c == component)
            yield key, f"{version} is not in the compatibility matrix; supported lines: {', '.join(lines)}"
        elif not within(k8s, row[0], row[1]):
            yield (
                "cluster.kubernetesVersion",
                f"{k8s} is outside the Kubernetes range of {key} {version} ({row[0]}-{row[1]}, {row[2]})",
            )

    @rule("istio.ca", "istio.version", "certManager.istioCsrVersion")
    def _istio_csr_built_for_istio(self) -> Iterator[Problem]:
        istio = minor(self.istio.version)
        want = ISTIO_CSR_FOR_ISTIO.get(istio)
        if self.mesh_ca_is_cert_manager and want and minor(self.cert_manager.istio_csr_version) != want:
            yield (
                "certManager.istioCsrVersion",
                f"{self.cert_manager.istio_csr_version} is not the istio-csr line for istio.version {self.istio.version}; "
                f"use v{want}.x (istio-csr {want} with Istio {istio}, tested upstream through Istio "
                f"{ISTIO_CSR_TESTED_THROUGH[want]})",
            )

    @rule("observability.enabled", "istio.version", "observability.kialiVersion")
    def _kiali_shipped_with_istio(self) -> Iterator[Problem]:
        istio = minor(self.istio.version)
        if self.observability.enabled and istio in KIALI_FOR_ISTIO:
            low, high = KIALI_FOR_ISTIO[istio]
            if not within(minor(self.observability.kiali_version), low, high):
                yield (
                    "observability.kialiVersion",
                    f"{self.observability.kiali_version} is outside the Kiali range istio.version "
                    f"{self.istio.version} ships ({low}-{high})",
                )

    @rule("cluster.provider", "cluster.kind.nodeImage")
    def _node_image_of_kind_release(self) -> Iterator[Problem]:
        images = KIND_NODE_IMAGES[KIND_VERSION]
        if self.cluster.provider == "kind" and self.cluster.kind.node_image not in images.values():
            yield (
                "cluster.kind.nodeImage",
                f"{self.cluster.kind.node_image} is not a node image of kind {KIND_VERSION}; "
                f"use one of: {', '.join(images.values())}",
            )

    @rule("cluster.provider", "cluster.kubernetesVersion")
    def _eks_offers_kubernetes(self) -> Iterator[Problem]:
        k8s = self.cluster.kubernetes_version
        if self.cluster.provider != "eks":
            return
        offered = ", ".join(v for v, (_, extended) in EKS_VERSIONS.items() if self.run_date < dt.date.fromisoformat(extended))
        if k8s not in EKS_VERSIONS:
            yield "cluster.kubernetesVersion", f"EKS offers no Kubernetes {k8s}; supported: {offered}"
        elif self.run_date >= dt.date.fromisoformat(EKS_VERSIONS[k8s][1]):
            yield (
                "cluster.kubernetesVersion",
                f"EKS offers no Kubernetes {k8s} any more: its extended support ended on {EKS_VERSIONS[k8s][1]} "
                f"(today is {self.run_date}); supported: {offered}",
            )

    @rule("cluster.provider", "cluster.kubernetesVersion", "cluster.eks.allowExtendedSupport")
    def _eks_standard_support_or_the_opt_in(self) -> Iterator[Problem]:
        ended = self.eks_standard_support_ended
        if ended and self.cluster.eks is not None and not self.cluster.eks.allow_extended_support:
            k8s = self.cluster.kubernetes_version
            standard = [v for v, (end, _) in EKS_VERSIONS.items() if self.run_date < dt.date.fromisoformat(end)]
            yield (
                "cluster.kubernetesVersion",
                f"EKS Kubernetes {k8s} is in extended support: its standard support ended on {ended} (today is "
                f"{self.run_date}), and AWS bills extended support per cluster hour, on top of standard support, until "
                f"{EKS_VERSIONS[k8s][1]}; use a version in standard support "
                f"({', '.join(standard) or 'none in mesh_platform/versions.py any more'}) "
                "or set cluster.eks.allowExtendedSupport: true",
            )

    @property
    def eks_standard_support_ended(self) -> str | None:
        """On EKS, the day the stack's Kubernetes version left standard support, if it has by
        ``run_date`` and is still offered (in extended support); else None."""
        row = EKS_VERSIONS.get(self.cluster.kubernetes_version)
        if self.cluster.provider != "eks" or row is None:
            return None
        standard_end, extended_end = (dt.date.fromisoformat(d) for d in row)
        return row[0] if standard_end <= self.run_date < extended_end else None

    @property
    def extended_support_warning(self) -> str | None:
        """What ``pulumi preview`` and ``up`` warn of when the stack opted in to extended support."""
        ended = self.eks_standard_support_ended
        if not ended:
            return None
        k8s = self.cluster.kubernetes_version
        return (
            f"cluster.kubernetesVersion {k8s}: EKS standard support ended on {ended}; this cluster runs in extended "
            f"support, billed per cluster hour on top of standard support, until {EKS_VERSIONS[k8s][1]} "
            "(cluster.eks.allowExtendedSupport: true). Upgrade to a version in standard support."
        )

    @property
    def node_cidrs(self) -> tuple[str, ...]:
        """Known before anything runs; on kind, empty unless set (the cluster reads its network)."""
        if self.observability.node_cidrs:
            return self.observability.node_cidrs
        if self.cluster.provider == "eks" and self.cluster.eks and not self.cluster.eks.vpc_id:
            return (self.cluster.eks.vpc_cidr,)
        return ()

    @property
    def discover_node_cidrs(self) -> bool:
        """kind: take the nodes' addresses from the Docker network the cluster really got."""
        return self.cluster.provider == "kind" and self.observability.enabled and not self.observability.node_cidrs

    @property
    def mesh_ca_is_cert_manager(self) -> bool:
        """istio.ca cert-manager: istio-csr, signing with the CA issuer, is the mesh's CA (cert-manager is on)."""
        return self.istio.ca == "cert-manager"

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or f"mesh-{self.stack}"[:63]


# --- first-run rules: what verify would otherwise report later, in its own terms ----------------
# Kept together here: each is attached to its model below as a rule like the ones written in it.


@rule("expose", "routes")
def _exposed_has_a_route(self: Service) -> Iterator[Problem]:
    # Without a route no VirtualService binds to the gateway (components/sample_apps.py makes the
    # gateway's VirtualService from routes only), so istiod answers 404 on every gateway host.
    if self.expose and not self.routes:
        yield (
            "routes",
            f"service {self.name!r} has expose true but no routes (got none), so the gateway would answer 404 "
            f"for it; allowed: at least one route, such as routes: [{{destinations: [{{subset: {self.versions[0]}}}]}}], "
            "or expose false",
        )


Service._exposed_has_a_route = _exposed_has_a_route  # type: ignore[attr-defined]


def defaults_used(settings: Settings) -> str | None:
    """One line naming the defaults a stack runs on when its file sets nothing of its own (an empty
    stack file, or one that only repeats defaults); ``None`` when it sets anything."""
    if settings.model_dump() != Settings(stack=settings.stack).model_dump():
        return None
    s = settings
    c = s.cluster
    apps = ", ".join(f"{svc.name} ({'+'.join(svc.versions)}{', exposed' if svc.expose else ''})" for svc in s.apps.services)
    parts = [
        f"cluster {c.provider} {s.cluster_name!r}, Kubernetes {c.kubernetes_version}, {c.workers} worker(s), "
        f"http://localhost:{c.kind.http_host_port}",
        f"Calico {s.calico.version}",
        f"Istio {s.istio.version} (CA {s.istio.ca})",
        f"cert-manager {s.cert_manager.version} (gateway issuer {s.cert_manager.gateway_issuer})"
        if s.cert_manager.enabled
        else "no cert-manager",
        f"the demo apps in {s.apps.namespace!r} on {', '.join(s.apps.hosts)}: {apps}{', client' if s.apps.client else ''}",
        "observability off" if not s.observability.enabled else "observability on",
    ]
    return f'stack {s.stack} sets nothing of its own and runs on the defaults: {"; ".join(parts)} (README.md, "Configuration reference")'
