"""`make doctor` (ops.preflight --tools): every prerequisite of the stack at once, each version in
its range, the Docker engine running, the host ports free, and for each missing or wrong one its
install lines for Debian/Ubuntu and macOS at the pinned version. The tools are stand-ins answering
as the real ones print; the ranges come from the README's Prerequisites and kubernetes.io's
version-skew policy (kubectl: one minor older or newer than the API server)."""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import pytest
from standins import ROOT, Standins, make_standins

from mesh_platform import versions
from ops import preflight

K8S = versions.KUBERNETES_VERSION
MINOR = int(K8S.split(".")[1])
KUBECTL = (
    """if [ "$1 $2" = "version --client" ]; then echo '{"clientVersion":{"major":"1","minor":"%s","gitVersion":"v1.%s.0"}}'; fi"""
)


@pytest.fixture
def tools(tmp_path: Path, monkeypatch) -> Standins:
    """Every tool in range; PATH holds only the stand-ins and bash (never this machine's tools)."""
    s = make_standins(tmp_path, "docker", "kind", "kubectl", "aws")
    s.add("pulumi", "echo v3.272.0")
    only = tmp_path / "sys-bin"
    only.mkdir()
    (only / "bash").symlink_to(shutil.which("bash"))
    monkeypatch.setenv("PATH", f"{s.bin}:{only}")
    return s


def _check(stack: str, capsys) -> tuple[int, str, str]:
    rc = preflight.main(["--tools", "--stack", stack])
    got = capsys.readouterr()
    return rc, got.out, got.err


def test_every_tool_in_range_passes(tools, capsys) -> None:
    rc, out, err = _check("dev", capsys)
    assert rc == 0, out + err
    assert "doctor: stack dev (cluster.provider kind) needs docker, kind, kubectl, pulumi, port 8080, port 8443" in out
    assert "FAIL" not in out and err == ""


def test_everything_missing_and_wrong_is_said_at_once(tools, capsys) -> None:
    (tools.bin / "kind").unlink()
    (tools.bin / "pulumi").unlink()
    tools.add("docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1", version=False)
    tools.add("kubectl", KUBECTL % (MINOR - 3, MINOR - 3), version=False)
    rc, out, err = _check("dev", capsys)
    assert rc == 1
    fails = re.findall(r"^  FAIL  (\S+):", out, re.M)
    assert fails == ["docker", "kind", "kubectl", "pulumi"]
    assert "is Docker running?" in out
    assert f"kubectl 1.{MINOR - 3} is outside 1.{MINOR - 1}-1.{MINOR + 1}" in out
    assert err.startswith("missing for stack dev: kind pulumi; wrong for stack dev: docker kubectl")
    assert err.count("\n") == 1


def test_each_missing_tool_has_its_install_lines_at_the_pinned_version(tools, capsys) -> None:
    for tool in ("kind", "kubectl", "pulumi"):
        (tools.bin / tool).unlink()
    _, out, _ = _check("dev", capsys)
    sdk = re.search(r"^pulumi==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    for tool, pinned in (
        ("kind", f"/dl/{versions.KIND_VERSION}/"),
        ("kubectl", f"stable-{K8S}.txt"),
        ("pulumi", f"--version {sdk}"),
    ):
        block = out.split(f"FAIL  {tool}:", 1)[1].split("FAIL", 1)[0]
        debian = re.search(r"Debian/Ubuntu: (.*)", block).group(1)
        macos = re.search(r"macOS: +(.*)", block).group(1)
        assert pinned in debian and pinned in macos, (tool, block)
    assert "kind-linux-" in out and "kind-darwin-" in out and "/bin/linux/" in out and "/bin/darwin/" in out


