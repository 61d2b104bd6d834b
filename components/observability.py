"""Watching both layers: mesh telemetry (Prometheus, Kiali, Jaeger via Istio's Telemetry API) next to
Calico's own flow visibility (Goldmane and Whisker, switched on in the Calico component).

Everything lives in its own namespace, installed after istiod (the Telemetry object needs Istio's
webhook, Kiali needs istiod), and nothing of the sample workloads waits for it. That namespace gets
its own default deny and exactly the allows its pieces need:

    Prometheus → sidecars 15020 (workload namespace, gateway), istiod 15014,
                 Felix 9091 and Typha 9093 and the API server (the nodes' addresses)
    Kiali      → Prometheus 9090, istiod 15014, Jaeger 16686, the API server
    sidecars   → Jaeger 4317 (OTLP spans)

Nothing enters from outside: the UIs are reached with ``kubectl port-forward``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import pulumi
import pulumi_kubernetes as k8s

from components.calico import FELIX_METRICS_PORT, TYPHA_METRICS_PORT
from components.istio import ISTIOD_SELECTOR
from mesh_platform.kube import ISTIO_NAMESPACE, TOKEN, helm_release
from mesh_platform.policy import (
    default_deny,
    dns_egress,
    egress_to,
    ingress_from,
    ip_blocks,
    namespace_peer,
    peer,
    pod_peer,
    policy,
    tcp,
)
from mesh_platform.settings import ChartsSettings
from mesh_platform.versions import JAEGER_IMAGE

PROMETHEUS_LABELS = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"}
KIALI_LABELS = {"app.kubernetes.io/name": "kiali"}
JAEGER_LABELS = {"app": "jaeger"}
#: Sidecar port Prometheus scrapes: the agent's merged metrics (Envoy's ``istio_*`` series included).
SIDECAR_METRICS_PORTS = (15020,)
OTLP_GRPC_PORT = 4317
JAEGER_UI_PORT = 16686
PROMETHEUS_PORT = 9090
ISTIOD_MONITORING_PORT = 15014
API_PORTS = (443, 6443)
#: Name of the extension provider istiod registers for spans (components/istio.py).
TRACING_PROVIDER = "otel-tracing"


def tracing_address(namespace: str) -> str:
    """``host:port`` the mesh sends spans to (an Istio OpenTelemetry extension provider)."""
    return f"jaeger.{namespace}.svc.cluster.local:{OTLP_GRPC_PORT}"


@dataclass(frozen=True)
class ObservabilityArgs:
    namespace: str
    prometheus_version: str
    kiali_version: str
    tracing_sampling: float
    workload_namespaces: tuple[str, ...]
    gateway_namespace: str
    node_cidrs: pulumi.Input[Sequence[str]]
    """The nodes' networks (API server, Felix, Typha); an Output when the cluster reads them."""
    calico_flows: bool = False
    """Calico's Whisker is on: offer its port-forward too."""
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)
    charts: ChartsSettings = field(default_factory=ChartsSettings)
    """Where the charts come from (``charts`` in the stack: a mirror, or one repository per chart)."""


def _node_peers(cidrs: Sequence[str]) -> list[dict]:
    if not cidrs:  # a rule without peers would admit every destination
        raise ValueError("observability needs at least one node CIDR")
    return ip_blocks(cidrs)


