"""The fast paths of offline.verify give the answers of the straightforward ones.

``fast=False`` runs network-config-analyzer exactly as shipped and kubernetes-validate object by
object; the default path merges NCA's allow-only policies pairwise, leaves the mesh-only map's
non-TCP half empty, keeps one schema validator per kind and checks schemas in a worker that loads
them while the stack renders. Flows, routes and schema findings must be equal.
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from typing import Any

import pytest
from verify_cases import DENY_ALL, allow, netpol, shop

from offline import engine
from offline.thirdparty import nca as nca_fence
from offline.verify import bench, connectivity, pipeline, schema


@cache
def _rendered(name: str) -> tuple[list[dict[str, Any]], Any]:
    """Objects and settings of a stack file, or of a generated stack ``bench-N``."""
    if name.startswith("bench-"):
        from mesh_platform.loader import parse

        generated = bench.stack_config(int(name.removeprefix("bench-")))
        config = {k: json.dumps(v) for k, v in generated.items()}
        return engine.run(name, config=config).manifests(), parse({k.split(":", 1)[1]: v for k, v in generated.items()}, name)
    return engine.run(name).manifests(), engine.settings(engine.stack_file(name), name)


@pytest.mark.parametrize("name", ["dev", "lab", "prod", "bench-3", "bench-50"])
def test_flows_and_routes_are_those_of_the_straightforward_path(name: str) -> None:
    objects, settings = _rendered(name)
    fast = pipeline._traffic(copy.deepcopy(objects), settings, fast=True)
    slow = pipeline._traffic(copy.deepcopy(objects), settings, fast=False)
    assert fast[0], "no flows: the comparison would prove nothing"
    assert sorted(fast[0]) == sorted(slow[0])
    assert sorted(fast[1]) == sorted(slow[1])
    assert sorted(fast[2]) == sorted(slow[2])


def test_generated_stack_has_the_shape_the_benchmark_promises() -> None:
    services = bench.services(21)
    assert [s["allowFrom"] for s in services[:2]] == [["client"], ["svc-000", "client"]]
    exposed = [s["name"] for s in services if s.get("expose")]
    assert exposed == ["svc-000", "svc-010", "svc-020"]
    assert all(d["weight"] in (90, 10) for s in services if s.get("expose") for d in s["routes"][0]["destinations"])


def _istio_policy(name: str, action: str, rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "api"}}, "action": action}
    if rules is not None:
        spec["rules"] = rules
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    "policies",
    [
        # allow-only on both layers: the pairwise merge
        [netpol("shop", "deny-all", DENY_ALL), *allow("shop", "frontend", "api", 8080), *allow("shop", "db", "api", 9090)],
        # a DENY policy: the mesh layer falls back to NCA's own fold, order matters there
        [
            _istio_policy("deny-db", "DENY", [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/db"]}}]}]),
            _istio_policy("allow-all-to-api", "ALLOW", [{}]),
        ],
    ],
    ids=["allow-only", "with-deny"],
)
def test_hand_written_policies_give_the_same_flows(policies: list[dict[str, Any]]) -> None:
    objects = shop(*policies)
    fast = connectivity.flows(copy.deepcopy(objects), scope={"shop"}, fast=True)
    slow = connectivity.flows(copy.deepcopy(objects), scope={"shop"}, fast=False)
    assert fast and fast == slow


def _props(protocol: str, port: int) -> Any:
    """NCA's connection set for one protocol and destination port."""
    from nca.CoreDS.ConnectivityProperties import ConnectivityProperties
    from nca.CoreDS.PortSet import PortSet
    from nca.CoreDS.ProtocolSet import ProtocolSet

    return ConnectivityProperties.make_conn_props_from_dict(
        {
            "protocols": ProtocolSet.get_protocol_set_with_single_protocol(protocol),
            "dst_ports": PortSet.make_port_set_with_range(port, port),
        }
    )


class _Policy:
    """What ``NetworkLayer`` folds: a policy's ``allowed_connections`` (a fresh set each call, as NCA's)."""

    def __init__(self, name: str, allowed: Any = None, denied: Any = None) -> None:
        self.name, self.allowed, self.denied = name, allowed, denied

    def allowed_connections(self, is_ingress: bool) -> Any:
        from nca.Resources.PolicyResources.NetworkPolicy import PolicyConnections

        conns = PolicyConnections()
        conns.captured = {self.name}
        if self.allowed is not None:
            conns.allowed_conns = copy.copy(self.allowed)
        if self.denied is not None:
            conns.denied_conns = copy.copy(self.denied)
        return conns


