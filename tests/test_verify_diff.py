"""tools.verify.diff: two known revisions of a repository, rendered at each ref, compared."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.settings import parse
from tools.engine import ROOT
from tools.verify import diff
from tools.verify.pipeline import _traffic


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def two_revisions(tmp_path_factory) -> tuple[Path, str, str]:
    """A copy of this project with two commits: the demo as shipped, then a 90/10 canary and no client calls."""
    repo = tmp_path_factory.mktemp("repo")
    for rel in git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines():
        src = ROOT / rel
        if src.is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD")
    stack = repo / "stacks" / "Pulumi.lab.yaml"
    data = yaml.safe_load(stack.read_text())
    data["config"]["mesh-platform:apps"] = {
        "services": [
            {
                "name": "my-service",
                "port": 5000,
                "versions": ["v1", "v2"],
                "expose": True,
                "routes": [
                    {"prefix": "/v1", "destinations": [{"subset": "v1"}]},
                    {"destinations": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}]},
                ],
                "allowFrom": ["frontend"],
            },
            {"name": "frontend", "port": 8080, "role": "frontend"},
        ]
    }
    stack.write_text(yaml.safe_dump(data))
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qam", "canary")
    return repo, base, git(repo, "rev-parse", "HEAD")


def test_diff_between_two_known_revisions(two_revisions) -> None:
    repo, base, head = two_revisions
    settings = parse({}, "lab")
    before, _ = diff.render_at(base, "lab", repo=repo)
    after, _ = diff.render_at(head, "lab", repo=repo)
    b_flows, b_routes, _ = _traffic(before, settings)
    a_flows, a_routes, _ = _traffic(after, settings)
    changes = diff.compare(b_routes, a_routes, b_flows, a_flows)
    assert changes["flows"] == ["- demo/client → demo/my-service:5000"]
    assert changes["routes"] == [
        "- localhost/ → demo/my-service v2 (100%)",
        "- my-service.demo.svc.cluster.local/ → demo/my-service v2 (100%)",
        "+ localhost/ → demo/my-service v1 (90%)",
        "+ localhost/ → demo/my-service v2 (10%)",
        "+ my-service.demo.svc.cluster.local/ → demo/my-service v1 (90%)",
        "+ my-service.demo.svc.cluster.local/ → demo/my-service v2 (10%)",
    ]
    # The worktrees are cleaned up.
    assert git(repo, "worktree", "list").count("\n") == 0


def test_unknown_ref_is_a_clean_error(two_revisions) -> None:
    repo, _, _ = two_revisions
    with pytest.raises(diff.BaseRefError, match="no-such-ref"):
        diff.render_at("no-such-ref", "lab", repo=repo)


def test_a_stack_new_in_the_change_has_an_empty_base(two_revisions) -> None:
    repo, base, _ = two_revisions
    assert diff.render_at(base, "brand-new", repo=repo) == ([], {"resources": []})
