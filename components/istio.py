"""Istio from its official charts: base (CRDs) → cni (optional) → istiod → ingress gateway.

Every piece waits for ``IstioArgs.after`` (Calico's readiness gate): istiod and the gateway are
pods that need a working pod network, and the CNI plugin chains onto Calico's CNI config.
The Helm releases are awaited (``skip_await`` stays false), so ``Istio.istiod`` is created only
once istiod's Deployment is available: that is the gate for Istio config objects (the validating
webhook needs istiod's endpoints, istio#38930) and for injected workloads (injection happens at
pod creation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from mesh_platform.kube import GATEWAY_RELEASE, ISTIO_NAMESPACE, TOKEN, helm_release, strict_mtls
from mesh_platform.settings import ChartsSettings

GATEWAY_SELECTOR = {"istio": "ingress"}
#: The chart names the gateway's ServiceAccount after the release: its mesh identity.
GATEWAY_SERVICE_ACCOUNT = GATEWAY_RELEASE
ISTIOD_SELECTOR = {"app": "istiod"}


@dataclass(frozen=True)
class ExternalCa:
    """cert-manager's istio-csr signs workload certificates in place of istiod's own CA."""

    issuer: str
    """ClusterIssuer that signs mesh certificates."""
    chart_version: str
    namespace: str
    """cert-manager's namespace: istio-csr runs there and mounts the root CA secret from it."""
    root_ca_secret: str

    @property
    def address(self) -> str:
        return f"cert-manager-istio-csr.{self.namespace}.svc:443"


#: Pod label and container port of istio-csr's gRPC CA server (chart templates/deployment.yaml:
#: ``app: <chart name>``, containerPort ``app.server.serving.port`` = 6443 behind Service port 443).
ISTIO_CSR_LABELS = {"app": "cert-manager-istio-csr"}
ISTIO_CSR_PORT = 6443
#: Secret istiod reads its serving certificate from when istio-csr is the CA (the istiod chart
#: mounts it, optional, at /var/run/secrets/istiod/tls as volume ``istio-csr-dns-cert``).
ISTIOD_TLS_SECRET = "istiod-tls"
#: The mesh's trust domain (istio-csr's app.tls.trustDomain; istiod's meshConfig default).
TRUST_DOMAIN = "cluster.local"
#: istiod's ServiceAccount as the istiod chart names it with no revision
#: (istio-discovery templates/serviceaccount.yaml @1.31.0-rc.0:L13): its SPIFFE identity.
ISTIOD_SERVICE_ACCOUNT = "istiod"


