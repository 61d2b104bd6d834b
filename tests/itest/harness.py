"""The itest scenarios' harness: one local control plane per session, the real CLI in a project copy.

The project is copied into ``out/itest/project`` (Pulumi.yaml, ``__main__.py``, components/ and a
stack file written here), so ``pulumi stack init`` writes its secrets manager into that copy and
never into a tracked stack file. ``make itest`` writes ``out/itest/report.json``: each scenario
``passed``/``failed`` and the timings, then prints ``N passed, M failed``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from itest.local import build, certmanager_plugin
from itest.local.charts import CrdsMissingError
from itest.local.controlplane import ControlPlane
from offline.engine import ROOT

OUT = ROOT / "out" / "itest"
STACK = "itest"
#: test function → the scenario it is, as report.json names it.
SCENARIOS = {
    "test_up_from_empty_matches_the_render": "1-up-from-empty",
    "test_order_read_back_from_the_api_server": "2-order",
    "test_preview_after_up_is_a_no_op": "3-no-op-preview",
    "test_config_change_updates_in_place": "4-config-change",
    "test_installation_changes_after_the_operator_wrote_its_defaults": "8-installation-after-operator-defaults",
    "test_cert_manager_through_the_package_plugin_updates_its_release": "9-cert-manager-package-update",
    "test_destroy_leaves_nothing": "5-destroy",
    "test_a_stack_made_before_keeps_its_cert_manager_release": "10-cert-manager-release-migrated",
    "test_destroy_with_the_api_server_stopped": "6-unreachable-destroy",
    "test_bad_config_fails_cleanly_and_every_stack_file_is_accepted": "7-bad-config-and-stack-files",
}
RESULTS: dict[str, str] = {}
TIMINGS: dict[str, float] = {}
#: What ran: the CLI, the provider (what its code is, and the plugin version it is installed as),
#: the API server, and which CRDs were applied for each pin.
VERSIONS: dict[str, Any] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    name = report.nodeid.rsplit("::", 1)[-1]
    if name not in SCENARIOS:
        return
    key = SCENARIOS[name]
    if report.failed:
        RESULTS[key] = "failed"
    elif report.when == "call" and RESULTS.get(key) != "failed":
        RESULTS[key] = "passed" if report.passed else "skipped"


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not RESULTS:
        return
    OUT.mkdir(parents=True, exist_ok=True)
    scenarios = {key: RESULTS.get(key, "not run") for key in SCENARIOS.values()}
    passed = sum(1 for v in scenarios.values() if v == "passed")
    failed = len(scenarios) - passed
    report = {"scenarios": scenarios, "timings_seconds": TIMINGS, **VERSIONS}
    (OUT / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    line = f"{passed} passed, {failed} failed"
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(f"itest report: {OUT / 'report.json'}")
        reporter.write_line(line)
    else:
        print(line)


def timed(key: str):
    """``with timed("up"):`` records how long the block took, in seconds, under ``key``."""

    class _T:
        def __enter__(self):
            self.t = time.monotonic()
            return self

        def __exit__(self, *exc):
            TIMINGS[key] = round(time.monotonic() - self.t, 1)
            self.seconds = TIMINGS[key]

    return _T()


@pytest.fixture(scope="session")
def plane():
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    cp = ControlPlane(OUT / "control-plane")
    try:
        try:
            cp.start()
        except CrdsMissingError as err:
            pytest.exit(f"itest: {err}", returncode=2)
        VERSIONS.update(
            pulumi_cli=build.PULUMI,
            provider_kubernetes={
                "code": f"pulumi-kubernetes v{build.PROVIDER_CODE} ({build.PROVIDER})",
                "installed_as_plugin": build.PROVIDER_AS,
            },
            plugin_kubernetes_cert_manager={
                "code": certmanager_plugin.DESCRIPTION,
                "installed_as_plugin": certmanager_plugin.VERSION,
            },
            kubernetes=build.K8S,
            crds=[c.report() for c in cp.crds],
        )
        TIMINGS["tool_build"] = cp.timings["tools"]
        TIMINGS["control_plane_start"] = cp.timings["control_plane"]
        yield cp
    finally:
        cp.stop()


class Project:
    """A copy of the Pulumi project, run with the real CLI on the local control plane."""

    def __init__(self, cp: ControlPlane, name: str = "project", program: bool = True) -> None:
        """``program=False``: Pulumi.yaml with an empty program, to have the CLI read stack files alone."""
        self.cp = cp
        self.dir = OUT / name
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "Pulumi.yaml", self.dir)
        if program:
            shutil.copy2(ROOT / "__main__.py", self.dir)
            shutil.copytree(ROOT / "components", self.dir / "components", ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (self.dir / "__main__.py").write_text('"""No resources: the CLI only validates the stack\'s config."""\n')
        (self.dir / "stacks").mkdir()
        (self.dir / ".venv").symlink_to((ROOT / ".venv").resolve())

    @property
    def stack_file(self) -> Path:
        return self.dir / "stacks" / f"Pulumi.{STACK}.yaml"

    def config(self, **groups: Any) -> dict[str, Any]:
        """The itest stack: like dev (cert-manager, observability, apps on), on the local API server."""
        config = {
            "cluster": {"provider": "existing", "name": "mesh-itest", "existing": {"kubeconfig": str(self.cp.kubeconfig)}},
            "observability": {"enabled": True, "tracingSampling": 100, "nodeCidrs": ["127.0.0.1/32"]},
            "charts": {"mirror": self.cp.mirror},
            **groups,
        }
        return config

    def write(self, config: dict[str, Any]) -> None:
        """Replace the stack's config, keeping what `pulumi stack init` wrote (its encryption salt)."""
        current = yaml.safe_load(self.stack_file.read_text()) if self.stack_file.exists() else {}
        kept = {k: v for k, v in (current or {}).items() if k != "config"}
        kept["config"] = {f"mesh-platform:{k}": v for k, v in config.items()}
        self.stack_file.write_text(yaml.safe_dump(kept, sort_keys=False))

    def pulumi(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.cp.env()}
        env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
        done = subprocess.run(
            ["pulumi", "--non-interactive", *args],
            cwd=self.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        (OUT / "logs").mkdir(exist_ok=True)
        with (OUT / "logs" / "pulumi.log").open("a") as log:
            log.write(f"$ pulumi {' '.join(args)}  (exit {done.returncode})\n{done.stdout}\n{done.stderr}\n")
        if check and done.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        return done

    def render(self, name: str) -> list[dict]:
        """offline.render of the current stack file (the offline render, in its own process)."""
        out = OUT / "render" / name
        subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "python"),
                "-m",
                "offline.render",
                "--config-file",
                str(self.stack_file),
                "--out",
                str(out),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        return [d for d in yaml.safe_load_all((out / "manifests.yaml").read_text()) if d]


@pytest.fixture(scope="session")
def project(plane) -> Project:
    p = Project(plane)
    p.write(p.config())
    p.pulumi("stack", "init", STACK, "--secrets-provider", "passphrase")
    return p
