"""KindCluster: kind config, create/delete commands, secret kubeconfig, the provider."""

from __future__ import annotations

import subprocess

import yaml
from conftest import one, render_config
from standins import make_standins

from components.kind_cluster import KindClusterArgs, kind_config
from offline.engine import SECRET


def test_kind_config_disables_default_cni_and_maps_gateway_ports() -> None:
    cfg = yaml.safe_load(
        kind_config(
            KindClusterArgs("c", "kindest/node:v1.34.0@sha256:" + "a" * 64, 2, "10.244.0.0/16", "10.96.0.0/16", ((30080, 8080),))
        )
    )
    assert cfg["networking"]["disableDefaultCNI"] is True
    assert cfg["networking"]["podSubnet"] == "10.244.0.0/16" and cfg["networking"]["serviceSubnet"] == "10.96.0.0/16"
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane", "worker", "worker"]
    assert {n["image"] for n in cfg["nodes"]} == {"kindest/node:v1.34.0@sha256:" + "a" * 64}
    assert cfg["nodes"][0]["extraPortMappings"] == [
        {"containerPort": 30080, "hostPort": 8080, "listenAddress": "127.0.0.1", "protocol": "TCP"}
    ]


def test_command_creates_and_deletes_the_cluster(like) -> None:
    dev = like("dev")
    cmd = one(dev, "command:local:Command", "cluster-kind")
    assert "kind create cluster" in cmd.inputs["create"] and "kind get kubeconfig" in cmd.inputs["create"]
    assert cmd.inputs["delete"] == 'kind delete cluster --name "$KIND_CLUSTER"'
    assert cmd.inputs["environment"] == {"KIND_CLUSTER": "mesh-dev"}
    cfg = yaml.safe_load(cmd.inputs["stdin"])
    assert cfg["name"] == "mesh-dev" and len(cfg["nodes"]) == 2
    # A config change replaces the cluster: the config is the trigger.
    assert cmd.inputs["triggers"] == [cmd.inputs["stdin"]]


def test_no_workers_is_a_control_plane_only_cluster(like) -> None:
    cfg = yaml.safe_load(one(like("lab"), "command:local:Command", "cluster-kind").inputs["stdin"])
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane"]