def network_policies(args: ObservabilityArgs) -> list[dict]:
    ns = args.namespace
    nodes = (
        pulumi.Output.from_input(args.node_cidrs).apply(_node_peers)
        if isinstance(args.node_cidrs, pulumi.Output)
        else _node_peers(cast("Sequence[str]", args.node_cidrs))
    )
    istiod = egress_to([peer(ISTIO_NAMESPACE, ISTIOD_SELECTOR)], tcp(ISTIOD_MONITORING_PORT))
    sidecars = [namespace_peer(n) for n in (*args.workload_namespaces, args.gateway_namespace)]
    return [
        default_deny(ns),
        policy(
            "prometheus",
            ns,
            pods=PROMETHEUS_LABELS,
            ingress=[ingress_from([pod_peer(KIALI_LABELS)], tcp(PROMETHEUS_PORT))],
            egress=[
                dns_egress(),
                istiod,
                egress_to(sidecars, tcp(*SIDECAR_METRICS_PORTS)),
                # Felix and Typha run on the host network; the API server too (service discovery).
                egress_to(nodes, tcp(FELIX_METRICS_PORT, TYPHA_METRICS_PORT, *API_PORTS)),
            ],
        ),
        policy(
            "kiali",
            ns,
            pods=KIALI_LABELS,
            ingress=(),  # nothing in: the UI is reached with kubectl port-forward
            egress=[
                dns_egress(),
                istiod,
                egress_to([pod_peer(PROMETHEUS_LABELS)], tcp(PROMETHEUS_PORT)),
                egress_to([pod_peer(JAEGER_LABELS)], tcp(JAEGER_UI_PORT)),
                egress_to(nodes, tcp(*API_PORTS)),
            ],
        ),
        policy(
            "jaeger",
            ns,
            pods=JAEGER_LABELS,
            ingress=[
                ingress_from(sidecars, tcp(OTLP_GRPC_PORT)),
                ingress_from([pod_peer(KIALI_LABELS)], tcp(JAEGER_UI_PORT)),
            ],
        ),
    ]


def pod_scrape_namespaces(args: ObservabilityArgs) -> tuple[str, ...]:
    """Where the annotation-driven job looks: the namespaces whose every pod the egress policy admits on 15020."""
    return (*args.workload_namespaces, args.gateway_namespace)


def scrape_configs(args: ObservabilityArgs) -> list[dict]:
    """Every job Prometheus runs. Each one's targets are admitted by the ``prometheus`` egress policy.

    Istio metrics come one way only: the injector rewrites each sidecar-injected pod's
    ``prometheus.io/*`` annotations to the agent's merged endpoint on 15020, which already carries
    Envoy's ``istio_*`` series (applyPrometheusMerge, istio/istio pilot/pkg/kube/inject/inject.go).
    A second job on Envoy's 15090 would collect every series twice and double Kiali's rates.
    """

    def pods_job(name: str, namespace: str, label: str, value: str, port: int) -> dict:
        return {
            "job_name": name,
            "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [namespace]}}],
            "relabel_configs": [
                {"source_labels": [f"__meta_kubernetes_pod_label_{label}"], "regex": value, "action": "keep"},
                {
                    "source_labels": ["__meta_kubernetes_pod_ip"],
                    "regex": "(.+)",
                    "target_label": "__address__",
                    "replacement": f"$1:{port}",
                },
            ],
        }

    # The chart's own kubernetes-pods job (charts/prometheus/values.yaml@prometheus-29.25.0:L982-L1033,
    # relabelings unchanged), limited to the namespaces the policy admits (elsewhere, e.g. cert-manager's
    # or Kiali's annotated pods, it would only collect down targets).
    annotated_pods = {
        "job_name": "kubernetes-pods",
        "honor_labels": True,
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": list(pod_scrape_namespaces(args))}}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "action": "keep", "regex": "true"},
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape_slow"], "action": "drop", "regex": "true"},
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scheme"],
                "action": "replace",
                "regex": "(https?)",
                "target_label": "__scheme__",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
                "action": "replace",
                "target_label": "__metrics_path__",
                "regex": "(.+)",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_port", "__meta_kubernetes_pod_ip"],
                "action": "replace",
                "regex": r"(\d+);(([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4})",
                "replacement": "[$2]:$1",
                "target_label": "__address__",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_port", "__meta_kubernetes_pod_ip"],
                "action": "replace",
                "regex": r"(\d+);((([0-9]+?)(\.|$)){4})",
                "replacement": "$2:$1",
                "target_label": "__address__",
            },
            {
                "action": "labelmap",
                "regex": "__meta_kubernetes_pod_annotation_prometheus_io_param_(.+)",
                "replacement": "__param_$1",
            },
            {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
            {"source_labels": ["__meta_kubernetes_namespace"], "action": "replace", "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "action": "replace", "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Pending|Succeeded|Failed|Completed", "action": "drop"},
            {"source_labels": ["__meta_kubernetes_pod_node_name"], "action": "replace", "target_label": "node"},
        ],
    }
    return [
        {"job_name": "prometheus", "static_configs": [{"targets": [f"localhost:{PROMETHEUS_PORT}"]}]},
        annotated_pods,
        # istiod alone of istio-system (istio-cni's annotated pods there are not admitted).
        pods_job("istiod", ISTIO_NAMESPACE, "app", "istiod", ISTIOD_MONITORING_PORT),
        pods_job("calico-felix", "calico-system", "k8s_app", "calico-node", FELIX_METRICS_PORT),
        pods_job("calico-typha", "calico-system", "k8s_app", "calico-typha", TYPHA_METRICS_PORT),
    ]


