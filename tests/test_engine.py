"""The render harness (offline/engine.py): its quick path records exactly what the SDK's own does."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from offline import engine
from offline.verify import bench
from tests.combinations import OFFERED, stack_file

STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (engine.ROOT / "stacks").glob("Pulumi.*.yaml"))
# Every provider, each with every optional part on: the EKS one makes invokes while resources register.
FULL = [c for c in OFFERED if c.cni and c.ca == "cert-manager" and c.observability]


def _canonical(recording: engine.Recording) -> str:
    """A recording as comparable text: dependency order follows the SDK's sets, so it is sorted."""
    resources = sorted(
        ({**r.as_json(), "custom": r.custom, "dependencies": sorted(r.dependencies)} for r in recording.resources),
        key=lambda r: r["urn"],
    )
    return json.dumps({"resources": resources, "outputs": recording.outputs}, sort_keys=True)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_records_the_same_as_the_sdks_own_path(stack: str) -> None:
    assert _canonical(engine.run(stack)) == _canonical(engine.run(stack, faithful=True))


@pytest.mark.parametrize("combo", FULL, ids=lambda c: c.id)
def test_every_provider_records_the_same_as_the_sdks_own_path(combo: Any) -> None:
    path = stack_file(combo)
    assert _canonical(engine.run("combo", config_file=path)) == _canonical(engine.run("combo", config_file=path, faithful=True))


def test_a_generated_stack_of_30_services_records_the_same(tmp_path: Path) -> None:
    path = bench.write_stack(30, tmp_path)
    fast, faithful = engine.run("bench-30", config_file=path), engine.run("bench-30", config_file=path, faithful=True)
    assert len(fast.resources) > 300
    assert _canonical(fast) == _canonical(faithful)


def test_computed_outputs_reach_the_program_on_the_quick_path() -> None:
    # The kind network probe's stdout is no echo of its inputs: the program turns it into the
    # node addresses Prometheus may scrape. A dropped computed output would leave it unknown.
    recording = engine.run("dev")
    nodes = engine.FAKE_KIND_SUBNETS.split()[0]
    assert [r.name for r in recording.resources if nodes in json.dumps(r.inputs)] == [
        "observability-np-prometheus",
        "observability-np-kiali",
    ]


_FAILING_RUN = """
import sys
from offline import engine
from offline.thirdparty import pulumi_sdk
from pulumi.runtime import resource

def fail(self, args):
    raise RuntimeError(f"mock refused {args.typ}")

computed, engine.StackMocks.computed = engine.StackMocks.computed, fail
try:
    engine.run("lab", faithful=sys.argv[1] == "faithful")
except Exception as err:
    assert resource._get_stack_trace is not pulumi_sdk.source_pb2.StackTrace, "stack traces left off"
    print(type(err).__name__, err)
engine.StackMocks.computed = computed
print("then", len(engine.run("lab", faithful=sys.argv[1] == "faithful").resources), "resources")
"""


@pytest.mark.parametrize("path", ["quick", "faithful"])
def test_a_failing_mock_fails_the_run(path: str) -> None:
    # In a fresh interpreter: Python 3.11 can leave its AST constructor's depth count off after
    # formatting the SDK's tracebacks of a failed run, and a later import under pytest trips on it.
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_RUN, path], capture_output=True, text=True, cwd=engine.ROOT, check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RuntimeError mock refused" in done.stdout
    # What the failed run left behind is cleared: the next run in the same process completes.
    assert f"then {len(engine.run('lab').resources)} resources" in done.stdout


@pytest.mark.parametrize("faithful", [False, True], ids=["quick", "faithful"])
def test_monitor_calls_run_in_the_loops_thread_only_on_the_quick_path(monkeypatch: pytest.MonkeyPatch, faithful: bool) -> None:
    threads: set[int] = set()
    respond = engine.RecordingMonitor.RegisterResource

    def watch(self: Any, request: Any) -> Any:
        threads.add(threading.get_ident())
        return respond(self, request)

    monkeypatch.setattr(engine.RecordingMonitor, "RegisterResource", watch)
    engine.run("lab", faithful=faithful)
    assert (threads == {threading.get_ident()}) is not faithful


def test_the_collector_is_paused_for_the_render_only() -> None:
    seen: list[bool] = []
    respond = engine.RecordingMonitor.RegisterResource

    def watch(self: Any, request: Any) -> Any:
        seen.append(gc.isenabled())
        return respond(self, request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.RecordingMonitor, "RegisterResource", watch)
        engine.run("lab")
    assert seen and not any(seen)
    assert gc.isenabled()
    gc.disable()
    try:
        engine.run("lab")
        assert not gc.isenabled()  # a caller's own choice is kept
    finally:
        gc.enable()
