"""A cluster the user already runs, reached through a kubeconfig file and context."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from components import TOKEN, kubernetes_provider


@dataclass(frozen=True)
class ExistingClusterArgs:
    cluster_name: str
    kubeconfig_path: str
    context: str | None = None


class ExistingCluster(pulumi.ComponentResource):
    cluster_name: str
    kind: Literal["existing"] = "existing"
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider

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
        self.kubeconfig = pulumi.Output.secret(content)
        self.provider = kubernetes_provider(f"{name}-k8s", self.kubeconfig, args.cluster_name, self, context=args.context)
        self.register_outputs({"kubeconfig": self.kubeconfig, "clusterName": self.cluster_name})