#: The ServiceAccount the prometheus chart runs the server as: ``<release>-server`` for release
#: ``prometheus`` (templates/_helpers.tpl@prometheus-29.25.0:L110-L121, L140-L146).
PROMETHEUS_SERVICE_ACCOUNT = "prometheus-server"
#: The stack's own ClusterRole for Prometheus, in place of the chart's (``rbac.create: false``).
PROMETHEUS_CLUSTER_ROLE = "mesh-platform-prometheus"
#: What each Kubernetes service-discovery role of Prometheus lists and watches (core API group):
#: role ``pod`` watches Pods alone in each of its namespaces (prometheus/prometheus
#: discovery/kubernetes/kubernetes.go, ``case RolePod``; without ``attach_metadata``, which no job sets).
SD_ROLE_RESOURCES = {"pod": ("pods",)}


def prometheus_rbac_rules(args: ObservabilityArgs) -> list[dict]:
    """Exactly what the scrape jobs' service discovery reads: the stack's jobs use role ``pod`` only."""
    roles = {sd["role"] for job in scrape_configs(args) for sd in job.get("kubernetes_sd_configs", [])}
    unknown = sorted(roles - SD_ROLE_RESOURCES.keys())
    if unknown:
        raise ValueError(f"scrape jobs use service-discovery roles {unknown}: give SD_ROLE_RESOURCES what they read")
    resources = sorted({r for role in roles for r in SD_ROLE_RESOURCES[role]})
    return [{"apiGroups": [""], "resources": resources, "verbs": ["get", "list", "watch"]}]


def prometheus_rbac(args: ObservabilityArgs) -> tuple[dict, dict]:
    """The ClusterRole and ClusterRoleBinding Prometheus runs with, instead of the chart's.

    The chart's ClusterRole (templates/clusterrole.yaml@prometheus-29.25.0:L9-L43) reads nodes,
    nodes/metrics, services, endpoints, ingresses, configmaps and endpointslices cluster-wide and
    GETs /metrics; its jobs need those, the stack's (``scrape_configs``) only Pods. Cluster-wide,
    not per namespace (``server.namespaces``): the workload namespaces need not exist yet when
    Prometheus is installed.
    """
    role = {"metadata": {"name": PROMETHEUS_CLUSTER_ROLE}, "rules": prometheus_rbac_rules(args)}
    binding = {
        "metadata": {"name": PROMETHEUS_CLUSTER_ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": PROMETHEUS_CLUSTER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": PROMETHEUS_SERVICE_ACCOUNT, "namespace": args.namespace}],
    }
    return role, binding


