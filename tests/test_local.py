"""tests/itest/local without processes: build recipes, stand-in charts, stand-in operators, language host.

The processes themselves run in the itest scenarios (tests/itest, `make itest`).
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from itest.local import build, charts, controlplane, langhost, operators, pki

from mesh_platform.versions import UPSTREAM_CHART_REPOS

# --- build ------------------------------------------------------------------------------------


def test_relative_replaces_are_found_and_forbidden_ones_kept() -> None:
    go_mod = """module go.etcd.io/etcd/server/v3
replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/pkg/v3 v3.6.0 => ./pkg
)
replace k8s.io/api => ./staging/src/k8s.io/api
replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
"""
    assert build.relative_replaces(go_mod) == ["go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/pkg/v3", "k8s.io/api"]


def test_every_relative_replace_gets_a_published_version() -> None:
    k8s = build.TOOLS["kubernetes"]
    assert build.pin_of(k8s, "k8s.io/client-go") == "v0.36.3" == build.pin_of(k8s, "k8s.io/kube-aggregator")
    assert build.pin_of(k8s, "sigs.k8s.io/yaml") is None
    assert build.pin_of(build.TOOLS["pulumi"], "github.com/pulumi/pulumi/sdk/v3") == "v3.276.0"
    assert build.pin_of(build.TOOLS["etcd"], "go.etcd.io/etcd/client/v3") == "v3.6.17"


#: ``github.com/pulumi/pulumi-kubernetes/sdk/v4`` versions the Go module proxy listed on 2026-12-02,
#: and what the provider's go.mod (v4.25.0, provider/go.mod line 22) requires of it.
SDK_V4_SERVED = ("v4.18.4", "v4.21.0", "v4.22.0", "v4.22.2", "v4.29.0", "v4.31.0", "v4.31.1", "v4.32.0")
SDK_V4_REQUIRED = (4, 24, 0)


def test_the_provider_sdk_pin_is_the_newest_served_that_moves_no_requirement_up() -> None:
    def v(s: str) -> tuple[int, ...]:
        return tuple(int(x) for x in s.removeprefix("v").split("."))

    newest_not_above = max((s for s in SDK_V4_SERVED if v(s) <= SDK_V4_REQUIRED), key=v)
    provider = build.TOOLS["provider-kubernetes"]
    assert build.pin_of(provider, "github.com/pulumi/pulumi-kubernetes/sdk/v4") == newest_not_above == build.PROVIDER_SDK


def test_cache_directories_are_keyed_by_version_and_recipe() -> None:
    r = f"r{build.RECIPE}"
    assert {t.key for t in build.TOOLS.values()} == {
        f"etcd-3.6.17-{r}",
        f"kubernetes-1.36.3-{r}",
        f"kwok-0.8.0-{r}",
        f"helm-3.22.0-{r}",
        f"pulumi-3.276.0-{r}",
        f"provider-kubernetes-v4.0.0-20260115033456-f47bc2d6f199-{r}",
        f"language-python-3.272.0-{r}",
    }
    assert build.TOOLS["kwok"].module_version == "v0.8.0"
    # The plugin version the CLI is told is the SDK's pin (requirements.txt).
    assert f"pulumi-kubernetes=={build.PROVIDER_AS}" in (controlplane.ROOT / "requirements.txt").read_text()
    assert f"pulumi=={build.PULUMI_SDK}" in (controlplane.ROOT / "requirements.txt").read_text()


def _code_strings(path: Path) -> list[str]:
    """The string constants of a module's code (docstrings left out)."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_the_sdk_version_is_typed_once_in_requirements_txt() -> None:
    requirements = (controlplane.ROOT / "requirements.txt").read_text()
    pin = re.search(r"^pulumi==(\S+)$", requirements, re.MULTILINE)[1]
    # The language host's program runner, the version it reports and the installed SDK are the pin.
    assert build.PULUMI_SDK == build.TOOLS["language-python"].version == langhost.VERSION == pin
    assert importlib.metadata.version("pulumi") == pin
    # No other file types it: a version typed again could be left behind when the pin moves.
    for module in (build, langhost):
        assert not [v for v in _code_strings(Path(module.__file__)) if pin in v], module.__name__
    assert build.pinned("pulumi-kubernetes") == build.PROVIDER_AS


