"""Calico: pinned operator chart, the stack-owned Installation and its readiness gate."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from conftest import LIKE, objects, one, render_config, run_config

from components.calico import CRDS_RELEASE, NAMESPACE, CalicoArgs, installation_spec
from mesh_platform.settings import CalicoSettings
from mesh_platform.versions import CALICO_CHART_VERSION, CALICO_CRDS_CHART, CALICO_REPO
from offline import engine
from offline.graph import Graph

RELEASE = "kubernetes:helm.sh/v3:Release"
INSTALLATION = "kubernetes:operator.tigera.io/v1:Installation"


def test_operator_chart_is_pinned_and_leaves_the_installation_to_the_stack(like) -> None:
    release = one(like("dev"), RELEASE, "calico-operator")
    assert release.inputs["chart"] == "tigera-operator" and release.inputs["version"] == CALICO_CHART_VERSION
    assert release.inputs["repositoryOpts"] == {"repo": CALICO_REPO}
    assert release.inputs["values"]["installation"] == {"enabled": False}


def test_calicos_crds_are_a_release_of_their_own_chart_at_the_operators_version(like) -> None:
    # Calico 3.32's tigera-operator chart has no CRDs; crd.projectcalico.org.v1 carries them.
    crds = one(like("dev"), RELEASE, "calico-crds")
    assert crds.inputs["chart"] == CALICO_CRDS_CHART == "crd.projectcalico.org.v1"
    assert crds.inputs["version"] == CALICO_CHART_VERSION == one(like("dev"), RELEASE, "calico-operator").inputs["version"]
    assert crds.inputs["repositoryOpts"] == {"repo": CALICO_REPO}
    assert (crds.inputs["name"], crds.inputs["namespace"]) == (CRDS_RELEASE, NAMESPACE) == ("calico-crds", "tigera-operator")
    assert not crds.inputs.get("values")
    # A stack-chosen Calico version moves both charts.
    other = run_config(calico={"version": "v3.32.0"})
    assert {r.inputs["chart"]: r.inputs["version"] for r in other.by_type(RELEASE) if "calico" in r.name} == {
        "crd.projectcalico.org.v1": "v3.32.0",
        "tigera-operator": "v3.32.0",
    }


def _waits_for_the_crds(rec) -> dict[str, bool]:
    g = Graph.of(rec)
    crds = one(rec, RELEASE, "calico-crds").urn
    operator = one(rec, RELEASE, "calico-operator").urn
    inst = one(rec, INSTALLATION).urn
    return {"operator": g.waits_for(operator, crds), "installation": g.waits_for(inst, crds)}


def test_the_operator_and_the_installation_wait_for_the_crds(like) -> None:
    for name in ("dev", "staging"):
        assert _waits_for_the_crds(like(name)) == {"operator": True, "installation": True}, name


def test_an_operator_that_does_not_wait_for_the_crds_is_found(like) -> None:
    # The check above can fail: the operator release without its dependency on calico-crds.
    rec = copy.deepcopy(like("dev"))
    crds = one(rec, RELEASE, "calico-crds").urn
    operator = one(rec, RELEASE, "calico-operator")
    operator.dependencies = [d for d in operator.dependencies if d != crds]
    assert _waits_for_the_crds(rec)["operator"] is False


def test_the_operator_table_is_read_at_the_operator_the_pinned_chart_ships() -> None:
    # tests/data/tigera_operator.yaml, which the stand-in operator and the pool test read, names the
    # chart and operator it was read for: a Calico bump fails here until it is read again.
    facts = yaml.safe_load((Path(__file__).parent / "data" / "tigera_operator.yaml").read_text())
    assert (facts["chart"], facts["chart_version"], facts["operator_version"]) == (
        "tigera-operator",
        CALICO_CHART_VERSION,
        "v1.42.3",
    )


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
