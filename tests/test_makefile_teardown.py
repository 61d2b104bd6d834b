"""Makefile up/preview/destroy/e2e against stand-in pulumi, kind and docker that fail the way the
real ones do: a Helm release on a gone cluster cannot be destroyed (pulumi-kubernetes provider.go
Delete), `stack rm` without --preserve-config deletes the stack file, creating or using a stack
writes its secrets manager into the stack file, no fallback to the state means "passphrase must
be set" for a stack file without one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from standins import MAKE_TREE, Standins, checkout, make, make_standins

WATCH = ("PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL")

# State: one JSON file per stack in $ST/stacks; kind clusters one per line in $ST/kind.
PULUMI = r"""
ST=__STATE__
args=" $* "; stack=""; prev=""
for a in "$@"; do [ "$prev" = --stack ] && stack="$a"; prev="$a"; done
file="stacks/Pulumi.$stack.yaml"
salt() {  # what the real CLI does when it creates or loads a secrets manager
  if [ -f "$file" ] && ! grep -q '^encryptionsalt:' "$file"; then echo "encryptionsalt: v1:standin" >>"$file"; fi
  if [ ! -f "$file" ]; then echo "encryptionsalt: v1:standin" >"$file"; fi
}
need_secrets() {  # no manager in the stack file and no fallback: the CLI makes a passphrase one
  if [ "${PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER:-}" != true ] && ! grep -qE '^(encryptionsalt|secretsprovider):' "$file" 2>/dev/null; then
    if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
      echo "error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE" >&2; exit 255; fi
    if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ ! -r "$PULUMI_CONFIG_PASSPHRASE_FILE" ]; then
      echo "error: unable to read PULUMI_CONFIG_PASSPHRASE_FILE: open $PULUMI_CONFIG_PASSPHRASE_FILE: no such file or directory" >&2; exit 255; fi
  fi
  [ -n "${EXPORT_FAILS:-}" ] && { echo "error: $EXPORT_FAILS" >&2; exit 255; }
  return 0
}
case "$args" in
  *" version "*) echo "${PULUMI_STANDIN_VERSION:-v3.211.0}";;
  *" stack select "*)
    if [ -f "$ST/stacks/$stack" ]; then salt
    elif [[ "$args" == *" --create "* ]]; then echo '{}' >"$ST/stacks/$stack"; salt
    else echo "error: no stack named '$stack' found" >&2; exit 255; fi;;
  *" stack tag set "*) ;;
  *" up "*) need_secrets; salt
    printf '%s' '{"deployment":{"resources":[{"urn":"u:kc","type":"mesh-platform:index:KindCluster"},{"urn":"u:cmd","type":"command:local:Command","parent":"u:kc","inputs":{"environment":{"KIND_CLUSTER":"'"$KIND_NAME"'"}}},{"urn":"u:rel","type":"kubernetes:helm.sh/v3:Release"}]}}' >"$ST/stacks/$stack"
    grep -qx "$KIND_NAME" "$ST/kind" 2>/dev/null || echo "$KIND_NAME" >>"$ST/kind";;
  *" preview "*) need_secrets; salt;;
  *" stack export "*) need_secrets; cat "$ST/stacks/$stack";;
  *" destroy "*)
    if grep -q helm.sh "$ST/stacks/$stack" && ! grep -qx "$KIND_NAME" "$ST/kind" 2>/dev/null; then
      echo 'error: can'"'"'t delete Helm Release with unreachable cluster. Reason: "unable to load schema information from the API server"' >&2; exit 255; fi
    echo '{}' >"$ST/stacks/$stack";;
  *" stack rm "*)
    if grep -q '"resources"' "$ST/stacks/$stack" && [[ "$args" != *" --force "* ]]; then
      echo "error: '$stack' still has resources; removal rejected" >&2; exit 255; fi
    rm -f "$ST/stacks/$stack"; [[ "$args" == *" --preserve-config "* ]] || rm -f "$file";;
