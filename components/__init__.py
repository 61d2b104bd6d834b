"""mesh-platform's components: one ComponentResource per module, each with its ``*Args`` beside it.

Every cluster component (kind, existing, EKS) exposes the same surface, ``Cluster``, so that the
rest of the program never asks where the cluster came from.
"""

from __future__ import annotations

from typing import Literal, Protocol

import pulumi
import pulumi_kubernetes as k8s

TOKEN = "mesh-platform:index"


class Cluster(Protocol):
    """What every cluster component offers the rest of the stack."""

    cluster_name: str
    kind: Literal["kind", "existing", "eks"]
    kubeconfig: pulumi.Output[str]
    """The kubeconfig, always a secret output."""
    provider: k8s.Provider
    """The one Kubernetes provider every Kubernetes resource of the stack uses."""
