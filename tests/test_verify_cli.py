"""python -m offline.verify: formats, exit status, manifests mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from verify_cases import DENY_ALL, SEED_DENY_ALL, allow, netpol, shop

from offline.verify.__main__ import main
from offline.verify.report import COMMENT_MARKER


def _write(tmp_path: Path, objs) -> Path:
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump_all(objs))
    return f


def test_stack_json_has_the_documented_shape(capsys) -> None:
    assert main(["--stack", "dev", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["violations"] == []
    assert {"src": "demo/client", "dst": "demo/my-service", "port": "5000", "layer": "combined"} in out["flows"]
    assert {"host": "localhost", "path": "/v1", "service": "demo/my-service", "subset": "v1", "weight": 100} in out["routes"]


def test_markdown_has_the_comment_marker_and_a_mermaid_diagram(capsys) -> None:
    assert main(["--stack", "dev", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(COMMENT_MARKER)
    assert "```mermaid\nflowchart LR" in out and 'host_localhost -->|"/v1 100%"| subset_demo_my_service_v1' in out


def test_manifests_mode_fails_on_the_seed_and_passes_when_done_right(tmp_path: Path, capsys) -> None:
    assert main(["--manifests", str(_write(tmp_path, shop(netpol("shop", "deny-all", SEED_DENY_ALL))))]) == 1
    assert "[admits-all] NetworkPolicy shop/deny-all" in capsys.readouterr().out
    good = shop(netpol("shop", "deny-all", DENY_ALL), *allow("shop", "frontend", "api", 8080))
    assert main(["--manifests", str(_write(tmp_path, good)), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [f for f in out["flows"] if f["layer"] == "cni"] == [
        {"src": "shop/frontend", "dst": "shop/api", "port": "8080", "layer": "cni"}
    ]


def test_bad_stack_is_exit_2_with_the_clean_message(tmp_path: Path, capsys) -> None:
    f = tmp_path / "Pulumi.bad.yaml"
    f.write_text("config:\n  mesh-platform:istio:\n    version: latest\n")
    assert main(["--config-file", str(f)]) == 2
    assert "mesh-platform:istio.version: must be an exact version" in capsys.readouterr().err


def test_base_ref_head_reports_no_change_on_a_clean_tree(capsys) -> None:
    import subprocess

    from offline.engine import ROOT

    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "stacks", "components", "__main__.py"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert main(["--stack", "lab", "--base-ref", "HEAD", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["diff"]) == {"ref", "routes", "flows"}
    if dirty:
        pytest.skip(f"the tree differs from HEAD, so a change may be reported: {dirty.split()}")
    assert out["diff"] == {"ref": "HEAD", "routes": [], "flows": []}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "no Kubernetes objects"),
        ("# only a comment\n---\n# and another\n", "no Kubernetes objects"),
        ("- apiVersion: v1\n  kind: Namespace\n", "document 1 is a YAML list, not a Kubernetes object"),
        ("foo: bar\n", "document 1 is no Kubernetes object (no apiVersion, kind, metadata.name)"),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nname: b\n", "document 2 is no Kubernetes object"),
        ("kind: List\nitems: [{apiVersion: v1, kind: Namespace}]\n", "no Kubernetes object (no metadata.name)"),
        ("a: [\n", "cannot read"),
    ],
)
def test_bad_manifests_are_exit_2_with_one_line_naming_the_file(tmp_path: Path, capsys, content: str, says: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    assert main(["--manifests", str(f)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert str(f) in err and says in err and "OK" not in err


@pytest.mark.parametrize("version", ["9.9", "1.2", "latest", "1.99.0"])
def test_an_unknown_kubernetes_version_is_exit_2_naming_it(tmp_path: Path, capsys, version: str) -> None:
    good = _write(tmp_path, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}])
    assert main(["--manifests", str(good), "--kubernetes-version", version]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and repr(version) in err and "1.25 to 1.37" in err


def test_a_known_kubernetes_version_with_a_patch_is_accepted(tmp_path: Path) -> None:
    good = _write(tmp_path, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}])
    assert main(["--manifests", str(good), "--kubernetes-version", "v1.33.4"]) == 0


def test_help_documents_the_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "0 nothing is violated" in out and "1 violations were found" in out and "2 a usage or input error" in out


@pytest.mark.parametrize(
    ("out", "says"),
    [
        (".", "is a directory; give a file name such as"),
        ("missing/verify.json", "its folder {tmp}/missing does not exist; create it first or write elsewhere"),
    ],
)
def test_a_bad_out_is_one_line_and_exit_2_before_any_render(tmp_path, capsys, monkeypatch, out: str, says: str) -> None:
    from offline.verify import pipeline

    monkeypatch.setattr(pipeline, "verify_stack", lambda *a: pytest.fail("rendered although --out is unusable"))
    target = tmp_path if out == "." else tmp_path / out
    assert main(["--stack", "dev", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {target}") and says.format(tmp=tmp_path) in err and err.count("\n") == 1


def test_an_out_inside_the_checkouts_out_folder_gets_its_folder(tmp_path, monkeypatch) -> None:
    from offline.verify import __main__ as cmd
    from offline.verify import pipeline

    monkeypatch.setattr(pipeline.engine, "ROOT", tmp_path)
    target = tmp_path / "out" / "a" / "verify.json"
    assert cmd.out_file(target) == target and target.parent.is_dir()
    with pytest.raises(cmd.UsageError, match="does not exist"):
        cmd.out_file(tmp_path / "elsewhere" / "verify.json")
