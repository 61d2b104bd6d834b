"""Stand-in binaries (kind, pulumi, kubectl, docker, ...) that record every call and then behave
as the test scripts them to, for exercising the Makefile and shell scripts without Docker, a
cluster or the Pulumi CLI.

Each stand-in appends one line per call to a log: the tool, its arguments, and the values of the
environment variables named in ``watch``. Its behaviour is a bash snippet (``"$@"`` are its
arguments); the default is to succeed silently.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_ARG, _ENV = "\x1f", "\x1e"


def _pin(name: str) -> str:
    import re

    found = re.search(rf'^{name} = "([^"]+)"', (ROOT / "mesh_platform/versions.py").read_text(), re.M)
    assert found, name
    return found.group(1)


def _kind_pin() -> str:
    return _pin("KIND_VERSION")


#: The kubectl minor a user installs as the README asks: the stack's default Kubernetes minor.
KUBECTL_MINOR = _pin("KUBERNETES_VERSION").split(".")[1]


#: How each tool answers the version question of `make doctor` (ops.preflight --tools), in the
#: form the real one prints, at a version the README asks for: a user who installed what it says.
#: kubectl's JSON is `kubectl version --client -o json`; docker's the engine's `{{.Server.Version}}`.
VERSION_ANSWERS = {
    "docker": 'if [ "$1" = version ]; then echo 27.3.1; exit 0; fi',
    "kind": f'if [ "$1" = version ]; then echo "kind {_kind_pin()} go1.25.1 linux/amd64"; exit 0; fi',
    "kubectl": 'if [ "$1 $2" = "version --client" ]; then echo \''
    + f'{{"clientVersion":{{"major":"1","minor":"{KUBECTL_MINOR}","gitVersion":"v1.{KUBECTL_MINOR}.2"}}}}'
    + "'; exit 0; fi",
    "aws": 'if [ "$1" = --version ]; then echo "aws-cli/2.31.0 Python/3.13.7 Linux/6.8.0 exe/x86_64.ubuntu.24"; exit 0; fi',
}


@dataclass
class Call:
    tool: str
    args: list[str]
    env: dict[str, str]

    @property
    def line(self) -> str:
        return " ".join([self.tool, *self.args])


@dataclass
class Standins:
    bin: Path
    log: Path
    watch: tuple[str, ...] = ()
    behaviours: dict[str, str] = field(default_factory=dict)

    def add(self, tool: str, behaviour: str = "exit 0", *, version: bool = True) -> None:
        """(Re)define ``tool``: record the call, then run ``behaviour`` (bash). A tool `make doctor`
        asks for its version answers as ``VERSION_ANSWERS`` says, unless ``version`` is false."""
        if version and tool in VERSION_ANSWERS:
            behaviour = f"{VERSION_ANSWERS[tool]}\n{behaviour}"
        names = " ".join(self.watch)
        script = f"""#!/usr/bin/env bash
# One write per call: calls in a pipeline run at once, and pieces written apart would interleave.
line="$(printf '%s' {tool!r}; for a in "$@"; do printf '{_ARG}%s' "$a"; done
  for v in {names}; do printf '{_ENV}%s=%s' "$v" "${{!v-<unset>}}"; done; printf x)"
printf '%s\\n' "${{line%x}}" >>{str(self.log)!r}
{behaviour}
"""
        path = self.bin / tool
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def calls(self, tool: str | None = None) -> list[Call]:
        out = []
        if not self.log.exists():
            return out
        for raw in self.log.read_text().split("\n"):
            if not raw:
                continue
            head, *envs = raw.split(_ENV)
            name, *args = head.split(_ARG)
            if tool is None or name == tool:
                out.append(Call(name, args, dict(e.split("=", 1) for e in envs)))
        return out

    def lines(self, tool: str | None = None) -> list[str]:
        return [c.line for c in self.calls(tool)]

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment whose PATH finds the stand-ins first."""
        keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
        keep["PATH"] = f"{self.bin}:{os.environ['PATH']}"
        return {**keep, **(extra or {})}


def make_standins(tmp: Path, *tools: str, watch: tuple[str, ...] = ()) -> Standins:
    bin_dir = tmp / "standin-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    s = Standins(bin_dir, tmp / "calls.log", watch)
    for tool in tools:
        s.add(tool)
    return s


#: What the Makefile reads: the tree a test copies to run ``make`` in a checkout of its own.
MAKE_TREE = (
    "Makefile",
    "Pulumi.yaml",
    "requirements.txt",
    "requirements-dev.txt",
    "stacks",
    "scripts",
    "offline",
    "ops",
    "mesh_platform",
    "components",
)


def checkout(tmp: Path, *paths: str) -> Path:
    """A copy of the given repository paths in ``tmp/repo``, with a .venv that counts as built."""
    repo = tmp / "repo"
    repo.mkdir()
    for rel in paths:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, repo / rel)
        else:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    venv_bin = repo / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    real = ROOT / ".venv" / "bin" / "python"
    (venv_bin / "python").symlink_to(real if real.exists() else shutil.which("python3"))
    for marker in (".runtime", ".dev"):
        (repo / ".venv" / marker).touch()
    return repo


def make(repo: Path, s: Standins, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(repo), *args],
        env=s.env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
