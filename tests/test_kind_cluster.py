"""KindCluster: kind config, create/delete commands, secret kubeconfig, the provider."""

from __future__ import annotations

import yaml
from conftest import one

from components.kind_cluster import KindClusterArgs, kind_config
from tools.engine import SECRET


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


def test_command_creates_and_deletes_the_cluster(stack) -> None:
    dev = stack("dev")
    cmd = one(dev, "command:local:Command", "cluster-kind")
    assert "kind create cluster" in cmd.inputs["create"] and "kind get kubeconfig" in cmd.inputs["create"]
    assert cmd.inputs["delete"] == 'kind delete cluster --name "$KIND_CLUSTER"'
    assert cmd.inputs["environment"] == {"KIND_CLUSTER": "mesh-dev"}
    cfg = yaml.safe_load(cmd.inputs["stdin"])
    assert cfg["name"] == "mesh-dev" and len(cfg["nodes"]) == 2
    # A config change replaces the cluster: the config is the trigger.
    assert cmd.inputs["triggers"] == [cmd.inputs["stdin"]]


def test_lab_is_control_plane_only(stack) -> None:
    cfg = yaml.safe_load(one(stack("lab"), "command:local:Command", "cluster-kind").inputs["stdin"])
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane"]


def test_kubeconfig_is_secret_and_feeds_the_provider(stack) -> None:
    dev = stack("dev")
    provider = one(dev, "pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == SECRET
    assert provider.inputs["clusterIdentifier"] == "mesh-dev"
    assert provider.inputs["deleteUnreachable"] == "true"
    assert dev.outputs["kubeconfig"] == SECRET


def test_every_kubernetes_resource_uses_the_cluster_provider(stack) -> None:
    dev = stack("dev")
    provider = one(dev, "pulumi:providers:kubernetes")
    k8s = [r for r in dev.resources if r.type.startswith("kubernetes:")]
    assert k8s
    assert all(r.provider == provider.urn for r in k8s), [r.urn for r in k8s if r.provider != provider.urn]
