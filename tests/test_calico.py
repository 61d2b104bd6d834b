"""Calico: pinned operator chart, the stack-owned Installation and its readiness gate."""

from __future__ import annotations

from conftest import objects, one, run_config

from components.calico import CalicoArgs, installation_spec
from components.settings import CALICO_CHART_VERSION, CALICO_REPO


def test_operator_chart_is_pinned_and_leaves_the_installation_to_the_stack(stack) -> None:
    release = one(stack("dev"), "kubernetes:helm.sh/v3:Release", "calico-operator")
    assert release.inputs["chart"] == "tigera-operator" and release.inputs["version"] == CALICO_CHART_VERSION
    assert release.inputs["repositoryOpts"] == {"repo": CALICO_REPO}
    assert release.inputs["values"]["installation"] == {"enabled": False}


def test_installation_pool_equals_pod_subnet_and_gates_on_ready(stack) -> None:
    (inst,) = objects(stack("dev"), "Installation")
    assert inst["metadata"]["name"] == "default"
    assert inst["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    (pool,) = inst["spec"]["calicoNetwork"]["ipPools"]
    assert pool["cidr"] == "10.244.0.0/16" and pool["encapsulation"] == "VXLAN"
    assert inst["spec"]["cni"] == {"type": "Calico"}


def test_pool_follows_a_custom_pod_subnet() -> None:
    (inst,) = objects(run_config(cluster={"podSubnet": "10.50.0.0/16"}), "Installation")
    assert inst["spec"]["calicoNetwork"]["ipPools"][0]["cidr"] == "10.50.0.0/16"


def test_installation_waits_for_the_operator_and_has_a_timeout(stack) -> None:
    dev = stack("dev")
    inst = one(dev, "kubernetes:operator.tigera.io/v1:Installation")
    operator = one(dev, "kubernetes:helm.sh/v3:Release", "calico-operator")
    assert operator.urn in inst.dependencies


def test_eks_mode_is_policy_only() -> None:
    spec = installation_spec(CalicoArgs("v3.31.3", "eks", "10.244.0.0/16", "VXLAN", 10))
    assert spec["kubernetesProvider"] == "EKS" and spec["cni"] == {"type": "AmazonVPC"}
    assert "ipPools" not in spec["calicoNetwork"]


def test_operator_namespace_is_privileged(stack) -> None:
    ns = [n for n in objects(stack("dev"), "Namespace") if n["metadata"]["name"] == "tigera-operator"]
    assert ns[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_pool_spells_out_every_default_the_operator_fills(stack) -> None:
    # calicoNetwork.ipPools is an atomic list. The operator fills encapsulation, natOutgoing,
    # nodeSelector and blockSize of the IPv4 pool when missing (tigera/operator
    # pkg/controller/installation/core_controller.go fillDefaults) and patches them back; with
    # all four given, its patch changes nothing and the list stays the stack's, so a later apply
    # neither conflicts nor fights it.
    (inst,) = objects(stack("dev"), "Installation")
    (pool,) = inst["spec"]["calicoNetwork"]["ipPools"]
    assert {"encapsulation", "natOutgoing", "nodeSelector", "blockSize"} <= set(pool)
    assert (pool["natOutgoing"], pool["nodeSelector"], pool["blockSize"]) == ("Enabled", "all()", 26)