esac
"""

KIND = r"""
ST=__STATE__
case "$1 $2" in
  "get clusters") if [ -s "$ST/kind" ]; then cat "$ST/kind"; else echo "No kind clusters found." >&2; fi;;
  "delete cluster") grep -vx "$4" "$ST/kind" >"$ST/kind.new" || true; mv "$ST/kind.new" "$ST/kind";;
esac
"""


@pytest.fixture
def lab(tmp_path: Path) -> tuple[Path, Standins, Path]:
    repo = checkout(tmp_path, *MAKE_TREE)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "stacks"], cwd=repo, check=True)
    state = tmp_path / "state"
    (state / "stacks").mkdir(parents=True)
    s = make_standins(tmp_path, "docker", "kubectl", "aws", watch=WATCH)
    s.add("pulumi", PULUMI.replace("__STATE__", str(state)))
    s.add("kind", KIND.replace("__STATE__", str(state)))
    return repo, s, state


def run(repo: Path, s: Standins, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``make ARGS``; ``make up`` applies without asking (its question: tests/test_makefile_up.py)."""
    if "up" in args:
        args = (*args, "YES=1")
    # The interpreter itself, not a version manager's shim that puts its own bin first on PATH.
    return make(repo, s, *args, env={"KIND_NAME": "mesh-lab", "PYTHON": os.path.realpath(sys.executable), **env})


def test_lab_teardown_deletes_the_cluster_then_the_state_and_keeps_the_stack_file(lab) -> None:
    repo, s, state = lab
    committed = (repo / "stacks/Pulumi.lab.yaml").read_bytes()
    assert run(repo, s, "up", "STACK=lab").returncode == 0
    (s.log).write_text("")
    started = time.monotonic()
    proc = run(repo, s, "destroy", "STACK=lab")
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    calls = s.lines()
    assert "kind delete cluster --name mesh-lab" in calls
    rm = [c for c in calls if c.startswith("pulumi --non-interactive stack rm")]
    assert rm == ["pulumi --non-interactive stack rm --force --yes --preserve-config --stack lab"]
    assert calls.index("kind delete cluster --name mesh-lab") < calls.index(rm[0]), "cluster first, then state"
    assert not any(" destroy " in f" {c} " for c in calls if c.startswith("pulumi")), "no destroy on a gone cluster"
    assert (state / "kind").read_text() == "" and not (state / "stacks/lab").exists()
    assert (repo / "stacks/Pulumi.lab.yaml").read_bytes() == committed
    # The script's own overhead with stand-ins (real time adds kind's container removal).
    assert elapsed < 30
    # Again: nothing left, nothing to do, still fine.
    again = run(repo, s, "destroy", "STACK=lab")
    assert again.returncode == 0 and "nothing to destroy" in again.stdout