def test_kubeconfig_is_secret_and_feeds_the_provider(like) -> None:
    dev = like("dev")
    provider = one(dev, "pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == SECRET
    # Secret, so unreadable here: that it is the command's output shows as the dependency on it.
    assert one(dev, "command:local:Command", "cluster-kind").urn in provider.dependencies
    assert dev.outputs["kubeconfig"] == SECRET
    assert dev.outputs["clusterKind"] == "kind"


def test_a_new_cluster_is_a_new_cluster_identifier(like) -> None:
    # The command's ID is unique per created cluster (mocks: "<name>-id"); with the name alone a
    # re-created cluster would keep the provider and no Kubernetes resource would be re-created.
    dev = like("dev")
    cmd = one(dev, "command:local:Command", "cluster-kind")
    provider = one(dev, "pulumi:providers:kubernetes")
    assert provider.inputs["clusterIdentifier"] == "mesh-dev/cluster-kind-id"
    assert cmd.urn in provider.dependencies


def test_unreachable_cluster_never_drops_state(monkeypatch) -> None:
    # The SDK copies PULUMI_K8S_DELETE_UNREACHABLE into the provider's inputs; the explicit false
    # wins over it, so a refresh while Docker is stopped fails instead of emptying the state.
    monkeypatch.setenv("PULUMI_K8S_DELETE_UNREACHABLE", "true")
    provider = one(render_config(cluster={"provider": "kind"}), "pulumi:providers:kubernetes")
    assert provider.inputs["deleteUnreachable"] == "false"


def test_kubeconfig_never_reaches_the_logs(like) -> None:
    cmd = one(like("dev"), "command:local:Command", "cluster-kind")
    # pulumi-command logs stdout and stderr unless `logging` says otherwise; stdout is the kubeconfig.
    assert cmd.inputs["logging"] == "stderr"
    assert "kind get kubeconfig" in cmd.inputs["create"]
    assert ">&2" in cmd.inputs["create"].split("kind create cluster", 1)[1].splitlines()[0]


def _create(like, tmp_path, kind_behaviour: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    cmd = one(like("lab"), "command:local:Command", "cluster-kind")
    s = make_standins(tmp_path)
    s.add("kind", kind_behaviour)
    proc = subprocess.run(
        ["bash", "-c", cmd.inputs["create"]],
        input=cmd.inputs["stdin"],
        env=s.env(cmd.inputs["environment"]),
        capture_output=True,
        text=True,
        check=False,
    )
    return proc, s.lines("kind")


def test_create_refuses_a_kind_cluster_it_did_not_create(like, tmp_path) -> None:
    proc, calls = _create(like, tmp_path, '[ "$1 $2" = "get clusters" ] && echo other && echo mesh-lab; exit 0')
    assert proc.returncode != 0 and proc.stdout == ""
    assert "a kind cluster named mesh-lab already exists and this stack did not create it" in proc.stderr
    assert calls == ["kind get clusters"], "neither created, adopted nor deleted"


def test_create_prints_only_the_kubeconfig(like, tmp_path) -> None:
    proc, calls = _create(
        like, tmp_path, '[ "$1" = get ] && [ "$2" = kubeconfig ] && echo "apiVersion: v1"; echo progress >&2; exit 0'
    )
    assert proc.returncode == 0 and proc.stdout == "apiVersion: v1\n"
    assert calls == ["kind get clusters", "kind create cluster --name mesh-lab --config -", "kind get kubeconfig --name mesh-lab"]


def test_create_leaves_nothing_when_the_kubeconfig_cannot_be_read(like, tmp_path) -> None:
    proc, calls = _create(like, tmp_path, '[ "$1 $2" = "get kubeconfig" ] && exit 1; exit 0')
    assert proc.returncode != 0
    assert calls[-1] == "kind delete cluster --name mesh-lab"


def test_every_kubernetes_resource_uses_the_cluster_provider(like) -> None:
    dev = like("dev")
    provider = one(dev, "pulumi:providers:kubernetes")
    k8s = [r for r in dev.resources if r.type.startswith("kubernetes:")]
    assert k8s
    assert all(r.provider == provider.urn for r in k8s), [r.urn for r in k8s if r.provider != provider.urn]


def _probe(tmp_path, docker_out: str, docker_rc: int = 0, **env: str):
    """Run the node-network probe with a stand-in ``docker`` that records its arguments."""
    import subprocess

    from components.kind_cluster import _NODE_CIDRS

    fake = tmp_path / "docker"
    fake.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/calls"\nprintf "%s" "{docker_out}"\nexit {docker_rc}\n')
    fake.chmod(0o755)
    environ = {"PATH": f"{tmp_path}:/usr/bin:/bin", **env}
    done = subprocess.run(["sh", "-c", _NODE_CIDRS], capture_output=True, text=True, env=environ, check=False)
    calls = (tmp_path / "calls").read_text() if (tmp_path / "calls").exists() else ""
    return done, calls


def test_node_network_probe_reads_the_ipv4_subnet_docker_gave(tmp_path) -> None:
    done, calls = _probe(tmp_path, "192.168.97.0/24 fc00:f853:ccd:e793::/64 ")
    assert (done.returncode, done.stdout) == (0, "192.168.97.0/24\n")
    assert calls.startswith("network inspect kind --format")
    done, calls = _probe(tmp_path, "10.89.0.0/24 ", KIND_EXPERIMENTAL_DOCKER_NETWORK="lab-net")
    assert done.stdout == "10.89.0.0/24\n" and "network inspect lab-net" in calls


def test_node_network_probe_fails_clearly(tmp_path) -> None:
    done, _ = _probe(tmp_path, "fc00:f853:ccd:e793::/64 ")
    assert done.returncode == 1 and "set mesh-platform:observability.nodeCidrs" in done.stderr
    done, _ = _probe(tmp_path, "", docker_rc=1)
    assert done.returncode != 0 and done.stdout == ""


def test_ipv4_subnets_never_returns_nothing() -> None:
    import pytest

    from components.kind_cluster import ipv4_subnets

    assert ipv4_subnets("192.168.97.0/24\nfc00:f853:ccd:e793::/64\n") == ["192.168.97.0/24"]
    with pytest.raises(ValueError, match=r"set observability\.nodeCidrs"):
        ipv4_subnets("fc00:f853:ccd:e793::/64\n")


def test_node_network_probe_only_when_needed(like, run) -> None:
    probe = one(like("dev"), "command:local:Command", "cluster-kind-network")
    assert "docker network inspect" in probe.inputs["create"]
    assert "cluster-kind" in str(probe.dependencies)
    # lab has no observability; an explicit nodeCidrs needs no probe either.
    for rec in (like("lab"), run(observability={"enabled": True, "nodeCidrs": ["10.1.0.0/16"]})):
        assert not [r for r in rec.resources if r.name == "cluster-kind-network"]
