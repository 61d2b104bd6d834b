"""tools.render: the two files, their shape, and the clean error for a bad stack file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tools import render
from tools.engine import ROOT

STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("name", STACKS)
def test_every_stack_renders(name: str, tmp_path: Path) -> None:
    assert render.main(["--stack", name, "--out", str(tmp_path)]) == 0
    docs = list(yaml.safe_load_all((tmp_path / "manifests.yaml").read_text()))
    assert docs, "no Kubernetes objects"
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        assert doc["metadata"].get("name"), doc
    graph = json.loads((tmp_path / "graph.json").read_text())
    for r in graph["resources"]:
        assert set(r) == {"urn", "type", "name", "parent", "provider", "dependencies", "protect", "inputs"}
    types = {r["type"] for r in graph["resources"]}
    assert "kubernetes:helm.sh/v3:Release" in types and "mesh-platform:index:Calico" in types


def test_graph_dependencies_are_urns_of_recorded_resources(tmp_path: Path) -> None:
    render.main(["--stack", "dev", "--out", str(tmp_path)])
    resources = json.loads((tmp_path / "graph.json").read_text())["resources"]
    urns = {r["urn"] for r in resources}
    for r in resources:
        assert set(r["dependencies"]) <= urns, r["urn"]
        assert r["parent"] is None or r["parent"] in urns or r["parent"].endswith("pulumi:pulumi:Stack::mesh-platform-dev")
        assert r["provider"] is None or r["provider"] in urns


def test_config_file_renders_any_stack_file(tmp_path: Path) -> None:
    f = tmp_path / "Pulumi.mine.yaml"
    f.write_text("config:\n  mesh-platform:cluster:\n    workers: 3\n")
    assert render.main(["--config-file", str(f), "--out", str(tmp_path / "out")]) == 0
    graph = json.loads((tmp_path / "out" / "graph.json").read_text())
    assert any(r["urn"].startswith("urn:pulumi:mine::") for r in graph["resources"])


def test_secure_values_become_placeholders(tmp_path: Path) -> None:
    f = tmp_path / "Pulumi.sec.yaml"
    f.write_text("config:\n  mesh-platform:cluster:\n    workers: 1\n  aws:secretKey:\n    secure: v1:abc\n")
    assert render.main(["--config-file", str(f), "--out", str(tmp_path / "out")]) == 0
    assert "v1:abc" not in (tmp_path / "out" / "graph.json").read_text()


def test_bad_stack_file_exits_non_zero_with_the_clean_message(tmp_path: Path, capsys) -> None:
    f = tmp_path / "Pulumi.bad.yaml"
    f.write_text("config:\n  mesh-platform:cluster:\n    podSubnet: nope\n")
    assert render.main(["--config-file", str(f), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: invalid stack configuration:\n  mesh-platform:cluster.podSubnet: must be a network in CIDR")
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unknown_stack_lists_the_known_ones(capsys) -> None:
    assert render.main(["--stack", "nope"]) == 1
    assert "stacks here: " in capsys.readouterr().err