@pytest.mark.parametrize(("skew", "ok"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_kubectl_within_one_minor_of_the_stacks_kubernetes(tools, capsys, skew: int, ok: bool) -> None:
    tools.add("kubectl", KUBECTL % (MINOR + skew, MINOR + skew), version=False)
    rc, out, _ = _check("dev", capsys)
    assert (rc == 0) is ok, out


def test_kubectl_range_follows_the_stacks_kubernetes_version(tools, capsys, tmp_path, monkeypatch) -> None:
    root = _tree(tmp_path, 'config:\n  mesh-platform:cluster:\n    provider: kind\n    kubernetesVersion: "1.34"\n')
    monkeypatch.setattr(preflight, "ROOT", root)
    tools.add("kubectl", KUBECTL % ("36", "36"), version=False)
    rc, out, _ = _check("mine", capsys)
    assert rc == 1 and "outside 1.33-1.35" in out


@pytest.mark.parametrize(
    ("answer", "ok"),
    [("aws-cli/2.31.0 Python/3.13.7 Linux/6.8", True), ("aws-cli/1.45.11 Python/3.11.7 Linux/6.8 botocore/1.40", False)],
)
def test_eks_stacks_need_aws_cli_v2(tools, capsys, answer: str, ok: bool) -> None:
    tools.add("aws", f'echo "{answer}"', version=False)
    rc, out, _ = _check("staging", capsys)
    assert "needs aws, kubectl, pulumi" in out
    assert (rc == 0) is ok, out
    if not ok:
        assert "AWS CLI 1.45.11 is not AWS CLI v2" in out and "awscli-exe-linux" in out and "AWSCLIV2.pkg" in out


def test_kind_must_be_the_pinned_release(tools, capsys) -> None:
    tools.add("kind", 'echo "kind v0.20.0 go1.20 linux/amd64"', version=False)
    rc, out, _ = _check("dev", capsys)
    assert rc == 1 and f"kind v0.20.0 is not v{versions.KIND_VERSION.lstrip('v').rsplit('.', 1)[0]}.x" in out


def test_an_old_docker_engine_or_pulumi_is_wrong(tools, capsys) -> None:
    tools.add("docker", 'if [ "$1" = version ]; then echo 20.10.7; fi', version=False)
    tools.add("pulumi", "echo v3.190.0")
    rc, out, _ = _check("dev", capsys)
    assert rc == 1
    assert "Docker Engine 20.10 is older than 24" in out and "Pulumi CLI 3.211.0 or newer is needed, found 3.190.0" in out


def test_the_local_stack_needs_only_pulumi(tools, capsys) -> None:
    for tool in ("docker", "kind", "kubectl", "aws"):
        (tools.bin / tool).unlink()
    rc, out, _ = _check("local", capsys)
    assert rc == 0 and "needs pulumi" in out


def _tree(tmp_path: Path, stack_file: str) -> Path:
    root = tmp_path / "tree"
    (root / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "requirements.txt", root)
    (root / "stacks/Pulumi.mine.yaml").write_text(stack_file)
    return root


def test_a_taken_host_port_is_named_with_its_key(tools, capsys, tmp_path, monkeypatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        root = _tree(tmp_path, f"config:\n  mesh-platform:cluster:\n    name: mine\n    kind:\n      httpHostPort: {port}\n")
        monkeypatch.setattr(preflight, "ROOT", root)
        rc, out, err = _check("mine", capsys)
        assert rc == 1 and f"host port {port} (cluster.kind.httpHostPort) is taken" in out
        assert "wrong for stack mine: port" in err
        # The stack's own kind cluster runs: the port is its own, nothing to say.
        tools.add("kind", 'if [ "$1 $2" = "get clusters" ]; then echo mine; fi')
        rc, out, _ = _check("mine", capsys)
        assert rc == 0, out
    monkeypatch.setattr(preflight, "ROOT", ROOT)


def test_the_stack_file_is_read_without_pyyaml(tmp_path, monkeypatch) -> None:
    """Before .venv exists the system Python may have no PyYAML: the plain reader sees the same."""
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(
        '# c\nconfig:\n  mesh-platform:cluster:\n    provider: kind\n    kubernetesVersion: "1.34"\n    kind:\n'
        "      httpHostPort: 9080\n  mesh-platform:apps:\n    enabled: false\n"
    )
    with_yaml = preflight._cluster_config(path)
    monkeypatch.setitem(__import__("sys").modules, "yaml", None)
    assert (
        preflight._cluster_config(path)
        == with_yaml
        == {
            "provider": "kind",
            "kubernetesVersion": "1.34",
            "kind": {"httpHostPort": 9080},
        }
    )


def test_an_unknown_stack_is_one_line_and_exit_2(capsys) -> None:
    rc, _, err = _check("stagng", capsys)
    assert rc == 2 and err.startswith("error: no stack file stacks/Pulumi.stagng.yaml; stacks here: dev, lab, local")


def test_doctor_runs_on_the_standard_library_alone(tmp_path) -> None:
    """`make doctor` runs before .venv exists: with no site packages at all, it still answers."""
    import subprocess
    import sys

    proc = subprocess.run(
        [os.path.realpath(sys.executable), "-S", "-m", "ops.preflight", "--tools", "--stack", "local"],
        cwd=ROOT,
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "missing for stack local: pulumi" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
