"""Sample services declared as data (``apps.services``), routed by Istio and hardened.

Per service: a ServiceAccount (its mesh identity), one Deployment per version labelled
``app``/``version``, a Service, a DestinationRule with one subset per version, and (when it has
routes) a mesh VirtualService under its full name and, when exposed, a second one bound to the
ingress Gateway. A workload that may call others gets a small caller container that exercises
exactly those calls. The ``client`` workload is an in-mesh curl to probe from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from mesh_platform.kube import TOKEN
from mesh_platform.settings import AppsSettings, Service
from mesh_platform.versions import CURL_IMAGE, ECHO_IMAGE

GATEWAY_NAME = "mesh-gateway"
#: Port 80 when it only redirects to HTTPS (certManager.httpsRedirect).
REDIRECT_GATEWAY_NAME = "mesh-gateway-http"
#: Never 1337: that UID is the sidecar's, and its traffic bypasses the redirect.
APP_UID = 65532


@dataclass(frozen=True)
class SampleAppsArgs:
    apps: AppsSettings
    gateway_labels: dict[str, str]
    tls_secret: pulumi.Input[str] | None = None
    """Secret (in the gateway's namespace) with the gateway certificate; adds an HTTPS server."""
    https_redirect: bool = False
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)


def fqdn(svc: Service, namespace: str) -> str:
    return f"{svc.name}.{namespace}.svc.cluster.local"


_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": APP_UID,
    "runAsGroup": APP_UID,
    # At pod level, so that the injected sidecar is covered too (Pod Security 'restricted').
    "seccompProfile": {"type": "RuntimeDefault"},
}
_SMALL = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}


def _echo_container(svc: Service, version: str) -> dict:
    probe = {"httpGet": {"path": "/", "port": svc.port}, "periodSeconds": 10}
    return {
        "name": "app",
        "image": ECHO_IMAGE,
        "args": [f"-listen=:{svc.port}", f"-text={svc.name} {version}"],
        "ports": [{"name": "http", "containerPort": svc.port, "protocol": "TCP"}],
        "securityContext": _CONTAINER_SECURITY,
        "resources": _SMALL,
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 3},
    }


def _caller_container(targets: Sequence[tuple[str, int]]) -> dict:
    """Calls each allowed target every 5 s; liveness proves the loop still runs."""
    urls = " ".join(f"http://{host}:{port}/" for host, port in targets)
    script = (
        "trap 'exit 0' TERM; while true; do "
        f'for u in {urls}; do curl -sS -o /dev/null --max-time 3 "$u" || true; done; '
        "touch /tmp/heartbeat; sleep 5 & wait $!; done"
    )
    alive = {"exec": {"command": ["sh", "-c", 'test -n "$(find /tmp/heartbeat -mmin -1)"']}, "periodSeconds": 20}
    return {
        "name": "caller",
        "image": CURL_IMAGE,
        "command": ["sh", "-c", script],
        "securityContext": _CONTAINER_SECURITY,
        "resources": _SMALL,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/heartbeat"]}, "periodSeconds": 5},
        "livenessProbe": {**alive, "initialDelaySeconds": 30},
    }


def _client_container() -> dict:
    # Idles until someone `kubectl exec`s a probe; curl --version proves the image is usable.
    check = {"exec": {"command": ["curl", "--version"]}, "periodSeconds": 30}
    return {
        "name": "client",
        "image": CURL_IMAGE,
        "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 3600 & wait $!; done"],
        "securityContext": _CONTAINER_SECURITY,
        "resources": _SMALL,
        "readinessProbe": check,
        "livenessProbe": check,
    }


def pod_labels(name: str, version: str, role: str | None) -> dict[str, str]:
    labels = {"app": name, "version": version}
    if role:
        labels["role"] = role
    return labels


def deployment(namespace: str, name: str, version: str, role: str | None, containers: list[dict], replicas: int) -> dict:
    labels = pod_labels(name, version, role)
    needs_tmp = any(v["name"] == "tmp" for c in containers for v in c.get("volumeMounts", []))
    return {
        "metadata": {"name": f"{name}-{version}", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name, "version": version}},
            "template": {
                "metadata": {"labels": {**labels, "sidecar.istio.io/inject": "true"}},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "securityContext": _POD_SECURITY,
                    "containers": containers,
                    **({"volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Mi"}}]} if needs_tmp else {}),
                },
            },
        },
    }


