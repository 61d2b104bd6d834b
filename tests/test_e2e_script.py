"""scripts/e2e.sh with stand-in pulumi, kubectl and curl: the stack's own cluster only, a restore
that never aborts half-way, clear failures, no coreutils `timeout` (stock macOS has none)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from standins import ROOT, Standins, make_standins

from mesh_platform.versions import CURL_IMAGE

KUBECONFIG = "apiVersion: v1\nkind: Config\ncurrent-context: kind-mesh-lab\n"

PULUMI = r"""
case " $* " in
  *" output "*"kubeconfig"*) [ -n "${OUTPUT_FAILS:-}" ] && { echo "error: $OUTPUT_FAILS" >&2; exit 255; }
                           printf 'apiVersion: v1\nkind: Config\ncurrent-context: kind-mesh-lab\n';;
  *" output "*"gatewayUrl"*) echo http://localhost:8080;;
  *) echo "error: current stack has no output named httpsUrl" >&2; exit 255;;
esac
"""

# Records which kubeconfig each call used (the file is gone once the script ends).
KUBECTL = r"""
[ "$1" = --kubeconfig ] && cat "$2" >>__SEEN__
case " $* " in
  *" get pod "*) echo client-0;;
  *" get networkpolicy "*" yaml "*) printf 'apiVersion: v1\nitems:\n- kind: NetworkPolicy\n  metadata:\n    name: default-deny\n';;
  *" get networkpolicy "*) echo networkpolicy.networking.k8s.io/default-deny;;
  *" apply -f "*) [ -n "${APPLY_FAILS:-}" ] && [[ " $* " == *" apply -f /"* ]] && { echo "error: connection refused" >&2; exit 1; }; cat >/dev/null;;
  *" exec "*) printf 000;;
esac
exit 0
"""


@pytest.fixture
def tools(tmp_path: Path) -> Standins:
    s = make_standins(tmp_path, "curl")
    s.add("pulumi", PULUMI)
    s.add("kubectl", KUBECTL.replace("__SEEN__", str(tmp_path / "seen")))
    s.add("timeout", 'echo "timeout: command not found" >&2; exit 127')
    return s


def e2e(s: Standins, tmp: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts/e2e.sh"), "lab"],
        env=s.env({"TMPDIR": str(tmp), "KUBECONFIG": "/dev/null/the-users-own", **env}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_kubectl_call_goes_to_the_stacks_own_cluster(tools, tmp_path) -> None:
    proc = e2e(tools, tmp_path)
    kubectl = tools.calls("kubectl")
    assert kubectl, proc.stderr
    assert all(c.args[0] == "--kubeconfig" for c in kubectl), [c.line for c in kubectl if c.args[0] != "--kubeconfig"]
    assert (tmp_path / "seen").read_text() == KUBECONFIG * len(kubectl)
    assert not tools.calls("timeout"), "coreutils timeout is not on every machine"
    assert not [f for f in tmp_path.iterdir() if f.name.startswith("tmp")], "kubeconfig and backup removed"
    assert "PASS  NetworkPolicies of demo restored" in proc.stdout


def test_a_failed_restore_keeps_and_names_the_backup_and_still_cleans_up(tools, tmp_path) -> None:
    proc = e2e(tools, tmp_path, APPLY_FAILS="1")
    assert proc.returncode != 0
    kept = [f for f in tmp_path.iterdir() if f.name.startswith("tmp") and f.read_text().startswith("apiVersion")]
    assert len(kept) == 1 and "default-deny" in kept[0].read_text()
    assert f"could NOT be restored; they are in {kept[0]}" in proc.stderr
    assert tools.lines("kubectl")[-1].endswith("delete namespace e2e-intruder e2e-plaintext --ignore-not-found --wait=false")


def test_unreadable_outputs_say_what_is_missing(tools, tmp_path) -> None:
    proc = e2e(tools, tmp_path, OUTPUT_FAILS="passphrase must be set with PULUMI_CONFIG_PASSPHRASE")
    assert proc.returncode == 2
    assert "cannot read output 'kubeconfig' of stack lab: error: passphrase must be set" in proc.stderr
    assert "PULUMI_CONFIG_PASSPHRASE(_FILE)" in proc.stderr
    assert not tools.calls("kubectl")


def test_scripts_run_directly_are_executable() -> None:
    # The Makefile and workflows run these as commands; a mode of 100644 is "Permission denied".
    listed = subprocess.run(["git", "ls-files", "-s", "scripts", ".ci"], cwd=ROOT, capture_output=True, text=True, check=False)
    if listed.returncode == 0 and listed.stdout:
        modes = {line.split()[3]: line.split()[0] for line in listed.stdout.splitlines()}
        assert modes and all(m == "100755" for m in modes.values()), modes
    for path in [*ROOT.glob("scripts/*.sh"), ROOT / ".ci/run"]:
        assert path.stat().st_mode & 0o111, path


def test_the_script_and_the_readme_probe_run_the_stacks_pinned_curl_image() -> None:
    # A second, unpinned curl in the end-to-end check (or in the README's denied-call probe) would
    # test with an image the stack itself never deploys.
    script = (ROOT / "scripts" / "e2e.sh").read_text()
    assert re.findall(r'^CURL_IMAGE="([^"]+)"', script, re.M) == [CURL_IMAGE]
    readme_curls = set(re.findall(r"--image=(\S*curl\S*)", (ROOT / "README.md").read_text()))
    assert readme_curls == {CURL_IMAGE}
