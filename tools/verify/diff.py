"""What a change does to traffic: the same stack rendered at a git ref, compared on routes and flows.

The base is checked out into a temporary ``git worktree`` and rendered there with *its own*
program and stack file (``python -m tools.render`` in that tree, with this interpreter), so the
comparison is between two real revisions. Routes and flows are then computed for both sides by
this revision's analysers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tools.engine import ROOT
from tools.verify import Flow, Route


class BaseRefError(RuntimeError):
    pass


def _git(*args: str, cwd: Path = ROOT) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BaseRefError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def render_at(ref: str, stack: str, repo: Path = ROOT) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(manifests, graph) of ``stack`` as of git ``ref``."""
    _git("rev-parse", "--verify", f"{ref}^{{commit}}", cwd=repo)
    with tempfile.TemporaryDirectory(prefix="mesh-base-") as tmp:
        tree, out = Path(tmp, "tree"), Path(tmp, "out")
        _git("worktree", "add", "--detach", "--quiet", str(tree), ref, cwd=repo)
        try:
            if not (tree / "stacks" / f"Pulumi.{stack}.yaml").exists():
                return [], {"resources": []}  # the stack is new in this change
            proc = subprocess.run(
                [sys.executable, "-m", "tools.render", "--stack", stack, "--out", str(out)],
                cwd=tree,
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "PYTHONPATH": str(tree)},
            )
            if proc.returncode != 0:
                raise BaseRefError(f"rendering {stack} at {ref} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
            manifests = [d for d in yaml.safe_load_all((out / "manifests.yaml").read_text()) if d]
            graph = json.loads((out / "graph.json").read_text())
            return manifests, graph
        finally:
            _git("worktree", "remove", "--force", str(tree), cwd=repo)


def compare(base_routes: list[Route], routes: list[Route], base_flows: list[Flow], flows: list[Flow]) -> dict[str, list[str]]:
    """``+``/``-`` lines for routes and for the flows both layers allow."""

    def flow_set(fs: list[Flow]) -> set[str]:
        return {str(f) for f in fs if f.layer == "combined"}

    before_r, after_r = {str(r) for r in base_routes}, {str(r) for r in routes}
    before_f, after_f = flow_set(base_flows), flow_set(flows)
    return {
        "routes": [f"- {x}" for x in sorted(before_r - after_r)] + [f"+ {x}" for x in sorted(after_r - before_r)],
        "flows": [f"- {x}" for x in sorted(before_f - after_f)] + [f"+ {x}" for x in sorted(after_f - before_f)],
    }
