"""--base-ref: the base verified by its own code and settings; the diff equals two independent runs.

A copy of this project gets a chain of commits; at each commit the copy's own CLI runs with
``--base-ref`` the commit before, and its diff is compared with the difference of the two commits'
independent ``verify`` results (worked out here from their JSON, not by the code under test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline.engine import ROOT

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
DEMO = {
    "name": "my-service",
    "port": 5000,
    "versions": ["v1", "v2"],
    "expose": True,
    "routes": [{"prefix": "/v1", "destinations": [{"subset": "v1"}]}, {"destinations": [{"subset": "v2"}]}],
    "allowFrom": ["frontend", "client"],
}
FRONTEND = {"name": "frontend", "port": 8080, "role": "frontend"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def verify(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "offline.verify", "--stack", "dev", "--format", "json", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )


def set_config(repo: Path, key: str, value: Any) -> None:
    stack = repo / "stacks" / "Pulumi.dev.yaml"
    data = yaml.safe_load(stack.read_text())
    data["config"][f"mesh-platform:{key}"] = value
    stack.write_text(yaml.safe_dump(data))


def changes(base: dict[str, Any], head: dict[str, Any]) -> dict[str, list[str]]:
    """What an independent pair of runs says changed: routes and flows both layers allow."""

    def routes(r):
        return {f"{x['host']}{x['path']} → {x['service']} {x['subset']} ({x['weight']}%)" for x in r["routes"]}

    def flows(r):
        return {f"{x['src']} → {x['dst']}:{x['port']}" for x in r["flows"] if x["layer"] == "combined"}

    out = {}
    for part, get in (("routes", routes), ("flows", flows)):
        before, after = get(base), get(head)
        out[part] = [f"- {x}" for x in sorted(before - after)] + [f"+ {x}" for x in sorted(after - before)]
    return out


STEPS = ["sidecar model", "observability off", "observability on", "service added", "canary weight"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Any]:
    repo = tmp_path_factory.mktemp("repo")
    for rel in git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard").splitlines():
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    git(repo, "init", "-q")
    # Before the feature existed: the verifier knew nothing of uncaptured sidecar ports.
    sidecar = repo / "offline" / "verify" / "sidecar.py"
    real = sidecar.read_text()
    sidecar.write_text(real + "\n\ndef uncaptured(*args, **kwargs):\n    return set()\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "before the sidecar model")
    commits = [git(repo, "rev-parse", "HEAD")]
    edits = {
        "sidecar model": lambda: sidecar.write_text(real),
        "observability off": lambda: set_config(repo, "observability", {"enabled": False}),
        "observability on": lambda: set_config(repo, "observability", {"enabled": True, "tracingSampling": 100}),
        "service added": lambda: set_config(
            repo, "apps", {"services": [DEMO, FRONTEND, {"name": "orders", "port": 7000, "allowFrom": ["frontend"]}]}
        ),
        "canary weight": lambda: set_config(
            repo,
            "apps",
            {
                "services": [
                    {
                        **DEMO,
                        "routes": [
                            DEMO["routes"][0],
                            {"destinations": [{"subset": "v1", "weight": 80}, {"subset": "v2", "weight": 20}]},
                        ],
                    },
                    FRONTEND,
                    {"name": "orders", "port": 7000, "allowFrom": ["frontend"]},
                ]
            },
        ),
    }
    for step in STEPS:
        edits[step]()
        git(repo, "commit", "-qam", step)
        commits.append(git(repo, "rev-parse", "HEAD"))
    results, outputs = {}, {}
    git(repo, "checkout", "-q", commits[0])
    first = verify(repo)
    assert first.returncode == 0, first.stderr
    results[0] = json.loads(first.stdout)
    for i, step in enumerate(STEPS, start=1):
        git(repo, "checkout", "-q", commits[i])
        proc = verify(repo, "--base-ref", commits[i - 1])
        assert proc.returncode == 0, proc.stderr
        outputs[step] = json.loads(proc.stdout)
        results[i] = {k: v for k, v in outputs[step].items() if k != "diff"}
    return {"repo": repo, "commits": commits, "results": results, "outputs": outputs}


@pytest.mark.parametrize("step", STEPS)
def test_the_diff_equals_two_independent_runs(chain, step: str) -> None:
    i = STEPS.index(step) + 1
    got = chain["outputs"][step]["diff"]
    assert got["ref"] == chain["commits"][i - 1]
    assert {"routes": got["routes"], "flows": got["flows"]} == changes(chain["results"][i - 1], chain["results"][i])
    assert got["routes"] or got["flows"]


def test_what_each_change_does(chain) -> None:
    d = {step: chain["outputs"][step]["diff"] for step in STEPS}
    scrapes = [f"+ observability/prometheus → demo/{w}:15020" for w in ("client", "frontend", "my-service")]
    assert d["sidecar model"] == {"ref": chain["commits"][0], "routes": [], "flows": scrapes}
    # Observability switched off loses every flow it brought, not only those the head knows of.
    off = d["observability off"]["flows"]
    assert off and all(line.startswith("- ") for line in off) and len(off) >= 20
    assert {line[2:] for line in d["observability on"]["flows"]} == {line[2:] for line in off}
    assert d["observability on"]["flows"] == [f"+ {line[2:]}" for line in off]
    assert "+ demo/frontend → demo/orders:7000" in d["service added"]["flows"]
    assert d["canary weight"]["routes"] == [
        "- localhost/ → demo/my-service v2 (100%)",
        "- my-service.demo.svc.cluster.local/ → demo/my-service v2 (100%)",
        "+ localhost/ → demo/my-service v1 (80%)",
        "+ localhost/ → demo/my-service v2 (20%)",
        "+ my-service.demo.svc.cluster.local/ → demo/my-service v1 (80%)",
        "+ my-service.demo.svc.cluster.local/ → demo/my-service v2 (20%)",
    ]
    assert d["canary weight"]["flows"] == []


def test_an_unknown_ref_is_exit_2_with_one_line(chain) -> None:
    proc = verify(chain["repo"], "--base-ref", "no-such-ref")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: --base-ref 'no-such-ref' is not a commit git knows here\n"


def test_a_base_that_cannot_be_verified_is_exit_2_with_one_line(chain) -> None:
    repo = chain["repo"]
    git(repo, "checkout", "-q", chain["commits"][-1])
    set_config(repo, "istio", {"version": "latest"})
    git(repo, "commit", "-qam", "a broken stack")
    broken = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", chain["commits"][-1])
    proc = verify(repo, "--base-ref", broken)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"error: cannot verify dev at {broken}: ") and "istio.version" in proc.stderr


def test_a_stack_new_in_the_change_has_an_empty_base(chain) -> None:
    from offline.verify import diff

    assert diff.verify_at(chain["commits"][0], "brand-new", repo=chain["repo"]) is None
    assert diff.compare("main", None, [], []) == {"ref": "main", "routes": [], "flows": []}


def test_a_base_from_before_the_layout_is_verified_by_its_own_tools_verify(tmp_path) -> None:
    from offline.verify.diff import verifier_module

    (tmp_path / "tools" / "verify").mkdir(parents=True)
    assert verifier_module(tmp_path) == "tools.verify"
    (tmp_path / "offline" / "verify").mkdir(parents=True)
    assert verifier_module(tmp_path) == "offline.verify"