def http_routes(svc: Service, namespace: str) -> list[dict]:
    host = fqdn(svc, namespace)
    http = []
    for route in svc.routes:
        entry: dict = {
            "route": [
                {"destination": {"host": host, "subset": d.subset, "port": {"number": svc.port}}, "weight": d.weight}
                for d in route.destinations
            ]
        }
        if route.prefix:
            entry = {"match": [{"uri": {"prefix": route.prefix}}], **entry}
        if route.retries:
            entry["retries"] = {
                "attempts": route.retries.attempts,
                "perTryTimeout": route.retries.per_try_timeout,
                "retryOn": "connect-failure,refused-stream,unavailable,cancelled,5xx",
            }
        if route.timeout:
            entry["timeout"] = route.timeout
        http.append(entry)
    return http


def virtual_service(svc: Service, apps: AppsSettings) -> dict:
    """In-mesh routing: sidecars only, under the service's full name."""
    return {"hosts": [fqdn(svc, apps.namespace)], "gateways": ["mesh"], "http": http_routes(svc, apps.namespace)}


def gateway_virtual_service(svc: Service, apps: AppsSettings, gateway_ref: str) -> dict:
    """The same routes at the ingress gateway, for whatever hosts the Gateway's servers list.

    Host ``*``: istiod resolves a one-word VirtualService host such as ``localhost`` to
    ``localhost.<namespace>.svc.cluster.local`` (ResolveShortnameToFQDN, pilot/pkg/model/config.go) while
    Gateway server hosts stay literal, so the two would never intersect and the gateway would answer 404.
    ``*`` is left alone and intersects every server host (pkg/config/host names.go Intersection): the
    Gateway alone decides which hosts are served. Bound to the gateway only, so sidecars ignore it
    (and istiod's validation, which refuses ``*`` only on VirtualServices bound to ``mesh``, admits it)."""
    return {"hosts": ["*"], "gateways": [gateway_ref], "http": http_routes(svc, apps.namespace)}


def redirect_virtual_service(gateway_ref: str) -> dict:
    """Port 80 answers every request with a redirect to HTTPS, as a catch-all *route*.

    A server-level ``tls.httpsRedirect`` sets ``RequireTls: ALL`` on the whole virtual host, and the
    route cert-manager's HTTP-01 solver Ingress adds for the same host on port 80 merges into that
    virtual host (buildGatewayHTTPRouteConfig, pilot/pkg/networking/core/gateway.go), so the challenge
    would be redirected too. A catch-all route instead is moved behind every more specific route of
    the merged virtual host (SortVHostRoutes, pilot/pkg/networking/core/route/route.go): the solver's
    exact ``/.well-known/acme-challenge/<token>`` path wins at every renewal."""
    return {
        "hosts": ["*"],
        "gateways": [gateway_ref],
        "http": [{"name": "https-redirect", "redirect": {"scheme": "https", "redirectCode": 301}}],
    }


