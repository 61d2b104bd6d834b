"""offline.render: the two files, their shape, and the clean error for a bad stack file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from offline import render
from offline.engine import ROOT

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


def test_bad_stack_file_exits_2_with_the_clean_message_as_verify_does(tmp_path: Path, capsys) -> None:
    from offline.verify.__main__ import main as verify

    f = tmp_path / "Pulumi.bad.yaml"
    f.write_text("config:\n  mesh-platform:cluster:\n    podSubnet: nope\n")
    assert verify(["--config-file", str(f)]) == 2
    said = capsys.readouterr().err
    assert render.main(["--config-file", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == said
    assert err.startswith("error: invalid stack configuration:\n  mesh-platform:cluster.podSubnet: must be a network in CIDR")
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_unknown_stack_lists_the_known_ones(capsys) -> None:
    assert render.main(["--stack", "nope"]) == 2
    assert "stacks here: " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("- config: {}\n", "must be a mapping with a 'config:' key, not a list"),
        ("just words\n", "must be a mapping with a 'config:' key, not a str"),
        ("config:\n  - mesh-platform:cluster\n", "'config:' must map <namespace>:<key> names"),
        ("config: [unclosed\n", "is not valid YAML"),
        (b"config:\n  \xff\xfe: 1\n", "is not valid YAML"),
    ],
)
def test_a_stack_file_of_the_wrong_shape_is_one_line_and_exit_2(tmp_path: Path, capsys, content, says) -> None:
    f = tmp_path / "Pulumi.bad.yaml"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert render.main(["--config-file", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(f) in err and says in err, err
    assert not (tmp_path / "out").exists()


def test_a_directory_given_as_the_stack_file_is_exit_2(tmp_path: Path, capsys) -> None:
    assert render.main(["--config-file", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: stack file {tmp_path} is a directory; give a Pulumi.<stack>.yaml file\n"


def test_an_unreadable_stack_file_is_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    f = tmp_path / "Pulumi.locked.yaml"
    f.write_text("config: {}\n")
    real = Path.read_text

    def denied(self: Path, *args, **kwargs) -> str:
        if self == f:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    # Permission bits do not stop root (these tests may run as root), so the read itself is refused.
    monkeypatch.setattr(Path, "read_text", denied)
    assert render.main(["--config-file", str(f)]) == 2
    assert capsys.readouterr().err == f"error: cannot read stack file {f}: Permission denied\n"


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("mesh-platfrom:cluster", "did you mean mesh-platform:cluster?"),
        ("cluster", "has no namespace"),
        ("meshplatform:observability", "did you mean mesh-platform:observability?"),
        ("kubernets:context", "did you mean kubernetes:context?"),
        ("istio", "did you mean mesh-platform:istio?"),
    ],
)
def test_a_config_namespace_typo_names_the_key_it_meant(tmp_path: Path, capsys, key, meant) -> None:
    f = tmp_path / "Pulumi.typo.yaml"
    f.write_text(f"config:\n  {key}:\n    workers: 2\n")
    assert render.main(["--config-file", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{key}: " in err and meant in err, err
    assert not (tmp_path / "out").exists()


def test_unprefixed_key_suggests_the_project_key(tmp_path: Path, capsys) -> None:
    f = tmp_path / "Pulumi.typo.yaml"
    f.write_text("config:\n  cluster:\n    workers: 2\n")
    assert render.main(["--config-file", str(f)]) == 2
    assert "did you mean mesh-platform:cluster?" in capsys.readouterr().err


def test_provider_namespaces_are_allowed(tmp_path: Path) -> None:
    f = tmp_path / "Pulumi.providers.yaml"
    f.write_text(
        "config:\n  kubernetes:context: kind-x\n  aws:region: eu-west-1\n  pulumi:tags:\n    team: platform\n"
        "  mesh-platform:cluster:\n    workers: 0\n"
    )
    assert render.main(["--config-file", str(f), "--out", str(tmp_path / "out")]) == 0


def test_render_help_documents_options_defaults_and_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        render.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for text in ("--stack", "--config-file", "--out", "default: out/<stack>", "exit status:", "  2  bad input"):
        assert text in out


def test_a_bad_out_is_one_line_and_exit_2_before_any_render(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(render, "render", lambda args: pytest.fail("rendered although --out is unusable"))
    afile = tmp_path / "a-file"
    afile.write_text("")
    assert render.main(["--stack", "dev", "--out", str(afile)]) == 2
    assert (
        capsys.readouterr().err
        == f"error: --out {afile} exists and is not a directory; give a directory (default: out/<stack>)\n"
    )
    deep = tmp_path / "missing" / "out"
    assert render.main(["--stack", "dev", "--out", str(deep)]) == 2
    assert (
        capsys.readouterr().err
        == f"error: --out {deep}: its folder {tmp_path / 'missing'} does not exist; create it first or write elsewhere\n"
    )
    # A new directory in an existing folder is made, as is anything under the checkout's out/.
    assert render.out_dir(render_args(str(tmp_path / "new"))) == tmp_path / "new"
    assert render.out_dir(render_args(str(ROOT / "out/a/b"))) == ROOT / "out/a/b"


def render_args(out: str):
    import argparse

    return argparse.Namespace(out=out, stack="dev", config_file=None)
