"""Makefile: `make help` lists every target and variable; up/preview/destroy check the tools they
need before the slow virtualenv install, which says what it is doing and fails when pip fails."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from standins import MAKE_TREE, ROOT, Standins, checkout, make, make_standins

VARIABLES = ("STACK", "FORMAT", "BASE_REF", "OUT", "BACKEND", "SECRETS_PROVIDER", "STATE_BUCKET")


def _targets() -> list[str]:
    return sorted(set(re.findall(r"^([a-z0-9][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M)))


def _help(tmp_path: Path, *args: str) -> str:
    s = make_standins(tmp_path)
    proc = make(ROOT, s, "help", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help_lists_every_target(tmp_path: Path) -> None:
    out = _help(tmp_path)
    listed = re.findall(r"^  make (\S+)", out, re.M)
    assert "e2e" in _targets()
    assert listed == [t for t in re.findall(r"^([a-z0-9][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M)]
    assert sorted(listed) == _targets()


def test_help_lists_the_variables_with_their_values_now(tmp_path: Path) -> None:
    out = _help(tmp_path)
    for name in VARIABLES:
        assert re.search(rf"^  {name} +\S", out, re.M), name
    assert "now: file://" in out and "now: passphrase" in out
    prod = _help(tmp_path, "STACK=prod", "BASE_REF=origin/main")
    assert "now: s3://mesh-platform-state?region=eu-west-1" in prod and "now: awskms://alias/mesh-platform-state" in prod
    assert "now: origin/main" in prod


def test_help_prints_values_not_variable_names_and_every_stack(tmp_path: Path) -> None:
    out = _help(tmp_path)
    text = (ROOT / "Makefile").read_text()
    names = set(re.findall(r"^([A-Z][A-Z0-9_]+) *[:?]?=", text, re.M))
    assert "STACKS" in names
    described = "\n".join(line for line in out.splitlines() if not line.lstrip().startswith("now:"))
    shown_names = {n for n in names if re.search(rf"(?<![A-Za-z_]){n}(?![A-Za-z_])", described)}
    # Only the variables the help lists by name appear as names; any other is a value left unexpanded.
    assert shown_names <= set(re.search(r"^HELP_VARS := (.*)$", text, re.M).group(1).split()), shown_names
    assert "$(" not in out
    stacks = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
    assert "local" in stacks
    assert f"the stacks here: {' '.join(stacks)}" in out


def test_the_first_install_says_what_it_installs_and_how_big(fresh) -> None:
    repo, s = fresh
    proc = make(repo, s, "venv")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    first = (
        ".venv is missing or older than requirements-dev.txt: installing the pinned packages once (up to about 1 GB under .venv)"
    )
    assert lines[0] == first and lines[1].startswith("[1/2] creating .venv")


# --- prerequisites before the install ----------------------------------------------------------

# A python3 whose `-m venv` makes a .venv/bin/python that plays pip (and fails if PIP_FAILS is set);
# anything else (`make doctor`: python3 -m ops.preflight --tools) is the real Python.
PYTHON = r"""
if [ "$1 $2" != "-m venv" ]; then exec __REAL__ "$@"; fi
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  cat >"$3/bin/python" <<'PY'
#!/usr/bin/env bash
if [ "$1 $2" = "-m pip" ]; then
  echo "Collecting pulumi==3.272.0"; echo "  Downloading pulumi.whl (300 kB)"; echo "Installing collected packages: pulumi"
  if [ -n "${PIP_FAILS:-}" ]; then echo "ERROR: No matching distribution found for pulumi==3.272.0" >&2; exit 1; fi
  echo "Successfully installed pulumi-3.272.0"; exit 0
fi
exec __REAL__ "$@"
PY
  chmod +x "$3/bin/python"
fi
"""


@pytest.fixture
def fresh(tmp_path: Path) -> tuple[Path, Standins]:
    """A checkout without .venv, stand-ins for every tool and for the python that makes .venv."""
    repo = checkout(tmp_path, *MAKE_TREE)
    import shutil

    shutil.rmtree(repo / ".venv")
    s = make_standins(tmp_path, "docker", "kind", "kubectl", "aws")
    s.add("pulumi", 'case "$*" in *version*) echo v3.272.0;; esac')
    s.add("python3", PYTHON.replace("__REAL__", sys.executable))
    return repo, s


@pytest.mark.parametrize("target", ["up", "preview", "destroy"])
def test_a_missing_tool_fails_before_the_install(fresh, target: str) -> None:
    repo, s = fresh
    (s.bin / "kind").unlink()
    proc = make(repo, s, target, "STACK=dev")
    assert proc.returncode != 0
    assert "missing for stack dev: kind" in proc.stderr
    assert "python3 -m venv .venv" not in s.lines("python3") and not (repo / ".venv").exists()


@pytest.mark.parametrize("target", ["up", "preview", "destroy"])
def test_a_too_old_pulumi_fails_before_the_install(fresh, target: str) -> None:
    repo, s = fresh
    s.add("pulumi", "echo v3.100.0")
    proc = make(repo, s, target, "STACK=dev")
    assert proc.returncode != 0 and "Pulumi CLI 3.211.0 or newer is needed, found 3.100.0" in proc.stdout
    assert "wrong for stack dev: pulumi" in proc.stderr
    assert "python3 -m venv .venv" not in s.lines("python3")


def test_docker_not_running_fails_before_the_install(fresh) -> None:
    repo, s = fresh
    s.add("docker", 'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2; exit 1', version=False)
    proc = make(repo, s, "up", "STACK=dev")
    assert proc.returncode != 0 and "is Docker running?" in proc.stdout and "wrong for stack dev: docker" in proc.stderr
    assert "python3 -m venv .venv" not in s.lines("python3")


def test_the_install_shows_its_steps_then_the_stack_is_selected(fresh) -> None:
    repo, s = fresh
    proc = make(repo, s, "preview", "STACK=dev")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    steps = [
        "[1/2] creating .venv with python3",
        "[2/2] installing requirements.txt into .venv (about 45 s)",
        "Collecting pulumi==3.272.0",
        "Installing collected packages: pulumi",
        "Successfully installed pulumi-3.272.0",
    ]
    assert [line for line in lines if line in steps] == steps
    assert "  Downloading pulumi.whl (300 kB)" not in lines
    assert [c for c in s.lines("python3") if "venv" in c] == ["python3 -m venv .venv"]
    assert [line for line in s.lines("pulumi") if "preview" in line] == ["pulumi --non-interactive preview --diff --stack dev"]


def test_a_failing_install_fails_the_target_and_leaves_no_stamp(fresh) -> None:
    repo, s = fresh
    proc = make(repo, s, "preview", "STACK=dev", env={"PIP_FAILS": "1"})
    assert proc.returncode != 0
    assert "No matching distribution found" in proc.stderr
    assert not (repo / ".venv/.runtime").exists()
    assert not [line for line in s.lines("pulumi") if "preview" in line]