def prometheus_values(args: ObservabilityArgs) -> dict:
    return {
        # No chart RBAC: with rbac.create false the chart renders no ClusterRole, ClusterRoleBinding
        # or RoleBinding (templates/clusterrole.yaml@prometheus-29.25.0:L1, clusterrolebinding.yaml:L1,
        # _helpers.tpl:L160); prometheus_rbac grants what the jobs read. The ServiceAccount stays
        # (serviceaccount.yaml:L1, serviceAccounts.server.create).
        "rbac": {"create": False},
        # Only the server: the mesh's and Calico's own endpoints are what we watch.
        "alertmanager": {"enabled": False},
        "prometheus-pushgateway": {"enabled": False},
        "kube-state-metrics": {"enabled": False},
        "prometheus-node-exporter": {"enabled": False},
        "server": {
            "persistentVolume": {"enabled": False},
            "retention": "2d",
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        },
        # The complete set of jobs: ``PROMETHEUS_VALUES_FILES`` unsets the chart's own (``scrapeConfigs``),
        # and templates/cm.yaml@prometheus-29.25.0:L66-L68 renders this list under ``scrape_configs``
        # (``extraScrapeConfigs`` stays empty, values.yaml:L1089).
        "serverFiles": {"prometheus.yml": {"scrape_configs": scrape_configs(args)}},
    }


#: Values files for the prometheus chart, read before ``prometheus_values``. Since chart 28.0 the
#: chart's default jobs are the ``scrapeConfigs`` map (charts/prometheus/values.yaml@prometheus-29.25.0:
#: L812-L1084), rendered next to any list of our own (templates/cm.yaml:L54-L73): jobs the observability
#: policies block (kubernetes-service-endpoints, -nodes, -nodes-cadvisor, the pushgateway and blackbox
#: probes, kubernetes-pods in every namespace) and a second ``prometheus`` job, which Prometheus refuses.
#: ``scrapeConfigs: null`` unsets them (README.md:L80-L96, "To 28.0"), sent in a values file, the way
#: pulumi-kubernetes documents for a ``null`` (``helm_release``). offline/verify/scrapes.py checks the jobs.
PROMETHEUS_VALUES_FILES = ("scrapeConfigs: null\n",)


def kiali_values(args: ObservabilityArgs) -> dict:
    return {
        # Log in with a ServiceAccount token; read-only: Kiali shows, it does not change.
        "auth": {"strategy": "token"},
        # The chart's own NetworkPolicy (on by default) admits 20001 and the metrics port 9090
        # from anywhere; the namespace's default deny and the policies above are the only ones.
        "deployment": {"view_only_mode": True, "cluster_wide_access": True, "network_policy": {"enabled": False}},
        "external_services": {
            "prometheus": {"url": f"http://prometheus-server.{args.namespace}.svc.cluster.local:80"},
            "tracing": {
                "enabled": True,
                "provider": "jaeger",
                # internal_url since Kiali 2.0 (kiali/kiali #7759, d282bc72b); in_cluster_url is its
                # deprecated name, still read but logged as a deprecation (config/config.go@v2.27.0:L433,
                # L443, L1693-L1695).
                "internal_url": f"http://jaeger.{args.namespace}.svc.cluster.local:{JAEGER_UI_PORT}",
                "use_grpc": False,
            },
            "grafana": {"enabled": False},
        },
    }


def jaeger_manifests(args: ObservabilityArgs) -> tuple[dict, dict]:
    probe = {"httpGet": {"path": "/", "port": JAEGER_UI_PORT}, "periodSeconds": 10}
    deployment = {
        "metadata": {"name": "jaeger", "namespace": args.namespace, "labels": JAEGER_LABELS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": JAEGER_LABELS},
            "template": {
                "metadata": {"labels": JAEGER_LABELS},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "jaeger",
                            "image": JAEGER_IMAGE,
                            "ports": [
                                {"name": "otlp-grpc", "containerPort": OTLP_GRPC_PORT, "protocol": "TCP"},
                                {"name": "ui", "containerPort": JAEGER_UI_PORT, "protocol": "TCP"},
                            ],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "512Mi"},
                            },
                            "readinessProbe": probe,
                            "livenessProbe": probe,
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }
    service = {
        "metadata": {"name": "jaeger", "namespace": args.namespace, "labels": JAEGER_LABELS},
        "spec": {
            "selector": JAEGER_LABELS,
            "ports": [
                {"name": "grpc-otlp", "port": OTLP_GRPC_PORT, "targetPort": OTLP_GRPC_PORT, "protocol": "TCP"},
                {"name": "http-ui", "port": JAEGER_UI_PORT, "targetPort": JAEGER_UI_PORT, "protocol": "TCP"},
            ],
        },
    }
    return deployment, service


