"""Calico: pinned operator chart, the stack-owned Installation and its readiness gate."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import LIKE, objects, one, render_config, run_config

from components.calico import CalicoArgs, installation_spec
from mesh_platform.settings import CalicoSettings
from mesh_platform.versions import CALICO_CHART_VERSION, CALICO_REPO
from offline import engine


def test_operator_chart_is_pinned_and_leaves_the_installation_to_the_stack(like) -> None:
    release = one(like("dev"), "kubernetes:helm.sh/v3:Release", "calico-operator")
    assert release.inputs["chart"] == "tigera-operator" and release.inputs["version"] == CALICO_CHART_VERSION
    assert release.inputs["repositoryOpts"] == {"repo": CALICO_REPO}
    assert release.inputs["values"]["installation"] == {"enabled": False}


def test_installation_pool_equals_pod_subnet_and_gates_on_ready(like) -> None:
    (inst,) = objects(like("dev"), "Installation")
    assert inst["metadata"]["name"] == "default"
    assert inst["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    (pool,) = inst["spec"]["calicoNetwork"]["ipPools"]
    assert pool["cidr"] == "10.244.0.0/16" and pool["encapsulation"] == "VXLAN"
    assert inst["spec"]["cni"] == {"type": "Calico"}


def test_pool_follows_a_custom_pod_subnet() -> None:
    (inst,) = objects(run_config(cluster={"podSubnet": "10.50.0.0/16"}), "Installation")
    assert inst["spec"]["calicoNetwork"]["ipPools"][0]["cidr"] == "10.50.0.0/16"


INSTALLATION = "kubernetes:operator.tigera.io/v1:Installation"


def _installation_timeouts(monkeypatch, **groups) -> tuple[str, str, str]:
    """The custom timeouts (create, update, delete) the SDK sends the engine for the Installation.

    The recording keeps no options beyond protect and the dependencies, so the registration request
    itself is read on its way to the mock monitor.
    """
    sent = []
    register = engine.RecordingMonitor.RegisterResource

    def spy(self, request):
        if request.type == INSTALLATION:
            t = request.customTimeouts
            sent.append((t.create, t.update, t.delete))
        return register(self, request)

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", spy)
    render_config("dev", **groups)
    (timeouts,) = sent
    return timeouts


def test_installation_waits_for_the_operator_and_has_a_timeout(like, monkeypatch) -> None:
    dev = like("dev")
    inst = one(dev, INSTALLATION)
    operator = one(dev, "kubernetes:helm.sh/v3:Release", "calico-operator")
    assert operator.urn in inst.dependencies
    # The wait for condition=Ready ends after calico.readyTimeoutMinutes, on create and on update.
    default = CalicoSettings().ready_timeout_minutes
    assert _installation_timeouts(monkeypatch, **LIKE["dev"]) == (f"{default}m", f"{default}m", "")
    assert _installation_timeouts(monkeypatch, **LIKE["dev"], calico={"readyTimeoutMinutes": 25}) == ("25m", "25m", "")


def test_eks_mode_is_policy_only() -> None:
    spec = installation_spec(CalicoArgs(CALICO_CHART_VERSION, "eks", "10.244.0.0/16", "VXLAN", 10))
    assert spec["kubernetesProvider"] == "EKS" and spec["cni"] == {"type": "AmazonVPC"}
    assert "ipPools" not in spec["calicoNetwork"]


def test_operator_namespace_is_privileged(like) -> None:
    ns = [n for n in objects(like("dev"), "Namespace") if n["metadata"]["name"] == "tigera-operator"]
    assert ns[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_pool_spells_out_every_default_the_operator_fills(like) -> None:
    # calicoNetwork.ipPools is an atomic list; tigera-operator fills what a pool lacks and writes
    # the whole list back as field manager "operator" (tests/data/tigera_operator.yaml, with the
    # sources), and every later apply that touches the Installation then fails with a 409. The
    # defaults come from that recorded table, never from components/calico.py.
    facts = yaml.safe_load((Path(__file__).parent / "data" / "tigera_operator.yaml").read_text())
    for name in ("dev", "lab", "local"):
        (inst,) = objects(like(name), "Installation")
        (pool,) = inst["spec"]["calicoNetwork"]["ipPools"]
        for row in facts["pool_defaults"] + facts["pool_crd_defaults"]:
            assert row["field"] in pool, f"{name}: the operator would add {row['field']} ({row['source']})"
            if row["field"] != "encapsulation":  # the stack's choice (VXLAN); the default is IPIP
                assert pool[row["field"]] == row["value"], (name, row)


def test_a_pool_without_every_default_would_be_rewritten_by_the_operator() -> None:
    # The check above can fail: the pool as the stack sent it before lacked three defaults.
    facts = yaml.safe_load((Path(__file__).parent / "data" / "tigera_operator.yaml").read_text())
    old = {"name": "default-ipv4-ippool", "cidr": "10.244.0.0/16", "encapsulation": "VXLAN",
           "natOutgoing": "Enabled", "nodeSelector": "all()", "blockSize": 26}  # fmt: skip
    missing = [r["field"] for r in facts["pool_defaults"] if r["field"] not in old]
    assert missing == ["allowedUses", "disableNewAllocations", "assignmentMode"]
