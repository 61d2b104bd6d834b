"""mesh-platform's components: one ComponentResource per module, each with its ``*Args`` beside it.

Every cluster component (kind, existing, EKS) exposes the same surface, ``Cluster``, so that the
rest of the program never asks where the cluster came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import pulumi
import pulumi_kubernetes as k8s

TOKEN = "mesh-platform:index"
#: Istio's root namespace: istiod and its charts live there, and mesh-wide config (STRICT mTLS,
#: the Telemetry object) placed there applies to every namespace.
ISTIO_NAMESPACE = "istio-system"
#: Release name of the gateway chart; it becomes the pods' ``app``/``istio`` labels (components/istio.py)
#: and the name the edge table finds the gateway by (mesh_platform/edges.py).
GATEWAY_RELEASE = "istio-ingress"


class Cluster(Protocol):
    """What every cluster component offers the rest of the stack."""

    cluster_name: str

    @property
    def kind(self) -> Literal["kind", "existing", "eks"]:
        """Where the cluster came from: the one place the rest of the stack may ask."""
        ...

    kubeconfig: pulumi.Output[str]
    """The kubeconfig, always a secret output."""
    provider: k8s.Provider
    """The one Kubernetes provider every Kubernetes resource of the stack uses."""
    node_cidrs: pulumi.Output[list[str]] | None
    """The nodes' subnets as found on the cluster; None where the stack names them (nodeCidrs, the VPC)."""


def kubernetes_provider(
    name: str, kubeconfig: pulumi.Input[str], cluster_identifier: pulumi.Input[str], parent: pulumi.Resource, **extra: Any
) -> k8s.Provider:
    """The stack's one Kubernetes provider, built the same way for every kind of cluster.

    ``cluster_identifier`` must change exactly when the cluster is a new one: the provider is then
    replaced, and with it every Kubernetes resource of the stack is created again on the new
    cluster. A kubeconfig change with the same identifier (rotated credentials) only updates it.
    """
    return k8s.Provider(
        name,
        kubeconfig=kubeconfig,
        cluster_identifier=cluster_identifier,
        # Never drop resources from state because the cluster does not answer: a refresh while
        # Docker is stopped (or a VPN is down) must fail, not empty the state. Set here, it also
        # overrides PULUMI_K8S_DELETE_UNREACHABLE (provider.go Configure: the provider flag wins
        # over the variable; the Python SDK would otherwise copy the variable into the state).
        # Lab teardown does not need it: the cluster is deleted, then the state (make destroy).
        delete_unreachable=False,
        opts=pulumi.ResourceOptions(parent=parent),
        **extra,
    )


def helm_release(
    name: str,
    *,
    release: str,
    chart: str,
    version: str,
    repo: str,
    namespace: str,
    values: dict,
    opts: pulumi.ResourceOptions,
    values_files: Sequence[str] = (),
) -> k8s.helm.v3.Release:
    """A pinned chart as a Helm v3 Release: awaited until its resources are ready, hooks run (unlike Chart v4).

    ``values_files``: YAML texts Helm reads before ``values`` (``valueYamlFiles``): where a ``null`` that
    unsets a chart default goes. pulumi-kubernetes documents values files as the way to send one from
    Python, and keeps their ``null`` from provider 4.30.0 on (CHANGELOG.md 4.30.0, #2997).
    """
    return k8s.helm.v3.Release(
        name,
        name=release,
        chart=chart,
        version=version,
        repository_opts={"repo": repo},
        namespace=namespace,
        values=values,
        value_yaml_files=[pulumi.StringAsset(text) for text in values_files] or None,
        opts=opts,
    )


def strict_mtls(name: str, namespace: str, opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    """PeerAuthentication ``default`` with STRICT mTLS (mesh-wide when ``namespace`` is the root)."""
    return k8s.apiextensions.CustomResource(
        name,
        api_version="security.istio.io/v1",
        kind="PeerAuthentication",
        metadata={"name": "default", "namespace": namespace},
        spec={"mtls": {"mode": "STRICT"}},
        opts=opts,
    )