def port_forwards(args: ObservabilityArgs) -> dict[str, str]:
    """The exact commands that open each UI on localhost."""
    ns = args.namespace
    out = {
        "kiali": f"kubectl -n {ns} port-forward svc/kiali 20001:20001   # http://localhost:20001, token: kubectl -n {ns} create token kiali",
        "prometheus": f"kubectl -n {ns} port-forward svc/prometheus-server 9090:80   # http://localhost:9090",
        "jaeger": f"kubectl -n {ns} port-forward svc/jaeger {JAEGER_UI_PORT}:{JAEGER_UI_PORT}   # http://localhost:{JAEGER_UI_PORT}",
    }
    if args.calico_flows:
        out["whisker"] = "kubectl -n calico-system port-forward svc/whisker 8081:8081   # http://localhost:8081"
    return out


class Observability(pulumi.ComponentResource):
    port_forwards: dict[str, str]

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:Observability", name, None, opts)
        self.port_forwards = port_forwards(args)
        namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={
                "name": args.namespace,
                # The Prometheus and Kiali charts set no pod-level seccomp profile: 'baseline' holds.
                "labels": {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        # Policies first, so that no pod of the namespace runs before its default deny exists.
        policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-np-{m['metadata']['name']}", metadata=m["metadata"], spec=m["spec"], opts=in_ns
            )
            for m in network_policies(args)
        ]
        after_policies = pulumi.ResourceOptions(parent=self, depends_on=[namespace, *policies])
        role, binding = prometheus_rbac(args)
        cluster_role = k8s.rbac.v1.ClusterRole(
            f"{name}-prometheus-role", metadata=role["metadata"], rules=role["rules"], opts=in_ns
        )
        role_binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-prometheus-role-binding",
            metadata=binding["metadata"],
            role_ref=binding["roleRef"],
            subjects=binding["subjects"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, cluster_role]),
        )
        # Prometheus starts with its rights in place, so its first discovery is not refused.
        after_rbac = pulumi.ResourceOptions(parent=self, depends_on=[namespace, *policies, cluster_role, role_binding])
        for release, chart, version, values, files, release_opts in (
            ("prometheus", "prometheus", args.prometheus_version, prometheus_values(args), PROMETHEUS_VALUES_FILES, after_rbac),
            ("kiali", "kiali-server", args.kiali_version, kiali_values(args), (), after_policies),
        ):
            helm_release(
                f"{name}-{release}",
                release=release,
                chart=chart,
                version=version,
                repo=args.charts.repo(chart),
                namespace=args.namespace,
                values=values,
                values_files=files,
                opts=release_opts,
            )
        deployment, service = jaeger_manifests(args)
        k8s.apps.v1.Deployment(f"{name}-jaeger", metadata=deployment["metadata"], spec=deployment["spec"], opts=after_policies)
        k8s.core.v1.Service(f"{name}-jaeger-svc", metadata=service["metadata"], spec=service["spec"], opts=after_policies)
        # Mesh-wide sampling through the Telemetry API (root namespace = applies everywhere).
        k8s.apiextensions.CustomResource(
            f"{name}-tracing",
            api_version="telemetry.istio.io/v1",
            kind="Telemetry",
            metadata={"name": "mesh-default", "namespace": ISTIO_NAMESPACE},
            spec={"tracing": [{"providers": [{"name": TRACING_PROVIDER}], "randomSamplingPercentage": args.tracing_sampling}]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.register_outputs({"namespace": args.namespace, "portForwards": self.port_forwards})