def test_up_and_preview_leave_tracked_stack_files_as_committed(lab) -> None:
    repo, s, _ = lab
    committed = (repo / "stacks/Pulumi.lab.yaml").read_bytes()
    assert run(repo, s, "up", "STACK=lab").returncode == 0
    assert run(repo, s, "preview", "STACK=lab").returncode == 0
    assert (repo / "stacks/Pulumi.lab.yaml").read_bytes() == committed
    ups = [c for c in s.calls("pulumi") if "up" in c.args]
    assert ups and ups[0].env["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] == "true"


def test_a_fresh_clone_previews_a_cloud_stack_without_a_passphrase(lab) -> None:
    repo, s, state = lab
    # The stack exists in the shared backend, created with KMS; this clone never saw it.
    (state / "stacks/staging").write_text("{}")
    wrapper = repo / ".venv/bin/python"
    real = wrapper.resolve()
    wrapper.unlink()
    wrapper.write_text(f'#!/usr/bin/env bash\n[ "$1 $2" = "-m ops.preflight" ] && exit 0\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    proc = run(repo, s, "preview", "STACK=staging")
    assert proc.returncode == 0, proc.stderr
    assert "passphrase must be set" not in proc.stderr
    assert (repo / "stacks/Pulumi.staging.yaml").read_bytes() == (
        Path(__file__).parent.parent / "stacks/Pulumi.staging.yaml"
    ).read_bytes()


def test_destroy_leaves_a_kind_cluster_the_stack_did_not_create(lab) -> None:
    repo, s, state = lab
    (state / "kind").write_text("mesh-lab\n")  # someone's cluster, same name
    (state / "stacks/lab").write_text(
        json.dumps({"deployment": {"resources": [{"urn": "u:x", "type": "mesh-platform:index:ExistingCluster"}]}})
    )
    proc = run(repo, s, "destroy", "STACK=lab")
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in s.lines("kind") if "delete" in c]
    assert (state / "kind").read_text() == "mesh-lab\n"
    pulumi = s.lines("pulumi")
    assert "pulumi --non-interactive destroy --yes --skip-preview --stack lab" in pulumi
    assert pulumi[-1] == "pulumi --non-interactive stack rm --yes --preserve-config --stack lab"


def test_destroy_deletes_nothing_when_the_state_cannot_be_read(lab) -> None:
    repo, s, state = lab
    assert run(repo, s, "up", "STACK=lab").returncode == 0
    proc = run(repo, s, "destroy", "STACK=lab", EXPORT_FAILS="incorrect passphrase")
    assert proc.returncode != 0
    assert "cannot read the state of stack lab" in proc.stderr
    assert (state / "kind").read_text() == "mesh-lab\n" and (state / "stacks/lab").exists()


def test_destroy_deletes_nothing_when_kind_cannot_list_clusters(lab) -> None:
    repo, s, state = lab
    assert run(repo, s, "up", "STACK=lab").returncode == 0
    s.add("kind", 'echo "ERROR: failed to list clusters: command \\"docker ps\\" failed" >&2; exit 1')
    proc = run(repo, s, "destroy", "STACK=lab")
    assert proc.returncode != 0 and "kind get clusters failed (is Docker running?)" in proc.stderr
    assert (state / "stacks/lab").exists(), "the state stays while its cluster may still exist"


@pytest.mark.parametrize(("status", "expected"), [("0", 0), ("1", 2)])
def test_e2e_always_tears_down_and_keeps_the_checks_verdict(lab, status, expected) -> None:
    repo, s, state = lab
    script = repo / "scripts/e2e.sh"
    script.write_text(
        f'#!/usr/bin/env bash\ntest -s "$PULUMI_CONFIG_PASSPHRASE_FILE" && echo "checks with $PULUMI_CONFIG_PASSPHRASE_FILE"; exit {status}\n'
    )
    proc = run(repo, s, "e2e")
    assert proc.returncode == expected, proc.stderr
    # A fresh checkout: `make up` created the passphrase file the checks then read.
    assert "checks with " + str(repo / ".pulumi-state/passphrase") in proc.stdout
    assert (state / "kind").read_text() == "" and not (state / "stacks/lab").exists()
    assert (repo / "stacks/Pulumi.lab.yaml").exists()


def test_too_old_pulumi_cli_is_named_before_anything_runs(lab) -> None:
    repo, s, _ = lab
    proc = run(repo, s, "up", "STACK=lab", PULUMI_STANDIN_VERSION="v3.190.0")
    assert proc.returncode != 0
    assert "Pulumi CLI 3.211.0 or newer is needed, found 3.190.0" in proc.stdout
    assert [c for c in s.lines("pulumi")] == ["pulumi version"]


def test_make_381_is_refused_with_what_to_install(lab) -> None:
    repo, s, _ = lab
    # GNU make 3.81's .FEATURES (no `oneshell`): what macOS ships.
    proc = run(repo, s, "help", ".FEATURES=target-specific order-only second-expansion else-if archives jobserver check-symlink")
    assert proc.returncode == 2
    assert "GNU make 3.82 or newer is needed" in proc.stderr and "brew install make" in proc.stderr
