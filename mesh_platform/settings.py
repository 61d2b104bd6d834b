"""Typed, frozen settings for one stack, validated before any resource is registered.

Every stack value lives under one of the grouped keys in ``KNOWN_KEYS`` (``mesh-platform:cluster``,
``mesh-platform:calico`` ...). ``load()`` reads them, fills in the defaults below and validates the
whole tree with pydantic (``extra="forbid"``, so an unknown or misspelt key is an error, not a
silently ignored value). Every problem found is reported at once, each line naming the key, the
bad value and what is allowed, raised as ``pulumi.RunError`` so ``pulumi up`` prints one clean
message instead of a traceback.

The versions the defaults name, and the compatibility matrix the stack is checked against, are in
``mesh_platform/versions.py``.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from mesh_platform.versions import (
    CALICO_CHART_VERSION,
    CERT_MANAGER_VERSION,
    EKS_VERSIONS,
    ISTIO_CSR_FOR_ISTIO,
    ISTIO_CSR_VERSION,
    ISTIO_VERSION,
    KIALI_CHART_VERSION,
    KIALI_FOR_ISTIO,
    KIND_NODE_IMAGE,
    KIND_NODE_IMAGES,
    KIND_VERSION,
    KUBERNETES_SUPPORT,
    KUBERNETES_VERSION,
    PROMETHEUS_CHART_VERSION,
    UPSTREAM_CHART_REPOS,
    minor,
    within,
)

PROJECT = "mesh-platform"

#: The stack's grouped config keys (``mesh-platform:<key>``); anything else is rejected.
KNOWN_KEYS = ("cluster", "calico", "istio", "certManager", "apps", "observability", "charts")
#: Config namespaces a stack file may use besides the project's: Pulumi's own (``pulumi:tags``,
#: ``pulumi:disable-default-providers``) and those of the providers this program uses
#: (requirements.txt), whose default providers read ``<provider>:<key>`` (``aws:region``,
#: ``kubernetes:context``). Any other namespace is a typo, never silently ignored.
PROVIDER_NAMESPACES = ("pulumi", "kubernetes", "aws", "awsx", "eks", "command")

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
    if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", value):
        raise ValueError("must be the http:// or https:// URL of a Helm chart repository (its index.yaml is read there)")
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
ChartName = Literal[
    "tigera-operator", "base", "cni", "istiod", "gateway", "cert-manager", "cert-manager-istio-csr", "prometheus", "kiali-server"
]
Port = Annotated[int, Field(ge=1, le=65535)]
NodePort = Annotated[int, Field(ge=30000, le=32767)]


class _Settings(BaseModel):
    """Base: camelCase keys in the stack file, snake_case in Python, frozen, unknown keys rejected."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        # No coercion: `workers: true` or `port: "80"` is an error naming the key, not a 1 or an 80.
        # Stack values are validated as JSON (``parse``), where an array is a valid tuple and an
        # integer a valid float.
        strict=True,
    )


# --- cluster ----------------------------------------------------------------------------------


class KindSettings(_Settings):
    node_image: Image = KIND_NODE_IMAGE
    """kind node image; its tag fixes the Kubernetes version (``cluster.kubernetesVersion`` must match)."""
    http_host_port: Port = 8080
    """Host port mapped to the gateway's HTTP NodePort: ``curl http://localhost:<this>/``."""
    https_host_port: Port = 8443
    """Host port mapped to the gateway's HTTPS NodePort."""
    http_node_port: NodePort = 30080
    https_node_port: NodePort = 30443


class ExistingSettings(_Settings):
    kubeconfig: str
    """Path of a kubeconfig file for a cluster you already run (must already have no CNI but Calico's)."""
    context: str | None = None
    """Context in that file; the file's current context when unset."""