def test_the_pairwise_merge_gives_ncas_fold_leaves_a_deny_to_it_and_is_restored_when_nca_raises() -> None:
    from types import SimpleNamespace

    from nca.NetworkConfig.NetworkLayer import NetworkLayer

    shipped = NetworkLayer.collect_policies_conns_optimized
    folds: list[int] = []

    def counted(self: Any, is_ingress: bool, captured_func: Any = lambda policy: True) -> Any:
        folds.append(len(self.policies_list))
        return shipped(self, is_ingress, captured_func)

    allow_only = SimpleNamespace(policies_list=[_Policy(f"p{i}", _props("TCP", 8000 + i)) for i in range(5)])
    with_deny = SimpleNamespace(
        policies_list=[_Policy("deny", denied=_props("TCP", 8000)), _Policy("allow", _props("TCP", 8000))]
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(NetworkLayer, "collect_policies_conns_optimized", counted)
        want = shipped(allow_only, True)
        with nca_fence.balanced_unions():
            merged = NetworkLayer.collect_policies_conns_optimized(allow_only, True)
            assert folds == [], "an allow-only layer is merged pairwise, not folded"
            assert merged.allowed_conns == want.allowed_conns and merged.captured == want.captured
            # A deny set: NCA's own fold, whose answer (the deny wins, it came first) is what is returned.
            denied = NetworkLayer.collect_policies_conns_optimized(with_deny, True)
            assert folds == [2] and not denied.allowed_conns and denied.denied_conns == _props("TCP", 8000)
        assert NetworkLayer.collect_policies_conns_optimized is counted
        # NCA failing half-way through a run leaves its own fold in place for the next run.
        with pytest.raises(RuntimeError), nca_fence.balanced_unions():
            raise RuntimeError("nca failed")
        assert NetworkLayer.collect_policies_conns_optimized is counted


def test_the_tcp_part_only_is_ncas_tcp_part_an_empty_rest_and_is_restored_when_nca_raises() -> None:
    from nca.NetworkConfig.NetworkConfigQuery import ConnectivityMapQuery

    shipped = ConnectivityMapQuery.convert_props_to_split_by_tcp
    props = _props("TCP", 80) | _props("UDP", 53)
    tcp, non_tcp = shipped(props)
    assert non_tcp, "the shipped split has a non-TCP part here: the check below can fail"
    with nca_fence.tcp_part_only():
        got_tcp, got_rest = ConnectivityMapQuery.convert_props_to_split_by_tcp(props)
    assert got_tcp == tcp == _props("TCP", 80) and not got_rest
    assert ConnectivityMapQuery.convert_props_to_split_by_tcp is shipped
    with pytest.raises(RuntimeError), nca_fence.tcp_part_only():
        raise RuntimeError("nca failed")
    assert ConnectivityMapQuery.convert_props_to_split_by_tcp is shipped
    assert ConnectivityMapQuery.convert_props_to_split_by_tcp(props) == (tcp, non_tcp)


def test_schema_findings_are_those_of_the_straightforward_path() -> None:
    objects, settings = _rendered("dev")
    broken = copy.deepcopy(objects)
    for obj in broken:
        if obj["kind"] == "Deployment":
            obj["spec"]["replicas"] = "three"
            obj["spec"]["template"]["spec"]["bogus"] = True
        if obj["kind"] == "VirtualService":
            obj["spec"]["bogus"] = 1
    broken.append({"apiVersion": "v1", "kind": "NoSuchKind", "metadata": {"name": "x"}})
    version = settings.cluster.kubernetes_version
    fast, slow = schema.check(broken, version, fast=True), schema.check(broken, version, fast=False)
    assert len([v for v in fast if "Deployment" in v.object]) >= 2 and any("NoSuchKind" in v.message for v in fast)
    assert sorted(fast) == sorted(slow)
    assert schema.check(objects, version, fast=True) == schema.check(objects, version, fast=False) == []


def test_the_schema_check_beside_gives_the_checks_answer_and_survives_a_dead_worker(monkeypatch) -> None:
    objects = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "bogus": 1}},
        {"apiVersion": "v1", "kind": "NoSuchKind", "metadata": {"name": "y"}},
    ]
    expected = schema.check(objects, "1.34")
    assert len(expected) == 2
    with schema.CheckBeside("1.34") as beside:
        assert beside.worker is not None
        beside.submit(objects)
        assert beside.result() == expected
    # A worker that dies while it loads the schemas: the check runs in the caller.
    monkeypatch.setattr(schema, "_warm", lambda version: os._exit(3))
    with schema.CheckBeside("1.34") as beside:
        beside.worker.join()
        beside.submit(objects)
        assert beside.result() == expected


def test_a_schema_worker_whose_objects_never_come_is_ended() -> None:
    with schema.CheckBeside("1.35") as beside:
        worker = beside.worker
    worker.join(timeout=10)
    assert worker.exitcode is not None and beside.worker is None


def test_without_fork_the_schema_check_runs_in_the_caller(monkeypatch) -> None:
    monkeypatch.setattr(schema.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "bogus": 1}}]
    with schema.CheckBeside("1.34") as beside:
        assert beside.worker is None
        beside.submit(objects)
        assert beside.result() == schema.check(objects, "1.34")