def istiod_certificate(ca: ExternalCa) -> dict:
    """istiod's serving certificate, as istio-csr's chart would make it (templates/certificate.yaml).

    The stack owns it instead of the chart so that istiod can wait for it to be Ready: the Helm
    release of istio-csr is done when its Deployment is, not when this certificate is issued, and
    the istiod volume is optional, so istiod would start without it.
    """
    return {
        "metadata": {"name": "istiod", "namespace": ISTIO_NAMESPACE, "annotations": {"pulumi.com/waitFor": "condition=Ready"}},
        "spec": {
            "commonName": f"istiod.{ISTIO_NAMESPACE}.svc",
            "dnsNames": [f"istiod.{ISTIO_NAMESPACE}.svc"],
            # istiod's real identity. istio-csr's own template names `istiod-service-account`
            # (templates/certificate.yaml@v0.17.0:L49, pkg/istiodcert/worker.go:L200), an account the
            # istiod chart does not create.
            "uris": [f"spiffe://{TRUST_DOMAIN}/ns/{ISTIO_NAMESPACE}/sa/{ISTIOD_SERVICE_ACCOUNT}"],
            "secretName": ISTIOD_TLS_SECRET,
            "duration": "1h",
            "renewBefore": "30m",
            "privateKey": {"rotationPolicy": "Always", "algorithm": "RSA", "size": 2048},
            "revisionHistoryLimit": 1,
            "issuerRef": {"name": ca.issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        },
    }


def istio_csr_values(ca: ExternalCa) -> dict:
    mount = "/var/run/secrets/mesh-platform-ca"
    return {
        "app": {
            "certmanager": {
                "namespace": ISTIO_NAMESPACE,
                "issuer": {"name": ca.issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
            },
            # Pin the root that workloads trust to the stack's CA, not to whatever signed istio-csr.
            # istiod's own certificate comes from the stack (istiod_certificate), awaited.
            "tls": {"rootCAFile": f"{mount}/ca.crt", "trustDomain": TRUST_DOMAIN, "istiodCertificateEnable": False},
            "istio": {"namespace": ISTIO_NAMESPACE},
        },
        # Only the root certificate: the CA Secret also holds the CA's private key (tls.key), which
        # istio-csr never reads (it signs through cert-manager). The chart passes `volumes` through
        # whole (templates/deployment.yaml@v0.17.0:L158-160, toYaml), so `items` selects ca.crt alone;
        # cert-manager's selfsigned issuer fills ca.crt with the root itself
        # (pkg/controller/certificaterequests/selfsigned/selfsigned.go@v1.21.1:L218-221).
        "volumes": [
            {"name": "root-ca", "secret": {"secretName": ca.root_ca_secret, "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
        ],
        "volumeMounts": [{"name": "root-ca", "mountPath": mount, "readOnly": True}],
    }


@dataclass(frozen=True)
class IstioArgs:
    version: str
    cni: bool
    gateway_namespace: str
    gateway_service_type: Literal["NodePort", "LoadBalancer"]
    http_node_port: int | None = None
    https_node_port: int | None = None
    istiod_replicas: int = 1
    gateway_replicas: int = 1
    external_ca: ExternalCa | None = None
    tracing: tuple[str, str] | None = None
    """(provider name, ``host:port``) of an OTLP/gRPC collector, registered as an extension provider."""
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Resources that must be ready before any Istio piece starts."""
    charts: ChartsSettings = field(default_factory=ChartsSettings)
    """Where the charts come from (``charts`` in the stack: a mirror, or one repository per chart)."""


def _gateway_service(args: IstioArgs) -> dict:
    ports = [
        {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
        {"name": "http2", "port": 80, "targetPort": 80, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 443, "protocol": "TCP"},
    ]
    if args.gateway_service_type == "NodePort":
        # Fixed NodePorts: kind maps exactly these container ports to localhost.
        ports[1]["nodePort"] = args.http_node_port
        ports[2]["nodePort"] = args.https_node_port
        return {"type": "NodePort", "ports": ports}
    return {
        "type": "LoadBalancer",
        "ports": ports,
        # An NLB from EKS's built-in service controller (no extra controller to install).
        "annotations": {
            "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
            "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
        },
    }


def spread(selector: dict[str, str]) -> list[dict]:
    """Replicas across zones, then across nodes, both soft (``ScheduleAnyway``).

    Hard (``DoNotSchedule``) per node would leave a replica Pending where there are fewer
    schedulable nodes than replicas (kind's one worker), and, draining one of two nodes, the evicted
    replica Pending until the node is back (the cordoned node stays a domain with no pod, so the
    other would exceed maxSkew 1). ``pod-template-hash`` keeps a rollout's new pods from being
    counted against the old ones. Nodes without a zone label (kind) only lose that score.
    """

    def constraint(key: str) -> dict:
        return {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(selector)},
            "matchLabelKeys": ["pod-template-hash"],
        }

    return [constraint("topology.kubernetes.io/zone"), constraint("kubernetes.io/hostname")]


#: The label the istiod chart selects its pods by (templates/deployment.yaml @1.31.0-rc.0:L35-42, no revision).
ISTIOD_POD_SELECTOR = {"istio": "pilot"}


def istiod_values(args: IstioArgs) -> dict:
    pilot: dict = {
        "replicaCount": args.istiod_replicas,
        "autoscaleEnabled": False,
        # With istio-cni, istiod must stop injecting the privileged istio-init container.
        "cni": {"enabled": args.cni},
    }
    mesh: dict = {
        "accessLogFile": "/dev/stdout",
        "defaultConfig": {"holdApplicationUntilProxyStarts": True},
        # Kubernetes Ingress objects of class "istio" (cert-manager's ACME HTTP-01 solvers) are
        # served by our gateway, whose pods carry istio=ingress rather than the default selector.
        "ingressClass": "istio",
        "ingressControllerMode": "STRICT",
        "ingressService": GATEWAY_RELEASE,
        "ingressSelector": GATEWAY_SELECTOR["istio"],
    }
    # istiod looks ingressService up in K8S_INGRESS_NS (default istio-system); the gateway's
    # Service lives in its own namespace, so Ingress status would never be filled otherwise.
    # PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS keeps its 1.31 default (true, pilot/pkg/features/experimental.go
    # @1.31.0-rc.0): not-ready endpoints are sent marked unhealthy, with Envoy's panic threshold off
    # for them, since the stack sets no outlierDetection.minHealthPercent; sidecars still route only to
    # ready pods (istio.io 1.31 upgrade notes).
    # No Gateway API automated deployment (the stack's gateway is the gateway chart's): with
    # PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER "false" the chart leaves out the ClusterRole
    # istiod-gateway-controller (create/delete Deployments, Services, ServiceAccounts, HPAs, PDBs
    # cluster-wide) and its binding (istio-discovery templates/clusterrole.yaml @1.31.0-rc.0:L188,
    # clusterrolebinding.yaml:L23, `toString` of the value compared with "false"), and istiod stops
    # the controller (pilot/pkg/features/experimental.go:L163, default true).
    env: dict = {"K8S_INGRESS_NS": args.gateway_namespace, "PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER": "false"}
    pilot["env"] = env
    values: dict = {"pilot": pilot, "meshConfig": mesh, "global": {}}
    if args.tracing:
        provider, address = args.tracing
        host, port = address.rsplit(":", 1)
        mesh["extensionProviders"] = [{"name": provider, "opentelemetry": {"service": host, "port": int(port)}}]
    if args.external_ca:
        env["ENABLE_CA_SERVER"] = "false"
        values["global"]["caAddress"] = args.external_ca.address
    if args.istiod_replicas > 1:
        # The chart's PDB keeps pdb.minAvailable 1 of them (values.yaml @1.31.0-rc.0:L586), so one may go.
        values["global"]["defaultPodDisruptionBudget"] = {"enabled": True}
        # pilot.topologySpreadConstraints: values.yaml @1.31.0-rc.0:L77, templates/deployment.yaml:L84-87 (toYaml).
        pilot["topologySpreadConstraints"] = spread(ISTIOD_POD_SELECTOR)
    return values


class Istio(pulumi.ComponentResource):
    istiod: k8s.helm.v3.Release
    """Created once istiod is available: the gate for Istio config and injected workloads."""
    gateway: k8s.helm.v3.Release
    gateway_ns: k8s.core.v1.Namespace
    """The gateway's namespace: where its TLS secrets must live."""

    def __init__(self, name: str, args: IstioArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:Istio", name, None, opts)
        after = list(args.after)

        def release(
            chart: str,
            release_name: str,
            namespace: str,
            values: dict,
            deps: list,
            version: str = args.version,
        ) -> k8s.helm.v3.Release:
            return helm_release(
                f"{name}-{chart}",
                release=release_name,
                chart=chart,
                version=version,
                repo=args.charts.repo(chart),
                namespace=namespace,
                values=values,
                opts=pulumi.ResourceOptions(parent=self, depends_on=after + deps),
            )

        system_ns = k8s.core.v1.Namespace(
            f"{name}-system-ns",
            metadata={
                "name": ISTIO_NAMESPACE,
                # istio-cni's DaemonSet needs host access; istiod alone passes 'baseline'.
                "labels": {"pod-security.kubernetes.io/enforce": "privileged" if args.cni else "baseline"},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        base = release(
            "base",
            "istio-base",
            ISTIO_NAMESPACE,
            # The chart flips the webhook's failurePolicy after install; pin it to avoid drift (istio#44285).
            {"defaultRevision": "default", "base": {"validationFailurePolicy": "Fail"}},
            [system_ns],
        )
        istiod_deps: list = [base]
        if args.external_ca:
            # istio-csr must answer before istiod starts: istiod takes its serving certificate from
            # it, and sidecars ask it for theirs. Its CertificateRequests live in istio-system.
            istio_csr = release(
                "cert-manager-istio-csr",
                "cert-manager-istio-csr",
                args.external_ca.namespace,
                istio_csr_values(args.external_ca),
                [system_ns],
                version=args.external_ca.chart_version,
            )
            cert = istiod_certificate(args.external_ca)
            istiod_cert = k8s.apiextensions.CustomResource(
                f"{name}-istiod-cert",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata=cert["metadata"],
                spec=cert["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*after, system_ns]),
            )
            istiod_deps += [istio_csr, istiod_cert]
        if args.cni:
            cni = release("cni", "istio-cni", ISTIO_NAMESPACE, {}, [base])
            istiod_deps.append(cni)
        self.istiod = release("istiod", "istiod", ISTIO_NAMESPACE, istiod_values(args), istiod_deps)
        self.gateway_ns = gateway_ns = k8s.core.v1.Namespace(
            f"{name}-gateway-ns",
            metadata={
                "name": args.gateway_namespace,
                # The gateway binds 80/443 through the safe sysctl ip_unprivileged_port_start,
                # which 'baseline' admits; 'restricted' is reported, not enforced.
                "labels": {
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        gateway_values: dict = {
            "service": _gateway_service(args),
            "replicaCount": args.gateway_replicas,
            "autoscaling": {"enabled": False},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        }
        if args.gateway_replicas > 1:
            gateway_values["podDisruptionBudget"] = {"minAvailable": 1}
            # topologySpreadConstraints: gateway values.yaml @1.31.0-rc.0:L129, templates/deployment.yaml:L134-137.
            gateway_values["topologySpreadConstraints"] = spread(GATEWAY_SELECTOR)
        # Gateway pods use `image: auto` and are filled in by the injector: istiod must be up.
        self.gateway = release("gateway", GATEWAY_RELEASE, args.gateway_namespace, gateway_values, [self.istiod, gateway_ns])
        # Mesh-wide STRICT mTLS: plaintext between workloads is refused everywhere.
        strict_mtls(f"{name}-mtls-strict", ISTIO_NAMESPACE, pulumi.ResourceOptions(parent=self, depends_on=[self.istiod]))
        self.register_outputs({"istiod": self.istiod.status, "gateway": self.gateway.status})