def gateway_specs(args: SampleAppsArgs) -> dict[str, dict]:
    """Gateway name → spec. With the HTTPS redirect, port 80 is a Gateway of its own, so that only the
    redirect binds to it and the app routes bind to the HTTPS server alone."""
    hosts = list(args.apps.hosts)
    http = {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": hosts}
    if args.tls_secret is None:
        return {GATEWAY_NAME: {"selector": args.gateway_labels, "servers": [http]}}
    https = {
        "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
        "hosts": hosts,
        "tls": {"mode": "SIMPLE", "credentialName": args.tls_secret},
    }
    if args.https_redirect:
        return {
            GATEWAY_NAME: {"selector": args.gateway_labels, "servers": [https]},
            REDIRECT_GATEWAY_NAME: {"selector": args.gateway_labels, "servers": [http]},
        }
    return {GATEWAY_NAME: {"selector": args.gateway_labels, "servers": [http, https]}}


def curl_commands(apps: AppsSettings, base_url: str) -> list[str]:
    """One curl per gateway route, with the version(s) that should answer."""
    host = apps.hosts[0]
    header = "" if host == "localhost" else f"-H 'Host: {host}' "
    out = []
    for svc in (x for x in apps.services if x.expose):
        for route in svc.routes:
            answer = ", ".join(f"{d.subset} {d.weight}%" for d in route.destinations)
            out.append(f"curl -s {header}{base_url}{route.prefix or '/'}   # {svc.name}: {answer}")
    return out


class SampleApps(pulumi.ComponentResource):
    def __init__(self, name: str, args: SampleAppsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:SampleApps", name, None, opts)
        apps, ns = args.apps, args.apps.namespace
        root = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        any_exposed = any(s.expose for s in apps.services)
        gateway_ref = f"{ns}/{GATEWAY_NAME}"
        if any_exposed:
            for gw_name, spec in gateway_specs(args).items():
                k8s.apiextensions.CustomResource(
                    f"{name}-{gw_name.removeprefix('mesh-')}",
                    api_version="networking.istio.io/v1",
                    kind="Gateway",
                    metadata={"name": gw_name, "namespace": ns},
                    spec=spec,
                    opts=root,
                )
            if args.tls_secret is not None and args.https_redirect:
                k8s.apiextensions.CustomResource(
                    f"{name}-https-redirect-vs",
                    api_version="networking.istio.io/v1",
                    kind="VirtualService",
                    metadata={"name": "https-redirect", "namespace": ns},
                    spec=redirect_virtual_service(f"{ns}/{REDIRECT_GATEWAY_NAME}"),
                    opts=root,
                )

        def containers_for(workload: str, main: dict) -> list[dict]:
            targets = [(fqdn(t, ns), t.port) for t in apps.callees_of(workload)]
            return [main, _caller_container(targets)] if targets else [main]

        for svc in apps.services:
            sa = k8s.core.v1.ServiceAccount(
                f"{name}-{svc.name}-sa",
                metadata={"name": svc.name, "namespace": ns, "labels": {"app": svc.name}},
                automount_service_account_token=False,
                opts=root,
            )
            for version in svc.versions:
                d = deployment(
                    ns, svc.name, version, svc.role, containers_for(svc.name, _echo_container(svc, version)), svc.replicas
                )
                k8s.apps.v1.Deployment(
                    f"{name}-{svc.name}-{version}",
                    metadata=d["metadata"],
                    spec=d["spec"],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, sa]),
                )
            k8s.core.v1.Service(
                f"{name}-{svc.name}-svc",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=svc.name, namespace=ns, labels={"app": svc.name}),
                spec=k8s.core.v1.ServiceSpecArgs(
                    selector={"app": svc.name},
                    ports=[
                        k8s.core.v1.ServicePortArgs(
                            name="http", port=svc.port, target_port=svc.port, protocol="TCP", app_protocol="http"
                        )
                    ],
                ),
                opts=root,
            )
            k8s.apiextensions.CustomResource(
                f"{name}-{svc.name}-dr",
                api_version="networking.istio.io/v1",
                kind="DestinationRule",
                metadata={"name": svc.name, "namespace": ns},
                spec={
                    "host": fqdn(svc, ns),
                    "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
                    "subsets": [{"name": v, "labels": {"version": v}} for v in svc.versions],
                },
                opts=root,
            )
            if svc.routes:
                k8s.apiextensions.CustomResource(
                    f"{name}-{svc.name}-vs",
                    api_version="networking.istio.io/v1",
                    kind="VirtualService",
                    metadata={"name": svc.name, "namespace": ns},
                    spec=virtual_service(svc, apps),
                    opts=root,
                )
            if svc.routes and svc.expose:
                k8s.apiextensions.CustomResource(
                    f"{name}-{svc.name}-gateway-vs",
                    api_version="networking.istio.io/v1",
                    kind="VirtualService",
                    metadata={"name": f"{svc.name}-gateway", "namespace": ns},
                    spec=gateway_virtual_service(svc, apps, gateway_ref),
                    opts=root,
                )
        if apps.client:
            sa = k8s.core.v1.ServiceAccount(
                f"{name}-client-sa",
                metadata={"name": "client", "namespace": ns, "labels": {"app": "client"}},
                automount_service_account_token=False,
                opts=root,
            )
            d = deployment(ns, "client", "v1", None, [_client_container()], 1)
            k8s.apps.v1.Deployment(
                f"{name}-client-v1",
                metadata=d["metadata"],
                spec=d["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, sa]),
            )
        self.register_outputs({"namespace": ns, "workloads": list(apps.workloads)})
