"""README.md's commands run as written: every fenced ``sh`` block without a ``needs=`` tag runs, in
order, in a fresh copy of the checkout (a git repository whose ``origin/main`` is its own HEAD, as
in a clone); where a ``text`` block follows one, each of its lines is in what it printed. A tagged
block says what it needs that this machine need not have (Docker, Go, a cloud account ...)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from offline.engine import ROOT

#: What a tag says a block needs, and so why the run below skips it.
NEEDS = {
    "suite": "the whole test suite (it runs this test; CI runs it: .ci/run)",
    "go": "Go and the Go module proxy (the local control plane's build)",
    "docker": "Docker, kind, kubectl and the Pulumi CLI",
    "cluster": "a stack that is up (after make up)",
    "cloud": "an AWS account",
    "pulumi": "the Pulumi CLI and a stack's state",
}


@dataclass
class Block:
    line: int
    needs: tuple[str, ...]
    body: str
    shows: str | None = None
    """The ``text`` block right after it: lines its output contains."""


def blocks(text: str) -> list[Block]:
    out: list[Block] = []
    fence = re.compile(r"^```(\S+)(.*)$")
    lines = text.splitlines()
    i, last_end, last_was_sh = 0, -1, False
    while i < len(lines):
        m = fence.match(lines[i])
        if not m:
            i += 1
            continue
        lang, info, start = m.group(1), m.group(2), i
        end = next(k for k in range(i + 1, len(lines)) if lines[k] == "```")
        body = "\n".join(lines[i + 1 : end]) + "\n"
        if lang == "sh":
            tags = re.findall(r"needs=(\S+)", info)
            out.append(Block(start + 1, tuple(t for tag in tags for t in tag.split(",")), body))
        elif lang == "text" and last_was_sh and all(not x.strip() for x in lines[last_end + 1 : start]):
            out[-1].shows = body
        last_end, last_was_sh = end, lang == "sh"
        i = end + 1
    return out


README = (ROOT / "README.md").read_text()
BLOCKS = blocks(README)
RUNNABLE = [b for b in BLOCKS if not b.needs]


def test_every_block_is_runnable_or_says_what_it_needs() -> None:
    assert len(BLOCKS) >= 15
    for b in BLOCKS:
        unknown = set(b.needs) - set(NEEDS)
        assert not unknown, f"README.md:{b.line}: unknown needs= {sorted(unknown)}; known: {sorted(NEEDS)}"
    # The quick start's Python block, the preview's and the render's run; make test is the suite.
    runs = {line.split("#")[0].strip() for b in RUNNABLE for line in b.body.splitlines()}
    for command in (
        "make verify",
        "make render",
        "make verify STACK=dev BASE_REF=origin/main FORMAT=markdown",
        "make verify STACK=mine",
    ):
        assert command in runs, command
    assert [b.body.split("#")[0].strip() for b in BLOCKS if b.needs == ("suite",)] == ["make test"]


def test_the_parser_sees_tags_and_outputs() -> None:
    got = blocks("x\n```sh needs=go,docker\nmake a\n```\n\n```sh\nmake b\n```\n\n```text\nok\n```\n```yaml\na: 1\n```\n")
    assert [(b.needs, b.body, b.shows) for b in got] == [(("go", "docker"), "make a\n", None), ((), "make b\n", "ok\n")]


def test_the_python_commands_name_the_virtualenv() -> None:
    bare = [line for line in README.splitlines() if re.search(r"(?<![/\w])python3? -m ", line)]
    assert not bare, f"README.md runs python without the virtualenv: {bare}"


def test_the_quick_start_has_a_way_in_for_python_go_and_docker() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    heads = re.findall(r"^\*\*([^*]+)\*\*", quick, re.M)
    assert heads[:3] == ["Only Python", "Go", "Docker"]
    parts = re.split(r"^\*\*[^*]+\*\*", quick, flags=re.M)[1:4]
    assert "make verify" in parts[0] and "make render" in parts[0] and "make test" in parts[0]
    assert "make local-up" in parts[1] and "make itest" in parts[1]
    assert "make up" in parts[2] and "make doctor" in parts[2]


def _copy(tmp_path: Path) -> Path:
    """The checkout as a fresh clone would have it (tracked and new files, no output, no state)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    repo = tmp_path / "checkout"
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    # The suite's virtualenv, as if `make venv` had run here: a python that is the venv's.
    bin_dir = repo / ".venv/bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/usr/bin/env bash\nexec {ROOT / ".venv/bin/python"} "$@"\n')
    (bin_dir / "python").chmod(0o755)
    for stamp in (".runtime", ".dev"):
        (repo / ".venv" / stamp).touch()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=repo, check=True)
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=repo, check=True)
    return repo


@pytest.mark.slow
def test_every_runnable_readme_command_runs_as_written(tmp_path: Path) -> None:
    repo = _copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "PATH")}
    for b in RUNNABLE:
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", b.body],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, (
            f"README.md:{b.line} failed ({proc.returncode}):\n{b.body}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
        assert "Traceback" not in proc.stderr, f"README.md:{b.line}: {proc.stderr[-2000:]}"
        if b.shows:
            out = proc.stdout.splitlines()
            missing = [line for line in b.shows.splitlines() if line.strip() and line not in out]
            assert not missing, f"README.md:{b.line}: the output shown after it is not what it prints: {missing}"
    # What the runs made: the README says they write these.
    assert (repo / "out/dev/manifests.yaml").is_file() and (repo / "verify.json").is_file()
    assert (repo / "out/lab/graph.json").is_file()