def test_pins_are_read_from_name_equals_version_lines_only(tmp_path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("-r other.txt\n# pulumi==0.0.1 in a comment\npulumi-aws==7.0.0\npulumi == 3.1.2  # the SDK\n")
    assert build.pinned("pulumi", req) == "3.1.2" and build.pinned("pulumi-aws", req) == "7.0.0"
    with pytest.raises(LookupError, match="pins no pulumi-eks==<version>"):
        build.pinned("pulumi-eks", req)


def test_the_build_imports_with_the_standard_library_alone() -> None:
    # python3 -m tests.itest.local.build runs before any virtualenv exists: -S leaves site-packages out.
    code = "import tests.itest.local.build as b; print(b.PULUMI_SDK)"
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=controlplane.ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == build.PULUMI_SDK


def test_a_built_tool_is_reused_and_a_half_built_one_is_not(tmp_path, monkeypatch) -> None:
    tool = build.TOOLS["language-python"]
    (tmp_path / tool.key / "bin").mkdir(parents=True)
    (tmp_path / tool.key / "build-seconds").write_text("2\n")
    calls = []
    monkeypatch.setattr(build, "_go", lambda *a, **k: calls.append(a) or "{}")
    with pytest.raises(KeyError):  # no .done: it builds (and the stubbed go gives no module dir)
        build.build(tool, tmp_path, log=lambda _: None)
    assert calls
    (tmp_path / tool.key / ".done").write_text("")
    calls.clear()
    assert build.build(tool, tmp_path, log=lambda _: None) == tmp_path / tool.key / "bin" and not calls


STANDIN_GO = Path(__file__).with_name("standin_go.py")
#: What the stand-in go unpacks per module: the go.mod lines that matter to the recipes (a go.work
#: in k8s.io/kubernetes, relative replaces in the provider and etcd), and the kwok files copied.
STANDIN_MODULES = {
    "go.etcd.io/etcd/server/v3": {"go.mod": "module go.etcd.io/etcd/server/v3\nreplace go.etcd.io/etcd/api/v3 => ../api\n"},
    "k8s.io/kubernetes": {
        "go.mod": "module k8s.io/kubernetes\nreplace k8s.io/api => ./staging/src/k8s.io/api\n",
        "files": {"go.work": "go 1.25\nuse .\n"},
    },
    "sigs.k8s.io/kwok": {
        "go.mod": "module sigs.k8s.io/kwok\n",
        "files": {f"kustomize/stage/{s}.yaml": f"kind: Stage\nname: {s}\n"
                  for s in ("node/fast/node-initialize", "pod/fast/pod-ready", "pod/fast/pod-complete", "pod/fast/pod-delete")},
    },
    "helm.sh/helm/v3": {"go.mod": "module helm.sh/helm/v3\n"},
    "github.com/pulumi/pulumi/pkg/v3": {"go.mod": "module github.com/pulumi/pulumi/pkg/v3\nreplace github.com/pulumi/pulumi/sdk/v3 => ../sdk\n"},
    "github.com/pulumi/pulumi-kubernetes/provider/v4": {
        "go.mod": "module github.com/pulumi/pulumi-kubernetes/provider/v4\n"
        "replace github.com/pulumi/pulumi-kubernetes/sdk/v4 => ../sdk\n",
        "files": {"cmd/pulumi-resource-kubernetes/main.go": "//go:generate go run ./generate.go\npackage main\n"},
    },
    "github.com/pulumi/pulumi-kubernetes/sdk/v4": {"go.mod": "", "served": list(SDK_V4_SERVED)},
    "github.com/pulumi/pulumi/sdk/v3": {
        "go.mod": "module github.com/pulumi/pulumi/sdk/v3\n",
        "files": {"python/cmd/pulumi-language-python-exec": "#!/usr/bin/env python3\n"},
    },
}  # fmt: skip


@pytest.fixture
def standin_go(tmp_path, monkeypatch):
    """A cold machine: the stand-in ``go`` first on PATH, no cache, and a caller's Go setup that
    must not reach the build (a go.work above the cache, GOWORK, GOFLAGS, GOPATH, GOBIN)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(f"#!{sys.executable}\n" + STANDIN_GO.read_text())
    (bin_dir / "go").chmod(0o755)
    (tmp_path / "modules.json").write_text(json.dumps(STANDIN_MODULES))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "go.work").write_text("go 1.25\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_GO_LOG", str(tmp_path / "go.log"))
    monkeypatch.setenv("STANDIN_GO_MODULES", str(tmp_path / "modules.json"))
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomod"))
    monkeypatch.setenv("GOWORK", str(tmp_path / "home" / "go.work"))
    monkeypatch.setenv("GOFLAGS", "-mod=vendor -tags=nope")
    monkeypatch.setenv("GOPATH", str(tmp_path / "gopath"))
    monkeypatch.setenv("GOBIN", str(tmp_path / "gobin"))
    monkeypatch.setenv("GOENV", str(tmp_path / "goenv"))
    monkeypatch.setattr(build, "on_path", lambda tool: None)  # nothing pinned on PATH: all is built
    cache = tmp_path / "home" / "cache" / "mesh-platform" / "local"
    return cache, tmp_path / "go.log"


def test_a_cold_build_works_from_a_cache_that_does_not_exist(standin_go, capsys) -> None:
    cache, _ = standin_go
    assert not cache.exists()
    assert build.main(["--cache", str(cache)]) == 0, capsys.readouterr().err
    for tool in build.TOOLS.values():
        assert (cache / tool.key / ".done").exists(), tool.name
    assert (cache / build.TOOLS["kubernetes"].key / "bin" / "kube-apiserver").exists()
    assert (cache / build.TOOLS["etcd"].key / "bin" / "etcd").exists()
    out = capsys.readouterr().out.splitlines()
    # One line before each tool (what it is, how long a cold build takes) and one after.
    for tool in build.TOOLS.values():
        before = next(line for line in out if line.startswith(f"{tool.name} {tool.version}: building"))
        assert "cold: " in before and "on 2 cores" in before
        assert any(re.fullmatch(rf"{re.escape(tool.name)} {re.escape(tool.version)}: built in \d+ s", line) for line in out)
    assert build.main(["--cache", str(cache)]) == 0
    again = capsys.readouterr().out.splitlines()
    assert len(again) == len(build.TOOLS) and all(": built before, in " in line for line in again)


def test_go_gets_the_same_environment_whatever_the_callers_go_setup(standin_go) -> None:
    cache, go_log = standin_go
    assert build.main(["--cache", str(cache), "kubernetes", "provider-kubernetes"]) == 0
    calls = [json.loads(line) for line in go_log.read_text().splitlines()]
    assert calls
    for call in calls:
        env = call["env"]
        assert {k: env.get(k) for k in build.GO_ENV_SET} == build.GO_ENV_SET
        assert not {"GOPATH", "GOBIN"} & set(env), call["argv"]
        assert env["GOMODCACHE"].endswith("/gomod")  # caches are the caller's to choose
    edits = next(c["argv"] for c in calls if c["argv"][:2] == ["mod", "edit"] and "provider" in c["cwd"])
    assert f"-require=github.com/pulumi/pulumi-kubernetes/sdk/v4@{build.PROVIDER_SDK}" in edits


def test_without_the_workspace_switch_the_kubernetes_module_does_not_build(standin_go, monkeypatch, capsys) -> None:
    # The stand-in refuses what go 1.26 refuses: proof that the test above can fail.
    cache, _ = standin_go
    monkeypatch.setitem(build.GO_ENV_SET, "GOWORK", "")
    assert build.main(["--cache", str(cache), "kubernetes"]) == 1
    assert "-mod may only be set to readonly or vendor when in workspace mode" in capsys.readouterr().err


def test_an_unserved_provider_sdk_pin_fails_the_build(standin_go, monkeypatch, capsys) -> None:
    cache, _ = standin_go
    monkeypatch.setitem(build.TOOLS["provider-kubernetes"].pins, "github.com/pulumi/pulumi-kubernetes/sdk/v4", "v4.25.0")
    assert build.main(["--cache", str(cache), "provider-kubernetes"]) == 1
    assert "403 not available" in capsys.readouterr().err


def test_the_pinned_version_on_path_is_used_and_another_is_built(tmp_path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "helm"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    tool = build.TOOLS["helm"]
    fake.write_text("#!/bin/sh\necho v3.22.0+gb76a950\n")
    fake.chmod(0o755)
    assert build.on_path(tool) == bin_dir
    assert build.build(tool, tmp_path / "cache", log=lambda _: None) == bin_dir
    assert "pinned version is on PATH" in build.announce(tool, tmp_path / "cache", build.found(tool, tmp_path / "cache"))
    fake.write_text("#!/bin/sh\necho v3.22.00\n")
    assert build.on_path(tool) is None
    assert "building from helm.sh/helm/v3" in build.announce(tool, tmp_path / "cache", build.found(tool, tmp_path / "cache"))


def test_unknown_tool_is_one_line_and_exit_2(capsys) -> None:
    assert build.main(["kubelet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown tool 'kubelet'" in err and "kwok" in err


# --- stand-in charts ----------------------------------------------------------------------------


def test_stand_ins_are_the_charts_the_stack_installs_recorded_at_their_pins() -> None:
    table = charts.facts()
    assert set(charts.VERSIONS) == set(UPSTREAM_CHART_REPOS) == set(table)
    # A pin bumped without reading the chart again fails here.
    for chart, version in charts.VERSIONS.items():
        assert str(table[chart]["chart_version"]) == version, chart


def test_stand_ins_take_nothing_from_the_program() -> None:
    source = Path(charts.__file__).read_text()
    imported = set(re.findall(r"^from ((?:components|mesh_platform)\S*) import (.+)$", source, re.M))
    assert imported == {("mesh_platform", "versions")}, imported  # the pins only


def _docs(chart: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(charts.templates(chart)) if d]


def test_stand_in_objects_are_what_the_table_records() -> None:
    istiod = {d["kind"]: d for d in _docs("istiod") if d["kind"] in ("Deployment", "Service")}
    svc = {p["port"]: p["targetPort"] for p in istiod["Service"]["spec"]["ports"]}
    assert svc == {15010: 15010, 15012: 15012, 443: 15017, 15014: 15014}
    assert istiod["Deployment"]["spec"]["selector"]["matchLabels"] == {"istio": "pilot"}
    assert istiod["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == "istiod"
    prometheus = next(d for d in _docs("prometheus") if d["kind"] == "Service")
    assert [(p["port"], p["targetPort"]) for p in prometheus["spec"]["ports"]] == [(80, 9090)]
    kinds = {(d["kind"], d["metadata"]["name"]) for c in charts.VERSIONS for d in _docs(c)}
    assert {("MutatingWebhookConfiguration", "istio-sidecar-injector"), ("ValidatingWebhookConfiguration", "cert-manager-webhook"),
            ("ServiceAccount", "cert-manager-webhook"), ("DaemonSet", "istio-cni-node")} <= kinds  # fmt: skip
    # The cert-manager startupapicheck ServiceAccount lives only while its post-install hook runs.
    assert ("ServiceAccount", "cert-manager-startupapicheck") not in kinds
    for c in charts.VERSIONS:
        for d in _docs(c):
            assert d["metadata"]["labels"]["mesh-platform.dev/stand-in"] == "true"


def test_stand_in_webhooks_are_never_called() -> None:
    hooks = [h for c in charts.VERSIONS for d in _docs(c) if d["kind"].endswith("WebhookConfiguration") for h in d["webhooks"]]
    assert len(hooks) >= 7
    for h in hooks:
        assert all(r["apiGroups"] == [charts.NO_GROUP] for r in h["rules"]), h["name"]
        assert h["clientConfig"]["service"]["name"] in ("istiod", "cert-manager-webhook")


#: Where each component directory keeps its CRDs (charts.CRD_COMPONENTS' patterns, one file each).
CRD_FILE = {"istio": "crd-all.gen.yaml", "calico": "crd.projectcalico.org.v1/calico/x.yaml", "cert-manager": "x.yaml"}


def _crd_tree(root: Path, names: list[str]) -> Path:
    for n in names:
        f = root / n / CRD_FILE[re.match(r"(.+?)-v?\d", n).group(1)]
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("kind: CustomResourceDefinition\n")
    return root


def test_crds_at_the_pin_or_the_nearest_older_release_named_as_a_substitution(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(charts.VERSIONS, "base", "1.30.5")
    monkeypatch.setitem(charts.VERSIONS, "crd.projectcalico.org.v1", "v3.32.2")
    monkeypatch.setitem(charts.VERSIONS, "cert-manager", "v1.21.1")
    root = _crd_tree(tmp_path, ["istio-1.29.9", "istio-1.30.3", "istio-1.31.0-rc.0", "istio-1.30.9", "calico-v3.31.7",
                                "calico-v3.32.1", "cert-manager-v1.21.1"])  # fmt: skip
    sets = {c.chart: c for c in charts.crd_sets(root)}
    assert (sets["base"].used, sets["base"].substituted) == ("istio-1.30.3", True)
    # Calico's CRDs come with its CRD chart (none with tigera-operator since 3.32): v3.32.2 runs on v3.32.1's.
    assert "tigera-operator" not in sets
    assert (sets["crd.projectcalico.org.v1"].used, sets["crd.projectcalico.org.v1"].substituted) == ("calico-v3.32.1", True)
    assert sets["cert-manager"].report() == {"chart": "cert-manager", "pin": "v1.21.1", "crds_used": "cert-manager-v1.21.1",
                                             "substituted": False, "files": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("pin", "present", "used"),
    [
        # A release candidate counts below its release and above the previous minor (semver's order).
        ("1.31.4", ["istio-1.30.3", "istio-1.31.0-rc.0", "istio-1.31.0-beta.2"], "istio-1.31.0-rc.0"),
        ("1.31.4", ["istio-1.31.0-rc.0", "istio-1.31.0", "istio-1.31.10"], "istio-1.31.0"),
        ("1.31.0", ["istio-1.30.3", "istio-1.31.0-rc.0", "istio-1.31.0-rc.10", "istio-1.31.0-rc.2"], "istio-1.31.0-rc.10"),
        # Never a pre-release of a newer version than the pin.
        ("1.30.5", ["istio-1.30.3", "istio-1.31.0-rc.0"], "istio-1.30.3"),
    ],
)
def test_a_release_candidates_crds_stand_in_for_its_release(tmp_path, monkeypatch, pin, present, used) -> None:
    monkeypatch.setitem(charts.VERSIONS, "base", pin)
    monkeypatch.setitem(charts.VERSIONS, "tigera-operator", "v3.31.7")
    monkeypatch.setitem(charts.VERSIONS, "cert-manager", "v1.21.1")
    root = _crd_tree(tmp_path, [*present, "calico-v3.31.7", "cert-manager-v1.21.1"])
    base = next(c for c in charts.crd_sets(root) if c.chart == "base")
    assert (base.used, base.substituted) == (used, True)


def test_the_pinned_istio_runs_on_the_newest_stored_crds_and_says_so() -> None:
    shared = controlplane.ROOT.parent / "shared" / "upstream" / "crds"
    if not (shared / "istio-1.31.0-rc.0").is_dir():
        pytest.skip("no shared CRD directory with istio-1.31.0-rc.0 here")
    base = next(c for c in charts.crd_sets(shared) if c.chart == "base")
    assert base.report()["pin"] == charts.VERSIONS["base"] == "1.31.4"
    assert (base.used, base.substituted) == ("istio-1.31.0-rc.0", True)


def test_without_crds_it_stops_and_says_how_to_get_them(tmp_path) -> None:
    for directory in (None, tmp_path / "nowhere", _crd_tree(tmp_path / "some", ["istio-1.30.3", "calico-v3.32.1"])):
        with pytest.raises(charts.CrdsMissingError, match="make local-crds"):
            charts.crd_sets(directory)


def test_the_default_crd_directory_is_the_environments_then_the_shared_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MESH_UPSTREAM_CRDS", str(tmp_path))
    assert charts.crd_dir() == tmp_path
    monkeypatch.delenv("MESH_UPSTREAM_CRDS")
    shared = controlplane.ROOT.parent / "shared" / "upstream" / "crds"
    assert charts.crd_dir() == (shared if shared.is_dir() else None)


def test_make_local_crds_writes_a_directory_the_control_plane_reads(tmp_path, capsys) -> None:
    # A stand-in helm that answers as `helm show crds` / `helm template --include-crds` do: the
    # chart's CRDs among its other objects; the directory it fills is then read at the pins.
    helm = tmp_path / "helm"
    helm.write_text(
        "#!/bin/sh\n"
        'echo "$@" >> "$0.log"\n'
        "printf -- '---\\nkind: ServiceAccount\\nmetadata: {name: x}\\n---\\nkind: CustomResourceDefinition\\n"
        "metadata: {name: a.example.com}\\nspec: {group: example.com}\\n'\n"
    )
    helm.chmod(0o755)
    out = tmp_path / "crds"
    assert charts.main(["--out", str(out), "--helm", str(helm), "--mirror", "http://127.0.0.1:1"]) == 0
    sets = {c.chart: c for c in charts.crd_sets(out)}
    assert set(sets) == set(charts.CRD_COMPONENTS) and not any(c.substituted for c in sets.values())
    for c in sets.values():
        (doc,) = [d for f in c.files for d in yaml.safe_load_all(f.read_text()) if d]
        assert doc["kind"] == "CustomResourceDefinition"
    calls = (tmp_path / "helm.log").read_text().splitlines()
    assert any(c.startswith("template cert-manager cert-manager --set crds.enabled=true --include-crds") for c in calls)
    # Calico's CRDs are the whole of its CRD chart; tigera-operator has none to read since 3.32.
    assert any(c.startswith("template calico-crds crd.projectcalico.org.v1 --repo") for c in calls)
    assert not [c for c in calls if "tigera-operator" in c]
    for line in calls:  # "show crds CHART ..." or "template RELEASE CHART ...": each at its pin
        assert f"--version {charts.VERSIONS[line.split()[2]]}" in line, line
    assert "export MESH_UPSTREAM_CRDS=" in capsys.readouterr().out


def test_make_local_crds_without_the_repositories_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    helm = tmp_path / "helm"
    helm.write_text("#!/bin/sh\necho 'Error: looks like the repository is not reachable' >&2\nexit 1\n")
    helm.chmod(0o755)
    assert charts.main(["--out", str(tmp_path / "crds"), "--helm", str(helm)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: helm could not read chart crd.projectcalico.org.v1")


def _fake_helm(tmp_path: Path) -> Path:
    helm = tmp_path / "helm"
    helm.write_text("#!/bin/sh\nexit 0\n")
    helm.chmod(0o755)
    return helm


def test_calicos_crds_are_templates_of_its_crd_chart_and_the_operator_chart_has_none(tmp_path) -> None:
    # As at projectcalico/calico v3.32.1 (tests/data/upstream_charts.yaml crds_in): upgraded and
    # deleted with the calico-crds release, unlike Istio's and cert-manager's crds/.
    table = charts.facts()
    assert charts.crds_directory(table["crd.projectcalico.org.v1"]) == "templates"
    assert charts.crds_directory(table["base"]) == charts.crds_directory(table["cert-manager"]) == "crds"
    root = _crd_tree(tmp_path / "in", ["istio-1.30.3", "calico-v3.32.1", "cert-manager-v1.21.1"])
    src = charts.package(tmp_path / "repo", _fake_helm(tmp_path), charts.crd_sets(root)) / "src"
    assert sorted(p.name for p in (src / "crd.projectcalico.org.v1" / "templates").iterdir()) == ["00-x.yaml", "stand-in.yaml"]
    assert not (src / "crd.projectcalico.org.v1" / "crds").exists()
    assert not (src / "tigera-operator" / "crds").exists() and [
        p.name for p in (src / "tigera-operator" / "templates").iterdir()
    ] == ["stand-in.yaml"]
    assert (src / "base" / "crds" / "00-crd-all.gen.yaml").is_file()


def test_a_table_that_puts_calicos_crds_elsewhere_changes_the_stand_in(tmp_path, monkeypatch) -> None:
    table = charts.facts()
    table["crd.projectcalico.org.v1"]["crds_in"] = "crds"
    monkeypatch.setattr(charts, "facts", lambda: table)
    root = _crd_tree(tmp_path / "in", ["istio-1.30.3", "calico-v3.32.1", "cert-manager-v1.21.1"])
    src = charts.package(tmp_path / "repo", _fake_helm(tmp_path), charts.crd_sets(root)) / "src"
    assert (src / "crd.projectcalico.org.v1" / "crds" / "00-x.yaml").is_file()
    with pytest.raises(ValueError, match="crds_in must be crds or templates"):
        charts.crds_directory({"crds_in": "files"})


def _schema_paths(schema: dict, prefix: str = "") -> set[str]:
    """Every property path of an openAPIV3Schema (``[]`` for list items); a free-form object ends one."""
    out = set()
    for key, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{key}" if prefix else key
        out.add(path)
        out |= _schema_paths(sub, path)
    if "items" in schema:
        out |= _schema_paths(schema["items"], f"{prefix}[]")
    return out


def _value_paths(value, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        return {
            q
            for k, v in value.items()
            for q in ({f"{prefix}.{k}" if prefix else k} | _value_paths(v, f"{prefix}.{k}" if prefix else k))
        }
    if isinstance(value, list):
        return {q for item in value for q in _value_paths(item, f"{prefix}[]")}
    return set()


def _operator_schemas() -> dict[str, set[str]]:
    """kind → every spec path of the real operator.tigera.io CRD at the pin (skips without a CRD directory)."""
    directory = charts.crd_dir()
    if directory is None:
        pytest.skip("no CRD directory here (MESH_UPSTREAM_CRDS)")
    out = {}
    for c in charts.crd_sets(directory):
        for f in c.files:
            for crd in yaml.safe_load_all(f.read_text()):
                if crd and crd["spec"]["group"] == "operator.tigera.io":
                    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
                    out[crd["spec"]["names"]["kind"]] = _schema_paths(v1["schema"]["openAPIV3Schema"]["properties"]["spec"])
    return out


def _unknown_operator_fields(manifests: list[dict], schemas: dict[str, set[str]]) -> list[str]:
    unknown = []
    for m in manifests:
        if m["apiVersion"] == "operator.tigera.io/v1":
            unknown += [f"{m['kind']} spec.{p}" for p in sorted(_value_paths(m.get("spec") or {}) - schemas[m["kind"]])]
    return unknown


def test_every_field_the_stack_sends_calicos_operator_is_in_its_crd_at_the_pin(stack) -> None:
    # Unknown fields are pruned by the API server without a word: what the stack sends in its
    # Installation, Goldmane and Whisker must be in the schema of the pinned release's CRDs.
    schemas = _operator_schemas()
    for name in ("dev", "prod", "local"):
        assert not _unknown_operator_fields(stack(name).manifests(), schemas), name


def test_a_field_the_crd_lost_is_found(stack) -> None:
    # The check can fail: cni.specVersion was in Calico 3.31's Installation CRD, not in 3.32's.
    schemas = _operator_schemas()
    (inst,) = [m for m in stack("dev").manifests() if m["kind"] == "Installation"]
    inst = {**inst, "spec": {**inst["spec"], "cni": {**inst["spec"]["cni"], "specVersion": "Auto"}}}
    assert _unknown_operator_fields([inst], schemas) == ["Installation spec.cni.specVersion"]


def test_every_default_the_stand_in_operator_writes_is_in_the_crd_at_the_pin() -> None:
    paths = _operator_schemas()["Installation"]
    facts = operators.tigera_facts()
    missing = [r["field"] for r in facts["installation_defaults"] if r["field"] not in paths]
    missing += [f"calicoNetwork.ipPools[].{r['field']}" for r in facts["pool_defaults"] + facts["pool_crd_defaults"]
                if f"calicoNetwork.ipPools[].{r['field']}" not in paths]  # fmt: skip
    assert not missing, missing


def test_every_custom_resource_the_stack_creates_has_a_real_crd_at_the_pins(stack) -> None:
    directory = charts.crd_dir()
    if directory is None:
        pytest.skip("no CRD directory here (MESH_UPSTREAM_CRDS)")
    served = set()
    for c in charts.crd_sets(directory):
        for f in c.files:
            for crd in yaml.safe_load_all(f.read_text()):
                if crd:
                    g, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                    served |= {(f"{g}/{v['name']}", kind) for v in crd["spec"]["versions"] if v["served"]}
    builtin = re.compile(r"^(v1|apps/v1|networking\.k8s\.io/v1|rbac\.authorization\.k8s\.io/v1|policy/v1)$")
    for name in ("dev", "prod", "local"):
        created = {(m["apiVersion"], m["kind"]) for m in stack(name).manifests() if not builtin.match(m["apiVersion"])}
        assert created <= served, f"{name}: no CRD serves {sorted(created - served)}"


# --- stand-in operators -------------------------------------------------------------------------


class FakeKube:
    """Objects by API path; PATCH merges status, POST/PUT store."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.writes: list[tuple] = []

    def add(self, path: str, obj: dict) -> None:
        obj["metadata"].setdefault("uid", path)
        self.objects[path] = obj

    def get(self, path: str) -> dict:
        if path in self.objects:
            return self.objects[path]
        if path.startswith("/apis/") and path.count("/") == 4:  # a list of a cluster-wide resource
            plural = path.rsplit("/", 1)[1]
            return {"items": [o for p, o in self.objects.items() if f"/{plural}/" in p]}
        raise RuntimeError(f"404 Not Found: {path}")

    def send(self, method: str, path: str, body: dict | None = None, content_type: str = "", headers=None) -> dict:
        self.writes.append((method, path, body, content_type, headers or {}))
        if method == "PATCH" and path.endswith("/status"):
            self.objects[path.removesuffix("/status")]["status"] = body["status"]
        elif method == "PATCH":
            assert content_type == "application/merge-patch+json"
            self.objects[path]["spec"] = _merge(self.objects[path].get("spec", {}), body["spec"])
        elif method == "POST":
            self.objects[f"{path}/{body['metadata']['name']}"] = body
        else:
            self.objects[path] = body
        return {}


def _merge(target: dict, patch: dict) -> dict:
    """RFC 7386, as the API server applies a merge patch."""
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _ready(obj: dict) -> bool:
    return operators._ready(obj)


INSTALLATION = "/apis/operator.tigera.io/v1/installations/default"
#: A pool as the stack sent it before every default was spelled out.
FOUR_DEFAULTS_POOL = {"name": "default-ipv4-ippool", "cidr": "10.244.0.0/16", "encapsulation": "VXLAN",
                      "natOutgoing": "Enabled", "nodeSelector": "all()", "blockSize": 26}  # fmt: skip


def test_the_stand_in_tigera_operator_writes_every_pool_default_back_as_the_operator() -> None:
    kube = FakeKube()
    spec = {"cni": {"type": "Calico"}, "calicoNetwork": {"bgp": "Disabled", "ipPools": [dict(FOUR_DEFAULTS_POOL)]}}
    kube.add(INSTALLATION, {"kind": "Installation", "metadata": {"name": "default"}, "spec": spec})
    operators.Operators(kube, log=lambda _: None, delay=3600).reconcile()
    (method, path, body, content_type, headers) = kube.writes[0]
    assert (method, path, content_type) == ("PATCH", INSTALLATION, "application/merge-patch+json")
    # The field manager of a merge patch is the User-Agent's first segment: "operator", as the real one.
    assert headers["User-Agent"].split("/")[0] == "operator"
    # The whole pool list, with the three defaults the stack did not send.
    (pool,) = body["spec"]["calicoNetwork"]["ipPools"]
    assert pool == {**FOUR_DEFAULTS_POOL, "allowedUses": ["Workload", "Tunnel"], "disableNewAllocations": False,
                    "assignmentMode": "Automatic"}  # fmt: skip
    assert body["spec"]["variant"] == "Calico" and body["spec"]["calicoNetwork"]["linuxDataplane"] == "Iptables"
    # Defaulted once: a second pass finds nothing missing and writes nothing.
    kube.writes.clear()
    operators.Operators(kube, log=lambda _: None, delay=3600).reconcile()
    assert not kube.writes


def test_the_stand_in_leaves_the_pool_list_alone_when_the_stack_sends_every_default(stack) -> None:
    (inst,) = [m for m in stack("dev").manifests() if m["kind"] == "Installation"]
    kube = FakeKube()
    kube.add(INSTALLATION, {"kind": "Installation", "metadata": {"name": "default"}, "spec": inst["spec"]})
    operators.Operators(kube, log=lambda _: None, delay=3600).reconcile()
    (_, _, body, _, _) = kube.writes[0]
    assert "ipPools" not in body["spec"].get("calicoNetwork", {}), body


def test_operators_set_ready_after_the_delay_and_issue_real_certificates() -> None:
    kube = FakeKube()
    cm = "/apis/cert-manager.io/v1"
    kube.add("/apis/operator.tigera.io/v1/installations/default", {"kind": "Installation", "metadata": {"name": "default"}})
    kube.add(
        f"{cm}/clusterissuers/selfsigned",
        {"kind": "ClusterIssuer", "metadata": {"name": "selfsigned"}, "spec": {"selfSigned": {}}},
    )
    kube.add(
        f"{cm}/clusterissuers/ca", {"kind": "ClusterIssuer", "metadata": {"name": "ca"}, "spec": {"ca": {"secretName": "ca"}}}
    )
    kube.add(
        f"{cm}/namespaces/cert-manager/certificates/ca",
        {
            "kind": "Certificate",
            "metadata": {"name": "ca", "namespace": "cert-manager"},
            "spec": {
                "isCA": True,
                "commonName": "test CA",
                "secretName": "ca",
                "issuerRef": {"name": "selfsigned", "kind": "ClusterIssuer"},
            },
        },
    )
    kube.add(
        f"{cm}/namespaces/istio-ingress/certificates/gw",
        {
            "kind": "Certificate",
            "metadata": {"name": "gw", "namespace": "istio-ingress"},
            "spec": {
                "dnsNames": ["localhost"],
                "secretName": "gateway-tls",
                "issuerRef": {"name": "ca", "kind": "ClusterIssuer"},
            },
        },
    )
    slow = operators.Operators(kube, log=lambda _: None, delay=3600)
    slow.reconcile()
    assert not any(_ready(o) for o in kube.objects.values()), "Ready before the delay"

    ops = operators.Operators(kube, log=lambda _: None, delay=0)
    for _ in range(4):  # issuer → CA cert → CA issuer → gateway cert
        ops.reconcile()
    assert _ready(kube.objects["/apis/operator.tigera.io/v1/installations/default"])
    assert all(_ready(o) for p, o in kube.objects.items() if p.startswith(cm))
    ca_secret = kube.objects["/api/v1/namespaces/cert-manager/secrets/ca"]["data"]
    gw_secret = kube.objects["/api/v1/namespaces/istio-ingress/secrets/gateway-tls"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(ca_secret["tls.crt"]))
    gw = x509.load_pem_x509_certificate(base64.b64decode(gw_secret["data"]["tls.crt"]))
    assert gw_secret["type"] == "kubernetes.io/tls"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert gw.issuer == ca.subject
    ca.public_key().verify(gw.signature, gw.tbs_certificate_bytes, ec.ECDSA(gw.signature_hash_algorithm))
    assert gw.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "localhost"
    ]
    assert gw.not_valid_after_utc > dt.datetime.now(dt.UTC)
    assert base64.b64decode(gw_secret["data"]["ca.crt"]) == pki.cert_pem(ca)


