"""Makefile: a stack is created only when its stack file exists; `make up` shows the preview and
asks before it applies (YES=1 or CI: no question), naming on an EKS stack the AWS account, region
and what is billed; `make e2e` checks the tools once; make run outside the checkout's top directory
says where to run it. pulumi, kind, docker and kubectl are stand-ins; the AWS side is moto."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from standins import MAKE_TREE, ROOT, Standins, checkout, make, make_standins

STATE = r"""
ST=__STATE__
args=" $* "; stack=""; prev=""
for a in "$@"; do [ "$prev" = --stack ] && stack="$a"; prev="$a"; done
case "$args" in
  *" version "*) echo v3.272.0;;
  *" stack select "*)
    if [ -f "$ST/$stack" ]; then :
    elif [[ "$args" == *" --create "* ]]; then echo '{}' >"$ST/$stack"
    else echo "error: no stack named '$stack' found" >&2; exit 255; fi;;
  *" preview "*) echo "Previewing update ($stack):"; echo "    + 66 to create";;
  *" up "*) echo "Updating ($stack): done";;
esac
"""


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Standins]:
    repo = checkout(tmp_path, *MAKE_TREE)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    state = tmp_path / "state"
    state.mkdir()
    s = make_standins(tmp_path, "docker", "kind", "kubectl", "aws")
    s.add("pulumi", STATE.replace("__STATE__", str(state)))
    return repo, s


def run(repo: Path, s: Standins, *args: str, answer: str | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(repo), *args],
        env=s.env({"PYTHON": os.path.realpath(sys.executable), **env}),
        input=answer,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _stacks(repo: Path) -> str:
    return " ".join(sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (repo / "stacks").glob("Pulumi.*.yaml")))


# --- a typo never becomes a stack ----------------------------------------------------------------


@pytest.mark.parametrize("target", ["up", "preview", "destroy", "stack", "doctor", "preflight"])
def test_a_stack_without_a_stack_file_is_refused_with_the_list(repo, target: str) -> None:
    repo, s = repo
    proc = run(repo, s, target, "STACK=stagng", "YES=1")
    assert proc.returncode == 2
    assert "no stack stagng: there is no stacks/Pulumi.stagng.yaml" in proc.stderr
    assert f"stacks here: {_stacks(repo)}" in proc.stderr and "local" in _stacks(repo)
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert s.lines() == [], "nothing ran, pulumi least of all"
    assert not (repo / "stacks/Pulumi.stagng.yaml").exists()


def test_the_same_name_with_a_stack_file_is_created(repo) -> None:
    repo, s = repo
    (repo / "stacks/Pulumi.stagng.yaml").write_text((repo / "stacks/Pulumi.lab.yaml").read_text())
    proc = run(repo, s, "up", "STACK=stagng", "YES=1")
    assert proc.returncode == 0, proc.stderr
    assert any("stack select --create --stack stagng" in line for line in s.lines("pulumi"))


# --- make up asks -------------------------------------------------------------------------------


def _pulumi(s: Standins) -> list[str]:
    return [line.removeprefix("pulumi --non-interactive ") for line in s.lines("pulumi") if line != "pulumi version"]


@pytest.mark.parametrize("answer", ["n\n", "", "yes please\n"])
def test_up_shows_the_preview_and_applies_nothing_without_a_yes(repo, answer: str) -> None:
    repo, s = repo
    proc = run(repo, s, "up", "STACK=dev", answer=answer)
    assert proc.returncode != 0
    assert "+ 66 to create" in proc.stdout and "Apply these changes to stack dev? [y/N]" in proc.stdout
    assert "nothing applied to stack dev: answer y to apply (YES=1 applies without asking)" in proc.stderr
    assert "preview --diff --stack dev" in _pulumi(s)
    assert not [c for c in _pulumi(s) if c.startswith("up ")]


def test_up_applies_after_a_y_and_only_then(repo) -> None:
    repo, s = repo
    proc = run(repo, s, "up", "STACK=lab", answer="y\n")
    assert proc.returncode == 0, proc.stderr
    calls = _pulumi(s)
    assert calls.index("preview --diff --stack lab") < calls.index("up --yes --stack lab")
    # The lab's expiry is tagged only once the answer is yes.
    assert calls.index("preview --diff --stack lab") < next(i for i, c in enumerate(calls) if c.startswith("stack tag set"))


@pytest.mark.parametrize("how", [("YES=1",), ("CI=true",)])
def test_yes_or_ci_applies_without_asking(repo, how: tuple[str, ...]) -> None:
    repo, s = repo
    name, value = how[0].split("=")
    args, env = ((how[0],), {}) if name == "YES" else ((), {name: value})
    proc = run(repo, s, "up", "STACK=dev", *args, **env)
    assert proc.returncode == 0, proc.stderr
    assert "Apply these changes" not in proc.stdout
    assert [c for c in _pulumi(s) if not c.startswith("stack select")] == ["up --yes --stack dev"]


# --- an EKS stack names the account, the region and what is billed -----------------------------


@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_up_on_an_eks_stack_names_account_region_and_bill_before_asking(repo, moto_server) -> None:
    repo, s = repo
    # The cloud checks of `ready` (EKS's DescribeClusterVersions, which moto lacks) are
    # tests/test_preflight.py's; here they pass, and --billing runs for real against moto.
    wrapper = repo / ".venv/bin/python"
    real = ROOT / ".venv/bin/python"  # the virtualenv's (resolving the link would leave it)
    wrapper.unlink()
    wrapper.write_text(f'#!/usr/bin/env bash\n[ "$*" = "-m ops.preflight --stack staging" ] && exit 0\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    env = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    proc = run(repo, s, "up", "STACK=staging", answer="n\n", **env)
    assert proc.returncode != 0
    out = proc.stdout
    assert "nothing applied" in proc.stderr, proc.stderr
    assert "stack staging: AWS account arn:aws:sts::123456789012:user/moto (account 123456789012), region eu-west-1" in out
    assert (
        "billed by the hour while it runs: the EKS control plane (1 cluster); 2 x m6i.large nodes (the node group scales 2-4)"
        in out
    )
    assert "1 NAT gateway(s) (eks.natGateways Single)" in out
    assert out.index("billed by the hour") < out.index("Previewing update") < out.index("Apply these changes")
    assert not [c for c in _pulumi(s) if c.startswith("up ")]
    # With YES=1 the bill is still named, before anything is applied.
    s.log.write_text("")
    proc = run(repo, s, "up", "STACK=staging", "YES=1", **env)
    assert proc.returncode == 0, proc.stderr
    assert "billed by the hour" in proc.stdout


def test_a_kind_stack_names_no_bill(repo) -> None:
    repo, s = repo
    proc = run(repo, s, "up", "STACK=dev", "YES=1")
    assert proc.returncode == 0 and "billed" not in proc.stdout


# --- the tools are checked once, by make e2e too -------------------------------------------------


def test_e2e_names_a_missing_tool_once_and_runs_nothing(repo) -> None:
    repo, s = repo
    (s.bin / "kind").unlink()
    proc = run(repo, s, "e2e")
    assert proc.returncode != 0
    assert proc.stderr.count("missing for stack lab: kind") == 1, proc.stderr
    assert _pulumi(s) == []


def test_e2e_checks_the_tools_once_then_up_and_destroy(repo) -> None:
    repo, s = repo
    (repo / "scripts/e2e.sh").write_text("#!/usr/bin/env bash\nexit 0\n")
    proc = run(repo, s, "e2e")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("doctor: stack lab") == 1
    assert "up --yes --stack lab" in _pulumi(s)


# --- make from elsewhere -------------------------------------------------------------------------


def test_make_from_a_subdirectory_says_where_to_run_it(repo) -> None:
    repo, s = repo
    proc = subprocess.run(
        ["make", "--no-print-directory", "-f", "../Makefile", "verify"],
        cwd=repo / "stacks",
        env=s.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert f"run make in the checkout's top directory: cd {repo.resolve()}" in proc.stderr
    assert proc.stderr.count("\n") == 1 and s.lines() == []
    # The same from the top directory is no error of that kind.
    assert "top directory" not in make(repo, s, "help").stderr
