"""offline.verify.report: what a reviewer reads — the diagram, the headline, the names, the formats."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from offline.engine import ROOT
from offline.verify import Flow, Result, Route, Violation, invariants, report

CANARY = [
    Route("localhost", "/", "demo/my-service", "v1", 90),
    Route("localhost", "/", "demo/my-service", "v2", 10),
    Route("my-service.demo.svc.cluster.local", "/", "demo/my-service", "v1", 90),
    Route("my-service.demo.svc.cluster.local", "/", "demo/my-service", "v2", 10),
]
FLOWS = [
    Flow("demo/frontend", "demo/my-service", "5000", "combined"),
    Flow("demo/frontend", "demo/my-service", "5000", "cni"),
    Flow("demo/client", "demo/frontend", "8080", "mesh"),
]


def _result(**kw) -> Result:
    return Result(source="stack t", checked=3, **{"routes": CANARY, "flows": FLOWS, **kw})


def test_each_route_is_path_to_subset_with_its_weight_mesh_routes_too() -> None:
    diagram = report.mermaid(_result())
    edges = re.findall(r'^  (\w+) -->\|"([^"]*)"\| (\w+)$', diagram, re.M)
    labels = dict(re.findall(r'^  (\w+)\["([^"]*)"\]$', diagram, re.M))
    drawn = {(labels[a], text, labels[b]) for a, text, b in edges}
    assert drawn == {
        ("host localhost", "/ 90%", "demo/my-service v1"),
        ("host localhost", "/ 10%", "demo/my-service v2"),
        ("in-mesh host my-service.demo.svc.cluster.local", "/ 90%", "demo/my-service v1"),
        ("in-mesh host my-service.demo.svc.cluster.local", "/ 10%", "demo/my-service v2"),
    }
    assert "gateway" not in diagram  # no VirtualService here names a gateway: none is invented
    assert re.findall(r'-\.->\|"5000"\|', diagram) == ['-.->|"5000"|']  # flows both layers allow, dotted


def test_names_that_differ_only_in_punctuation_get_their_own_nodes() -> None:
    diagram = report.mermaid(
        _result(routes=[], flows=[Flow("a/b-c", "x/y", "1", "combined"), Flow("a/b_c", "x/y", "2", "combined")])
    )
    ids = re.findall(r'^  (\w+)\["a/b', diagram, re.M)
    assert len(ids) == 2 and len(set(ids)) == 2


def test_the_markdown_has_a_legend_and_no_empty_diagram() -> None:
    md = report.markdown(_result())
    assert "```mermaid" in md and report.LEGEND in md
    empty = report.markdown(_result(routes=[], flows=[]))
    assert "mermaid" not in empty and report.LEGEND not in empty
    assert report.mermaid(_result(routes=[], flows=[])) == ""


def test_the_headline_counts_what_is_listed() -> None:
    text = report.text(_result())
    head = re.search(r"(\d+) objects schema-checked, (\d+) routes, (\d+) allowed flows", text)
    assert head is not None
    routes = text.split("routes:\n")[1].split("allowed flows")[0].strip().splitlines()
    flows = text.split("allowed flows (both layers):\n")[1].strip().splitlines()
    assert (int(head[2]), int(head[3])) == (len(routes), len(flows)) == (4, 1)
    assert "3 objects schema-checked, 4 routes, 1 allowed flows" in report.markdown(_result())


def test_the_diff_names_its_ref_and_comes_first_in_every_format() -> None:
    diff = {"ref": "origin/main", "routes": ["+ localhost/ → demo/my-service v2 (10%)"], "flows": []}
    r = _result(diff=diff, violations=[Violation("routing", "VirtualService demo/x", "bad")])
    text = report.text(r).splitlines()
    assert text[1] == "changes against origin/main:" and text[2] == "  + localhost/ → demo/my-service v2 (10%)"
    md = report.markdown(r)
    assert md.index("#### Changes against `origin/main`") < md.index("| rule |") < md.index("#### Routes")
    data = json.loads(report.as_json(r))
    assert next(iter(data)) == "diff" and data["diff"]["ref"] == "origin/main"
    quiet = report.text(_result(diff={"ref": "HEAD", "routes": [], "flows": []})).splitlines()
    assert quiet[1] == "no change in routes or flows against HEAD"


def test_violations_name_recorded_objects_never_by_urn(stack) -> None:
    rec = copy.deepcopy(stack("dev"))
    release = next(r for r in rec.resources if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs.get("chart") == "istiod")
    release.inputs["version"] = "1.x"
    deployment = next(
        r for r in rec.resources if r.type == "kubernetes:apps/v1:Deployment" and r.inputs["metadata"]["namespace"] == "demo"
    )
    deployment.dependencies, deployment.parent = [], None  # nothing orders it after istiod any more
    found = invariants.pinned([], rec) + invariants.ordering(rec)
    assert found and not [v for v in found if "urn:" in v.object or "::" in v.object]
    assert Violation("pinned", "Release istio-system/istiod", "chart istiod version '1.x' is not exact") in found
    name = deployment.inputs["metadata"]["name"]
    assert [v.object for v in found if v.rule == "order"] == [f"Deployment demo/{name}"]


def _make(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAKEFLAGS": ""}
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.dev", f"PY={sys.executable}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_make_verify_format_json_is_valid_json_on_stdout_or_a_file(tmp_path: Path) -> None:
    proc = _make("verify", "STACK=dev", "FORMAT=json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["source"] == "stack dev"
    out = tmp_path / "verify.json"
    proc = _make("verify", "STACK=dev", "FORMAT=json", f"OUT={out}")
    assert proc.returncode == 0 and proc.stdout == ""
    assert json.loads(out.read_text())["ok"] is True


def test_the_readme_states_the_json_shape_and_the_exit_codes() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    shape = re.search(r"`json` \(`\{(.*?)\}`\)", readme)
    assert shape is not None
    top = [k.split("[")[0].rstrip("?") for k in re.sub(r"\[\{[^]]*\}\]", "", shape[1]).split(", ")]
    with_diff = _result(diff={"ref": "main", "routes": [], "flows": []}).as_json()
    assert top == list(with_diff)
    assert "Exit status: 0 when nothing is violated, 1 when something is" in readme
    assert "make verify STACK=dev FORMAT=json OUT=verify.json" in readme