class EksSettings(_Settings):
    region: Region
    vpc_cidr: Cidr = "10.0.0.0/16"
    """CIDR of the VPC the stack creates (ignored when ``vpcId`` is set)."""
    availability_zones: Annotated[int, Field(ge=2, le=6)] = 2
    """How many AZs the created VPC spans (at least two, for the control plane and for HA)."""
    vpc_id: str | None = None
    """An existing VPC; then ``privateSubnetIds`` and ``publicSubnetIds`` are required."""
    # Lax only about the container (a list is a tuple): ClusterSettings' before-validator hands this
    # model Python lists, which strict mode would refuse. The items stay strict.
    private_subnet_ids: Annotated[tuple[str, ...], Strict(False)] = ()
    public_subnet_ids: Annotated[tuple[str, ...], Strict(False)] = ()
    public_access_cidrs: Annotated[tuple[Cidr, ...], Strict(False)] = ()
    """Who may reach the public API endpoint; empty means the endpoint is private only."""
    instance_type: str = "m6i.large"
    desired_nodes: Annotated[int, Field(ge=1, le=100)] = 2
    min_nodes: Annotated[int, Field(ge=1, le=100)] = 2
    max_nodes: Annotated[int, Field(ge=1, le=100)] = 4
    nat_gateways: Literal["Single", "OnePerAz"] = "Single"
    """NAT for the private subnets: one (cheaper) or one per AZ (survives an AZ outage)."""
    admin_principal_arns: Annotated[
        tuple[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$")], ...], Strict(False)
    ] = ()
    """IAM roles/users granted cluster admin through EKS access entries (besides the creator)."""
    protect: bool = False
    """Protect the cluster, VPC and node group from ``pulumi destroy`` (prod)."""

    @model_validator(mode="after")
    def _check(self) -> EksSettings:
        if not self.min_nodes <= self.desired_nodes <= self.max_nodes:
            raise ValueError(
                f"node counts must satisfy minNodes <= desiredNodes <= maxNodes "
                f"(got {self.min_nodes} <= {self.desired_nodes} <= {self.max_nodes})"
            )
        if self.vpc_id and (len(self.private_subnet_ids) < 2 or len(self.public_subnet_ids) < 1):
            raise ValueError("with vpcId set, give at least two privateSubnetIds and one publicSubnetIds")
        return self


ClusterProvider = Literal["kind", "existing", "eks"]


class ClusterSettings(_Settings):
    provider: ClusterProvider = "kind"
    """Where the cluster comes from: ``kind`` (local), ``existing`` (a kubeconfig), ``eks`` (AWS)."""
    name: DnsLabel | None = None
    """Cluster name; ``mesh-<stack>`` when unset."""
    kubernetes_version: K8sMinor = KUBERNETES_VERSION
    """Kubernetes minor version: the EKS version, the schema version for verification."""
    workers: Annotated[int, Field(ge=0, le=10)] = 1
    """kind worker nodes besides the control plane."""
    pod_subnet: Cidr = "10.244.0.0/16"
    """Pod CIDR: kind's podSubnet and Calico's IP pool (10.244/16 avoids home-LAN 192.168/16)."""
    service_subnet: Cidr = "10.96.0.0/16"
    kind: KindSettings = KindSettings()
    existing: ExistingSettings | None = None
    eks: EksSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _node_image_for_version(cls, data: Any) -> Any:
        # A kind stack that names only kubernetesVersion gets kind's own image for that minor.
        if isinstance(data, Mapping) and isinstance(data.get("kubernetesVersion"), str):
            image = KIND_NODE_IMAGES[KIND_VERSION].get(data["kubernetesVersion"])
            kind = data.get("kind") or {}
            if image and isinstance(kind, Mapping) and "nodeImage" not in kind and "node_image" not in kind:
                return {**data, "kind": {**kind, "nodeImage": image}}
        return data

    @model_validator(mode="after")
    def _check(self) -> ClusterSettings:
        pods, services = ipaddress.ip_network(self.pod_subnet), ipaddress.ip_network(self.service_subnet)
        if pods.overlaps(services):
            raise ValueError(f"podSubnet {self.pod_subnet} overlaps serviceSubnet {self.service_subnet}; they must be disjoint")
        if self.provider == "existing" and self.existing is None:
            raise ValueError("provider 'existing' needs cluster.existing.kubeconfig")
        if self.provider == "eks" and self.eks is None:
            raise ValueError("provider 'eks' needs cluster.eks (at least region)")
        if self.provider == "kind":
            tag = self.kind.node_image.split(":", 1)[1].split("@")[0]
            if not tag.startswith(f"v{self.kubernetes_version}."):
                raise ValueError(f"kind.nodeImage tag {tag} does not match kubernetesVersion {self.kubernetes_version}")
            if self.kind.http_node_port == self.kind.https_node_port:
                raise ValueError("kind.httpNodePort and kind.httpsNodePort must differ")
        if self.provider == "eks" and self.eks is not None and not self.eks.vpc_id:
            vpc = ipaddress.ip_network(self.eks.vpc_cidr)
            if vpc.overlaps(services):
                raise ValueError(f"eks.vpcCidr {self.eks.vpc_cidr} overlaps serviceSubnet {self.service_subnet}")
        return self


# --- calico, istio ----------------------------------------------------------------------------


class CalicoSettings(_Settings):
    version: ExactVersion = CALICO_CHART_VERSION
    encapsulation: Literal["VXLAN", "VXLANCrossSubnet", "IPIP", "IPIPCrossSubnet", "None"] = "VXLAN"
    """IP-pool encapsulation on kind (VXLAN: works across Docker's bridge without BGP)."""
    ready_timeout_minutes: Annotated[int, Field(ge=1, le=60)] = 10
    """How long the readiness gate waits for the Installation's Ready condition."""


class IstioSettings(_Settings):
    version: ExactVersion = ISTIO_VERSION
    cni: bool = False
    """Install istio-cni so pods need no NET_ADMIN init container (workload namespaces go restricted)."""
    ca: Literal["istiod", "cert-manager"] = "istiod"
    """Who signs workload certificates: istiod's own CA, or cert-manager through istio-csr."""
    istiod_replicas: Annotated[int, Field(ge=1, le=5)] = 1
    gateway_replicas: Annotated[int, Field(ge=1, le=10)] = 1
    gateway_namespace: DnsLabel = "istio-ingress"


# --- cert-manager -----------------------------------------------------------------------------

#: Issuers the stack defines; ``certManager.gatewayIssuer`` must name one of them.
CA_ISSUER = "mesh-platform-ca"
ACME_ISSUER = "mesh-platform-acme"
SELFSIGNED_ISSUER = "mesh-platform-selfsigned"


class AcmeSettings(_Settings):
    email: Email
    server: HttpsUrl = "https://acme-staging-v02.api.letsencrypt.org/directory"


class CertManagerSettings(_Settings):
    enabled: bool = True
    version: ExactVersion = CERT_MANAGER_VERSION
    istio_csr_version: ExactVersion = ISTIO_CSR_VERSION
    gateway_issuer: Literal["mesh-platform-ca", "mesh-platform-acme"] = CA_ISSUER
    """ClusterIssuer that signs the gateway's certificate."""
    https_redirect: bool = False
    """Answer plain HTTP on the gateway with a redirect to HTTPS."""
    acme: AcmeSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _acme_needs_email(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("acme"), Mapping) and not data["acme"].get("email"):
            raise ValueError("an ACME issuer needs acme.email (where the CA sends expiry notices)")
        return data

    @model_validator(mode="after")
    def _check(self) -> CertManagerSettings:
        if self.gateway_issuer == ACME_ISSUER and self.acme is None:
            raise ValueError(f"gatewayIssuer {ACME_ISSUER} needs certManager.acme (email, server)")
        return self


# --- apps -------------------------------------------------------------------------------------


class Destination(_Settings):
    subset: DnsLabel
    weight: Annotated[int, Field(ge=0, le=100)] = 100


class Retries(_Settings):
    attempts: Annotated[int, Field(ge=1, le=10)]
    per_try_timeout: Duration = "2s"


class Route(_Settings):
    prefix: PathPrefix | None = None
    """URI prefix this route matches; the route without one is the catch-all and must come last."""
    destinations: tuple[Destination, ...] = Field(min_length=1)
    retries: Retries | None = None
    timeout: Duration | None = None

    # Weights, subsets and the catch-all's place span several fields: ``apps_errors`` checks them
    # all, so one run reports every one.


class Service(_Settings):
    name: DnsLabel
    port: Port
    versions: tuple[DnsLabel, ...] = ("v1",)
    role: DnsLabel | None = None
    """Value of the pod label ``role`` (``frontend`` gets the seed's no-ingress intent)."""
    expose: bool = False
    """Route it through the ingress gateway (the gateway may then call it on ``port``)."""
    routes: tuple[Route, ...] = ()
    allow_from: tuple[DnsLabel, ...] = ()
    """Workloads (in ``apps.namespace``) that may call this service; enforced on both layers."""
    replicas: Annotated[int, Field(ge=1, le=10)] = 1

    def errors(self) -> list[tuple[str, str]]:
        """Every rule over several of its fields that it breaks, as (key below the service, message)."""
        out = []
        if len(set(self.versions)) != len(self.versions):
            out.append(("versions", f"duplicate version in {list(self.versions)}"))
        for i, route in enumerate(self.routes):
            total = sum(d.weight for d in route.destinations)
            if total != 100:
                out.append((f"routes[{i}]", f"destination weights must sum to 100 (got {total})"))
            for j, dest in enumerate(route.destinations):
                if dest.subset not in self.versions:
                    out.append(
                        (
                            f"routes[{i}].destinations[{j}]",
                            f"names unknown subset {dest.subset!r}; known: {list(self.versions)}",
                        )
                    )
            if route.prefix is None and i != len(self.routes) - 1:
                out.append((f"routes[{i}]", "has no prefix (catch-all) but is not the last route"))
        if self.port in (15000, 15001, 15004, 15006, 15008, 15020, 15021, 15090):
            out.append(("port", f"port {self.port} is reserved by the Istio sidecar"))
        return out


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
    namespace: DnsLabel = "demo"
    hosts: tuple[Hostname, ...] = Field(default=("localhost",), min_length=1)
    """Host names the gateway answers for (and the gateway certificate covers)."""
    client: bool = True
    """Run the in-mesh ``client`` workload (curl) to probe from."""
    services: tuple[Service, ...] = Field(default_factory=_demo_services)

    def errors(self) -> list[tuple[str, str]]:
        """Every rule over several fields that the apps break, each once, as (key below ``apps``, message)."""
        out = [(f"services[{i}].{key}", msg) for i, svc in enumerate(self.services) for key, msg in svc.errors()]
        names = [s.name for s in self.services] + (["client"] if self.client else [])
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            out.append(("services", f"duplicate workload names {dupes}; every service (and 'client') needs its own name"))
        for i, svc in enumerate(self.services):
            for j, caller in enumerate(svc.allow_from):
                key = f"services[{i}].allowFrom[{j}]"
                if caller not in names:
                    out.append((key, f"service {svc.name!r} allows calls from unknown workload {caller!r}; known: {names}"))
                elif caller == svc.name:
                    out.append((key, f"service {svc.name!r} lists itself in allowFrom"))
        catch_alls = [s.name for s in self.services if s.expose and any(r.prefix is None for r in s.routes)]
        if len(catch_alls) > 1:
            # Exposed services share the gateway's hosts, so istiod merges their routes into one
            # virtual host and keeps only the first catch-all (SortVHostRoutes).
            out.append(
                (
                    "services",
                    f"exposed services {catch_alls} each have a catch-all route (no prefix); they share the "
                    f"gateway's hosts, so only one would ever answer: give all but one of them prefixes",
                )
            )
        return out

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
    namespace: DnsLabel = "observability"
    prometheus_version: ExactVersion = PROMETHEUS_CHART_VERSION
    kiali_version: ExactVersion = KIALI_CHART_VERSION
    tracing_sampling: Annotated[float, Field(ge=0, le=100)] = 1.0
    """Percent of requests traced, through Istio's Telemetry API (1 in prod, 100 in dev)."""
    calico_flows: bool = True
    """Calico's Goldmane (flow aggregation) and Whisker (flow UI)."""
    node_cidrs: tuple[Cidr, ...] = ()
    """Where the nodes (and so the API server, Felix and Typha) live, for the observability
    namespace's egress policy. Defaults: kind the IPv4 subnet of the Docker network the cluster
    really got (read after it is created), EKS the VPC."""


# --- charts -----------------------------------------------------------------------------------


class ChartsSettings(_Settings):
    """Where each Helm chart is fetched from: air-gapped clusters and sites behind a chart proxy."""

    mirror: ChartRepo | None = None
    """One Helm repository that serves every chart the stack installs, at the pinned versions."""
    repos: dict[ChartName, ChartRepo] = Field(default_factory=dict)
    """Per chart (``tigera-operator``, ``istiod``, ...): its repository; wins over ``mirror``."""

    def repo(self, chart: str) -> str:
        """The repository ``chart`` is installed from: its own entry, else the mirror, else upstream."""
        return self.repos.get(chart) or self.mirror or UPSTREAM_CHART_REPOS[chart]  # type: ignore[call-overload]


# --- the whole stack --------------------------------------------------------------------------


class Settings(_Settings):
    stack: DnsLabel
    cluster: ClusterSettings = ClusterSettings()
    calico: CalicoSettings = CalicoSettings()
    istio: IstioSettings = IstioSettings()
    cert_manager: CertManagerSettings = CertManagerSettings()
    apps: AppsSettings = AppsSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    charts: ChartsSettings = ChartsSettings()

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.istio.ca == "cert-manager" and not self.cert_manager.enabled:
            raise ValueError("istio.ca 'cert-manager' needs certManager.enabled true")
        if self.observability.enabled and not self.node_cidrs and self.cluster.provider != "kind":
            raise ValueError("observability.nodeCidrs is required for this cluster (the nodes' addresses, for egress policy)")
        if self.apps.namespace in ("kube-system", "istio-system", self.istio.gateway_namespace, "calico-system"):
            raise ValueError(f"apps.namespace {self.apps.namespace!r} is a platform namespace; pick another")
        if self.cert_manager.enabled and self.cert_manager.gateway_issuer == ACME_ISSUER:
            for i, host in enumerate(self.apps.hosts):
                if "." not in host:
                    # istiod resolves a one-word VirtualService host to <host>.<namespace>.svc.cluster.local
                    # (ResolveShortnameToFQDN), the solver Ingress's route included.
                    raise ValueError(
                        f"apps.hosts[{i}] {host!r} is one word, which gatewayIssuer {ACME_ISSUER} cannot serve: the "
                        "ACME CA validates only public DNS names, and istiod reads the HTTP-01 solver's one-word "
                        f"host as {host}.<namespace>.svc.cluster.local, so the challenge never reaches the solver; "
                        "use a full DNS name such as app.example.com"
                    )
        return self

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
    def cluster_name(self) -> str:
        return self.cluster.name or f"mesh-{self.stack}"[:63]


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad mapping key: the key itself is named already
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` (minus its last part) accepts, for 'unknown key' messages."""
    model: Any = Settings
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        ann = field.annotation
        for candidate in (*getattr(ann, "__args__", ()), ann):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
        else:
            return []
    return sorted(f.alias or n for n, f in model.model_fields.items() if n != "stack")


def _error_lines(err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        key = f"{PROJECT}:{_loc(e['loc'])}" if e["loc"] else f"{PROJECT} config"
        if e["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key; allowed here: {', '.join(_allowed_keys(e['loc']))}")
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if e["loc"][-1:] == ("kubernetesVersion",) and isinstance(e.get("input"), int | float):
            # YAML reads 1.30 as the number 1.3: only a quoted version survives.
            msg += f'; write it quoted, such as kubernetesVersion: "{KUBERNETES_VERSION}" (unquoted, 1.30 would be 1.3)'
        given = e.get("input")
        # A cross-field rule fails on a whole object: its message names the values at fault, and
        # echoing the object (for a root rule, the whole stack config) would bury that line.
        got = "" if isinstance(given, Mapping) else f" (got {json.dumps(given, default=str)})"
        lines.append(f"{key}: {msg}{got}")
    return lines


def compatibility(s: Settings) -> list[str]:
    """Every combination of versions outside the matrix (mesh_platform/versions.py), one line each naming the keys."""
    k8s = s.cluster.kubernetes_version
    lines: list[str] = []
    used = [("istio", "istio.version", s.istio.version), ("calico", "calico.version", s.calico.version)]
    if s.cert_manager.enabled:
        used.append(("certManager", "certManager.version", s.cert_manager.version))
    for component, key, version in used:
        lines_of = sorted(line for c, line in KUBERNETES_SUPPORT if c == component)
        row = KUBERNETES_SUPPORT.get((component, minor(version)))
        if row is None:
            lines.append(f"{PROJECT}:{key}: {version} is not in the compatibility matrix; supported lines: {', '.join(lines_of)}")
        elif not within(k8s, row[0], row[1]):
            lines.append(
                f"{PROJECT}:cluster.kubernetesVersion: {k8s} is outside the Kubernetes range of {key} {version} "
                f"({row[0]}-{row[1]}, {row[2]})"
            )
    istio = minor(s.istio.version)
    if s.istio.ca == "cert-manager" and istio in ISTIO_CSR_FOR_ISTIO:
        want = ISTIO_CSR_FOR_ISTIO[istio]
        if minor(s.cert_manager.istio_csr_version) != want:
            lines.append(
                f"{PROJECT}:certManager.istioCsrVersion: {s.cert_manager.istio_csr_version} is not built for "
                f"istio.version {s.istio.version}; use v{want}.x"
            )
    if s.observability.enabled and istio in KIALI_FOR_ISTIO:
        low, high = KIALI_FOR_ISTIO[istio]
        if not within(minor(s.observability.kiali_version), low, high):
            lines.append(
                f"{PROJECT}:observability.kialiVersion: {s.observability.kiali_version} is outside the Kiali range "
                f"istio.version {s.istio.version} ships ({low}-{high})"
            )
    if s.cluster.provider == "kind":
        images = KIND_NODE_IMAGES[KIND_VERSION]
        if s.cluster.kind.node_image not in images.values():
            lines.append(
                f"{PROJECT}:cluster.kind.nodeImage: {s.cluster.kind.node_image} is not a node image of kind "
                f"{KIND_VERSION}; use one of: {', '.join(images.values())}"
            )
    if s.cluster.provider == "eks" and k8s not in EKS_VERSIONS:
        lines.append(f"{PROJECT}:cluster.kubernetesVersion: EKS offers no Kubernetes {k8s}; supported: {', '.join(EKS_VERSIONS)}")
    return lines


def namespace_errors(keys: Iterable[str]) -> list[str]:
    """One line for each stack config key outside the project's and the providers' namespaces.

    ``mesh-platfrom:cluster`` or an unprefixed ``cluster`` would otherwise be ignored and every
    default deployed; each line names the key it most probably meant.
    """
    meant = [f"{PROJECT}:{k}" for k in KNOWN_KEYS]
    lines = []
    for key in keys:
        namespace, sep, name = key.partition(":")
        if sep and namespace in (PROJECT, *PROVIDER_NAMESPACES):
            continue
        guesses = difflib.get_close_matches(f"{PROJECT}:{key}" if not sep else key, meant, n=1, cutoff=0.6)
        if not guesses and sep:
            # A misspelt provider (kubernets:context) keeps its key name.
            guesses = [f"{ns}:{name}" for ns in difflib.get_close_matches(namespace, PROVIDER_NAMESPACES, n=1, cutoff=0.6)]
        hint = f"did you mean {guesses[0]}?" if guesses else f"project keys are {PROJECT}:<{'|'.join(KNOWN_KEYS)}>"
        what = "has no namespace" if not sep else f"namespace {namespace!r} is neither this project's nor a provider's"
        lines.append(f"{key}: {what} ({PROJECT}, {', '.join(PROVIDER_NAMESPACES)}); {hint}")
    return lines


def parse(raw: Mapping[str, Any], stack: str) -> Settings:
    """Validate already-decoded config (``{"cluster": {...}, ...}``); raises ``pulumi.RunError``.

    Every problem is reported at once, one line each, so a user fixes a stack file in one pass.
    """
    lines = [f"{PROJECT}:{key}: unknown key; allowed: {', '.join(KNOWN_KEYS)}" for key in sorted(set(raw) - set(KNOWN_KEYS))]
    known = {k: v for k, v in raw.items() if k in KNOWN_KEYS and v is not None}
    try:
        settings = Settings.model_validate_json(json.dumps({"stack": stack, **known}))
    except ValidationError as err:
        lines += _error_lines(err)
    else:
        lines += [f"{PROJECT}:apps.{key}: {msg}" for key, msg in settings.apps.errors()]
        lines += compatibility(settings)
    if lines:
        raise pulumi.RunError("\n  ".join(["invalid stack configuration:", *lines]))
    return settings


def load() -> Settings:
    """Read this stack's ``mesh-platform:*`` config from the Pulumi runtime and validate it."""
    config = {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    bad = namespace_errors(config)
    if bad:
        raise pulumi.RunError("\n  ".join(["invalid stack configuration:", *bad]))
    raw: dict[str, Any] = {}
    for full_key, value in config.items():
        project, _, key = full_key.partition(":")
        if project != PROJECT:
            continue
        try:
            raw[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raise pulumi.RunError(f"invalid stack configuration:\n  {full_key}: must be an object (got {value!r})") from None
    return parse(raw, pulumi.get_stack())
