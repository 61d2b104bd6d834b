"""A cluster the user already runs, reached through a kubeconfig file and context."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
import yaml

from mesh_platform.kube import TOKEN, kubernetes_provider


@dataclass(frozen=True)
class ExistingClusterArgs:
    cluster_name: str
    kubeconfig_path: str
    context: str | None = None


_KEY = "mesh-platform:cluster.existing"


def only_context(content: str, context: str | None) -> str:
    """The kubeconfig reduced to one context, its cluster and its user, that context current.

    The whole file would otherwise go into the stack's state and outputs, with every other
    cluster's credentials in it. ``context`` defaults to the file's ``current-context``.
    """
    try:
        config = yaml.safe_load(content)
    except yaml.YAMLError as err:
        raise pulumi.RunError(
            f"{_KEY}.kubeconfig: not a YAML kubeconfig ({err.__class__.__name__}); give a kubeconfig file"
        ) from None
    if not isinstance(config, dict):
        raise pulumi.RunError(f"{_KEY}.kubeconfig: not a kubeconfig (no mapping at the top); give a kubeconfig file")

    def named(section: str) -> dict[str, dict]:
        return {e["name"]: e for e in config.get(section) or [] if isinstance(e, dict) and "name" in e}

    contexts, clusters, users = named("contexts"), named("clusters"), named("users")
    chosen = context or config.get("current-context")
    if not chosen or chosen not in contexts:
        raise pulumi.RunError(
            f"{_KEY}.context: {chosen!r} is not a context of the kubeconfig; available: {', '.join(sorted(contexts)) or 'none'}"
        )
    ctx = contexts[chosen].get("context") or {}
    out: dict = {
        "apiVersion": config.get("apiVersion", "v1"),
        "kind": "Config",
        "current-context": chosen,
        "contexts": [contexts[chosen]],
        "clusters": [clusters[ctx["cluster"]]] if ctx.get("cluster") in clusters else [],
        "users": [users[ctx["user"]]] if ctx.get("user") in users else [],
    }
    return yaml.safe_dump(out, sort_keys=False)


class ExistingCluster(pulumi.ComponentResource):
    cluster_name: str
    kind: Literal["existing"] = "existing"
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    #: Never looked up: an existing cluster's nodes are named in observability.nodeCidrs.
    node_cidrs: pulumi.Output[list[str]] | None = None

    def __init__(self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:ExistingCluster", name, None, opts)
        path = Path(args.kubeconfig_path).expanduser()
        try:
            content = path.read_text()
        except OSError as err:
            raise pulumi.RunError(
                f"mesh-platform:cluster.existing.kubeconfig: cannot read {args.kubeconfig_path!r} "
                f"({err.strerror}); give the path of a readable kubeconfig file"
            ) from None
        self.cluster_name = args.cluster_name
        self.kubeconfig = pulumi.Output.secret(only_context(content, args.context))
        self.provider = kubernetes_provider(f"{name}-k8s", self.kubeconfig, args.cluster_name, self, context=args.context)
        self.register_outputs({"kubeconfig": self.kubeconfig, "clusterName": self.cluster_name})
