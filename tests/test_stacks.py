"""What the stack files promise in their own comments, read from stacks/ itself.

The component tests render configs stated in tests/conftest.py (``LIKE``), so editing a stack file
changes none of them; these tests are the ones that fail when a stack file no longer does what its
comment says. (Every stack file renders and verifies: tests/test_render.py, tests/test_engine.py,
`make verify-all`.)
"""

from __future__ import annotations

import yaml
from conftest import PROTECTABLE, one, protection


def test_lab_is_control_plane_only(stack) -> None:
    # Pulumi.lab.yaml: "the smallest kind cluster (control plane only)".
    cfg = yaml.safe_load(one(stack("lab"), "command:local:Command", "cluster-kind").inputs["stdin"])
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane"]


def test_prod_protects_cluster_vpc_and_nodes_and_staging_does_not(stack) -> None:
    # Pulumi.prod.yaml: "protected cluster, VPC and node group"; Pulumi.staging.yaml: "not protected".
    assert set(protection(stack("prod")).values()) == {True}
    assert not any(protection(stack("staging"))[t] for t in PROTECTABLE)


def test_prod_replicas_allow_disruption_budgets(stack) -> None:
    # Pulumi.prod.yaml: "Two replicas each, so a PodDisruptionBudget (minAvailable 1) still lets nodes drain."
    rec = stack("prod")
    istiod = one(rec, "kubernetes:helm.sh/v3:Release", "istio-istiod").inputs["values"]
    gateway = one(rec, "kubernetes:helm.sh/v3:Release", "istio-gateway").inputs["values"]
    assert istiod["pilot"]["replicaCount"] == 2 and istiod["global"]["defaultPodDisruptionBudget"] == {"enabled": True}
    assert gateway["replicaCount"] == 2 and gateway["podDisruptionBudget"] == {"minAvailable": 1}
