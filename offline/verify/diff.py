"""What a change does to traffic: the same stack verified at a git ref, compared on routes and flows.

The base is exported with ``git archive`` into a temporary directory and verified there by *its own*
code with *its own* stack file and settings (``python -m offline.verify --stack <stack> --format json``
in that tree, with this interpreter). The diff is then the difference between two independent
verify runs: the base's JSON and this revision's result. A stack that does not exist at the ref has
an empty base; a ref git does not know, or a base that cannot be verified, is an input error.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from offline.engine import ROOT
from offline.verify import Flow, Route


class BaseRefError(RuntimeError):
    pass


def _git(*args: str, cwd: Path = ROOT, binary: bool = False) -> Any:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise BaseRefError(f"git {' '.join(args)}: {' '.join(proc.stderr.decode(errors='replace').split())}")
    return proc.stdout if binary else proc.stdout.decode()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _inside(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's ``data`` filter, skipping (not failing on) a link that points outside the tree."""
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


def resolve(ref: str, repo: Path = ROOT) -> str:
    """The commit ``ref`` names; a clean error when git knows none."""
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo).strip()
    except BaseRefError:
        raise BaseRefError(f"--base-ref {ref!r} is not a commit git knows here") from None


def verifier_module(tree: Path) -> str:
    """Where a revision keeps its verifier: ``offline/verify``, or ``tools/verify`` before the layout
    by lifecycle, so the pull request that moved it still compares with its base."""
    return "offline.verify" if (tree / "offline" / "verify").is_dir() else "tools.verify"


def verify_at(ref: str, stack: str, repo: Path = ROOT) -> dict[str, Any] | None:
    """The JSON result of ``stack`` verified at git ``ref`` by that ref's own code; None when the
    stack does not exist there."""
    commit = resolve(ref, repo)
    with tempfile.TemporaryDirectory(prefix="mesh-base-") as tmp:
        tree = Path(tmp)
        with tarfile.open(fileobj=io.BytesIO(_git("archive", "--format=tar", commit, cwd=repo, binary=True))) as tar:
            tar.extractall(tree, filter=_inside)  # noqa: S202 - data filter: nothing lands outside the tree
        if not (tree / "stacks" / f"Pulumi.{stack}.yaml").exists():
            return None  # the stack is new in this change
        proc = subprocess.run(
            [sys.executable, "-m", verifier_module(tree), "--stack", stack, "--format", "json"],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPATH": str(tree)},
        )
        if proc.returncode not in (0, 1):
            raise BaseRefError(f"cannot verify {stack} at {ref}: {_last_line(proc.stderr or proc.stdout)}")
        try:
            result = json.loads(proc.stdout)
            result["routes"], result["flows"]
        except (ValueError, KeyError, TypeError):
            raise BaseRefError(f"cannot verify {stack} at {ref}: its verify gives no JSON result") from None
        return result


def compare(ref: str, base: dict[str, Any] | None, routes: list[Route], flows: list[Flow]) -> dict[str, Any]:
    """``+``/``-`` lines for routes and for the flows both layers allow, against ``ref``'s result."""
    base = base or {"routes": [], "flows": []}
    before_r = {str(Route(**r)) for r in base["routes"]}
    before_f = {str(Flow(**f)) for f in base["flows"] if f.get("layer") == "combined"}
    after_r = {str(r) for r in routes}
    after_f = {str(f) for f in flows if f.layer == "combined"}
    return {
        "ref": ref,
        "routes": [f"- {x}" for x in sorted(before_r - after_r)] + [f"+ {x}" for x in sorted(after_r - before_r)],
        "flows": [f"- {x}" for x in sorted(before_f - after_f)] + [f"+ {x}" for x in sorted(after_f - before_f)],
    }
