"""The GitHub workflows' team paths: e2e diagnostics before teardown, a reaper that reaps and
fails loudly, a comment job that trusts no pull request number it cannot tie to the run, previews
that decrypt with the state's secrets manager. actionlint checks the syntax (`make lint`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from standins import ROOT, make_standins

WF = ROOT / ".github/workflows"


def workflow(name: str) -> dict:
    return yaml.safe_load((WF / name).read_text())


def steps(name: str, job: str) -> list[dict]:
    return workflow(name)["jobs"][job]["steps"]


def step(name: str, job: str, title: str) -> tuple[int, dict]:
    found = [(i, s) for i, s in enumerate(steps(name, job)) if title in s.get("name", "")]
    assert len(found) == 1, f"{name}: one step named like {title!r}, found {[s.get('name') for _, s in found]}"
    return found[0]


def test_e2e_collects_diagnostics_while_the_cluster_still_exists() -> None:
    diag_at, diag = step("e2e-kind.yml", "e2e", "Diagnostics")
    down_at, down = step("e2e-kind.yml", "e2e", "Teardown")
    assert diag_at < down_at and diag["if"] == "failure()" and down["if"] == "always()"
    assert down["run"].strip() == "make destroy STACK=lab"
    assert "--show-secrets" in diag["run"] and all(
        "--kubeconfig" in line for line in diag["run"].splitlines() if line.strip().startswith("kubectl")
    ), "diagnostics read the stack's own cluster"
    env = workflow("e2e-kind.yml")["env"]
    assert env["PULUMI_CONFIG_PASSPHRASE"] and env["PULUMI_BACKEND_URL"].startswith("file://")


def test_reaper_decrypts_counts_failures_and_never_runs_twice() -> None:
    wf = workflow("lab-reaper.yml")
    assert wf["concurrency"]["group"] == "lab-reaper" and wf["concurrency"]["cancel-in-progress"] is False
    _, reap = step("lab-reaper.yml", "reap", "expired labs")
    assert reap["env"]["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] == "true"
    assert reap["env"]["PULUMI_BACKEND_URL"].startswith("s3://")
    # No pipeline into a loop (under `bash -e` without pipefail its failures vanish): ops.labs
    # reap runs every teardown and exits 1 when any failed.
    assert "|" not in reap["run"] and reap["run"].strip().endswith("python -m ops.labs reap")


def test_cloud_previews_decrypt_with_the_states_secrets_manager() -> None:
    actions = [s for s in steps("preview.yml", "pulumi-preview") if s.get("uses", "").startswith("pulumi/actions")]
    assert len(actions) == 1 and actions[0]["env"]["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] == "true"


def test_a_failed_make_test_still_uploads_a_report_that_says_so() -> None:
    names = [s.get("name", s.get("uses", "")) for s in steps("preview.yml", "verify")]
    start_at, start = step("preview.yml", "verify", "Start the report")
    tests_at, tests = step("preview.yml", "verify", "Tests")
    _, said = step("preview.yml", "verify", "tests failed")
    assert start_at < tests_at and "pr-number" in start["run"], names
    assert tests["id"] == "tests" and "steps.tests.outcome == 'failure'" in said["if"] and "failure()" in said["if"]
    assert "<!-- mesh-platform-verify -->" in said["run"] and "make test failed" in said["run"]
    upload = [s for s in steps("preview.yml", "verify") if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload[0]["if"] == "always()"


def _comment(tmp_path: Path, pr_head: str) -> list[str]:
    wf = workflow("preview-comment.yml")
    script = next(s for s in wf["jobs"]["comment"]["steps"] if s.get("name", "").startswith("Create or update"))["run"]
    s = make_standins(tmp_path)
    s.add("gh", f'[[ " $* " == *" --jq .head.sha "* ]] && echo {pr_head}; exit 0')
    (tmp_path / "report").mkdir()
    (tmp_path / "report/pr-number").write_text("42\n")
    (tmp_path / "report/comment.md").write_text("<!-- mesh-platform-verify -->hello\n")
    env = s.env({"GH_TOKEN": "t", "REPO": "acme/mesh", "RUN_HEAD_SHA": "abc123"})
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return s.lines("gh")


def test_comment_only_on_the_pull_request_whose_head_the_run_verified(tmp_path) -> None:
    # The head the run verified comes from the triggering run, never from the fork's artifact.
    wf = workflow("preview-comment.yml")
    (post,) = [s for s in wf["jobs"]["comment"]["steps"] if s.get("name", "").startswith("Create or update")]
    assert post["env"]["RUN_HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    calls = _comment(tmp_path / "same", "abc123")
    assert any(c.startswith("gh api -X POST repos/acme/mesh/issues/42/comments") for c in calls), calls
    stale = _comment(tmp_path / "other", "def456")
    assert stale == ["gh api repos/acme/mesh/pulls/42 --jq .head.sha"], "a forged or stale number gets no comment"


def test_comment_job_skips_cancelled_runs_and_has_one_writer() -> None:
    wf = workflow("preview-comment.yml")
    assert "conclusion != 'cancelled'" in wf["jobs"]["comment"]["if"]
    assert wf["concurrency"]["cancel-in-progress"] is True and "workflow_run.head_branch" in wf["concurrency"]["group"]


def test_e2e_installs_the_kind_and_kubectl_the_node_image_belongs_to() -> None:
    # The node image is pinned for one kind release (versions.KIND_NODE_IMAGES); another kind may not
    # start it, and kubectl is supported within one minor of the API server.
    from mesh_platform import versions

    env = workflow("e2e-kind.yml")["env"]
    assert env["KIND_VERSION"] == versions.KIND_VERSION
    node_tag = versions.KIND_NODE_IMAGE.split(":")[1].split("@")[0]
    assert env["KUBECTL_VERSION"] == node_tag, (env["KUBECTL_VERSION"], node_tag)