def test_a_ca_issuer_waits_for_its_secret() -> None:
    kube = FakeKube()
    kube.add(
        "/apis/cert-manager.io/v1/clusterissuers/ca",
        {"kind": "ClusterIssuer", "metadata": {"name": "ca"}, "spec": {"ca": {"secretName": "missing"}}},
    )
    operators.Operators(kube, log=lambda _: None, delay=0).reconcile()
    assert not _ready(kube.objects["/apis/cert-manager.io/v1/clusterissuers/ca"])


# --- language host ----------------------------------------------------------------------------


def test_language_host_runs_the_program_like_the_real_one(tmp_path, monkeypatch) -> None:
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import language_pb2

    monkeypatch.setenv("PULUMI_LANGUAGE_PYTHON_EXEC", "/x/pulumi-language-python-exec")
    options = struct_pb2.Struct()
    options.update({"virtualenv": ".venv"})
    info = language_pb2.ProgramInfo(
        root_directory=str(tmp_path), program_directory=str(tmp_path), entry_point=".", options=options
    )
    req = language_pb2.RunRequest(project="p", stack="s", monitor_address="127.0.0.1:1", dryRun=True, parallel=8, info=info)
    argv = langhost.command(req, "127.0.0.1:2")
    assert argv[0] == str(tmp_path / ".venv" / "bin" / "python") and argv[2] == "/x/pulumi-language-python-exec"
    flags = dict(zip(argv[3:-1:2], argv[4:-1:2], strict=True))
    assert flags == {
        "--monitor": "127.0.0.1:1",
        "--engine": "127.0.0.1:2",
        "--project": "p",
        "--stack": "s",
        "--pwd": str(tmp_path),
        "--dry_run": "true",
        "--parallel": "8",
        "--organization": "",
        "--root_directory": str(tmp_path),
    }
    assert argv[-1] == "."


# --- control plane commands -------------------------------------------------------------------


def test_down_without_a_running_control_plane_stops_nothing(tmp_path, capsys) -> None:
    assert controlplane.main(["down", "--dir", str(tmp_path)]) == 0
    assert "nothing stopped" in capsys.readouterr().out


def test_audit_policy_records_every_write() -> None:
    rules = controlplane.AUDIT_POLICY["rules"]
    assert rules[0]["verbs"] == ["create", "update", "patch", "delete"] and rules[-1] == {"level": "None"}
    assert json.dumps(controlplane.AUDIT_POLICY)
