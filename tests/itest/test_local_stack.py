"""The scenarios, in order, with the real Pulumi CLI and provider on the local control plane.

Each checks what a user relies on against the API server itself (objects, audit log), never
against the program's own idea of it. ``make itest`` runs them; ``make test`` leaves them out.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import shutil
import time
from typing import Any

import pytest
import requests
import yaml

from itest.harness import ROOT, STACK, Project, timed

pytestmark = pytest.mark.itest

CLUSTER_SCOPED = {"Namespace", "ClusterIssuer", "Installation", "Goldmane", "Whisker", "ClusterRole", "ClusterRoleBinding"}
_discovery: dict[str, dict[str, tuple[str, bool]]] = {}


def api_path(project: Project, obj: dict) -> str:
    """The REST path of ``obj``, from the API server's own discovery."""
    gv = obj["apiVersion"]
    if gv not in _discovery:
        base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        found = project.cp.kube.get(base)["resources"]
        _discovery[gv] = {r["kind"]: (r["name"], r["namespaced"]) for r in found if "/" not in r["name"]}
    plural, namespaced = _discovery[gv][obj["kind"]]
    base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
    ns = obj["metadata"].get("namespace")
    return (
        f"{base}/namespaces/{ns}/{plural}/{obj['metadata']['name']}"
        if namespaced
        else f"{base}/{plural}/{obj['metadata']['name']}"
    )


def live(project: Project, obj: dict) -> dict | None:
    try:
        return project.cp.kube.get(api_path(project, obj))
    except requests.HTTPError as err:
        if err.response is not None and err.response.status_code == 404:
            return None
        raise


def differences(want: Any, got: Any, path: str = "") -> list[str]:
    """Every field ``want`` sets that ``got`` lacks or holds differently (the API server adds defaults)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: want an object, got {got!r}"]
        out = []
        for k, v in want.items():
            out += differences(v, got.get(k), f"{path}.{k}")
        return out
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: want {len(want)} items, got {got!r}"]
        out = []
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            out += differences(w, g, f"{path}[{i}]")
        return out
    if want != got and str(want) != str(got):
        return [f"{path}: want {want!r}, got {got!r}"]
    return []


def compare(project: Project, manifests: list[dict]) -> list[str]:
    problems = []
    for obj in manifests:
        ref = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
        got = live(project, obj)
        if got is None:
            problems.append(f"{ref}: rendered, but not in the API server")
            continue
        want = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
        problems += [f"{ref}{d}" for d in differences(want, got)]
    return problems


def key(obj: dict) -> tuple[str, str, str]:
    return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def wait_for(what: str, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.5)


# --- 7 (first: it must create nothing in an empty cluster) ----------------------------------------


def test_bad_config_fails_cleanly_and_every_stack_file_is_accepted(project: Project) -> None:
    namespaces = {n["metadata"]["name"] for n in project.cp.kube.get("/api/v1/namespaces")["items"]}
    project.write(project.config(apps={"namespace": "Not_A_Label"}))
    try:
        done = project.pulumi("up", "--yes", "--stack", STACK, check=False)
    finally:
        project.write(project.config())
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "invalid stack configuration" in out and "mesh-platform:apps.namespace" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert {n["metadata"]["name"] for n in project.cp.kube.get("/api/v1/namespaces")["items"]} == namespaces
    state = json.loads(project.pulumi("stack", "export", "--stack", STACK).stdout)
    assert not [r for r in state["deployment"].get("resources") or [] if r["type"].startswith("kubernetes:")]
    project.pulumi("stack", "select", STACK)

    # The real CLI validates each stack file against Pulumi.yaml's object-typed config (before it
    # runs a program; an empty one here, so that kind and EKS stacks need neither Docker nor AWS).
    check = Project(project.cp, name="config-check", program=False)
    for f in sorted((ROOT / "stacks").glob("Pulumi.*.yaml")):
        name = f"check-{f.name.removeprefix('Pulumi.').removesuffix('.yaml')}"
        shutil.copy2(f, check.dir / "stacks" / f"Pulumi.{name}.yaml")
        check.pulumi("stack", "init", name, "--secrets-provider", "passphrase")
        check.pulumi("preview", "--stack", name)
    # ... and refuses a value of the type Pulumi.yaml does not declare: the check above can fail.
    (check.dir / "stacks" / "Pulumi.check-bad.yaml").write_text('config:\n  mesh-platform:cluster: "kind"\n')
    check.pulumi("stack", "init", "check-bad", "--secrets-provider", "passphrase")
    bad = check.pulumi("preview", "--stack", "check-bad", check=False)
    assert bad.returncode != 0 and "key 'cluster' must be of type 'object'" in bad.stderr, bad.stdout + bad.stderr


# --- 1 ------------------------------------------------------------------------------------------


def test_up_from_empty_matches_the_render(project: Project) -> None:
    with timed("up"):
        project.pulumi("up", "--yes", "--skip-preview", "--stack", STACK, timeout=900)
    rendered = project.render("initial")
    assert len(rendered) > 30, "the render lists too few objects to be the dev-like stack"
    problems = compare(project, rendered)
    assert not problems, "the API server disagrees with the offline render:\n" + "\n".join(problems[:40])
    # The stand-in workloads the stack's policies and routes select are there, Ready.
    for ns, name in (("istio-system", "istiod"), ("istio-ingress", "istio-ingress"), ("observability", "prometheus-server")):
        dep = project.cp.kube.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
        assert dep["status"].get("readyReplicas") == dep["spec"]["replicas"], (ns, name, dep["status"])
    tls = project.cp.kube.get("/api/v1/namespaces/istio-ingress/secrets/gateway-tls")
    assert tls["type"] == "kubernetes.io/tls" and tls["data"]["tls.crt"]


# --- 2 ------------------------------------------------------------------------------------------


def _t(event: dict, field: str) -> dt.datetime:
    return dt.datetime.fromisoformat(event[field].replace("Z", "+00:00"))


def test_order_read_back_from_the_api_server(project: Project) -> None:
    events = [e for e in project.cp.audit() if (e.get("responseStatus") or {}).get("code", 0) < 300]
    # 201 Created: a POST, or the provider's server-side apply (a PATCH) of an object that did not exist.
    creates = [e for e in events if e["responseStatus"]["code"] == 201 and not e["objectRef"].get("subresource")]

    def created(resource: str, namespace: str | None = None, name: str | None = None) -> list[dict]:
        return [
            e
            for e in creates
            if e["objectRef"]["resource"] == resource
            and (namespace is None or e["objectRef"].get("namespace") == namespace)
            and (name is None or e["objectRef"].get("name") == name)
        ]

    ready = [
        e
        for e in events
        if e["objectRef"]["resource"] == "installations"
        and e["objectRef"].get("subresource") == "status"
        and e["verb"] == "patch"
    ]
    assert created("installations") and ready, "no Installation created and made Ready"
    installation_ready = _t(ready[0], "stageTimestamp")
    istio = [
        e
        for e in creates
        if e["objectRef"].get("namespace") in ("istio-system", "istio-ingress")
        or (e["objectRef"]["resource"] == "customresourcedefinitions" and e["objectRef"]["name"].endswith("istio.io"))
    ]
    assert istio, "no Istio object in the audit log"
    first_istio = min(istio, key=lambda e: _t(e, "requestReceivedTimestamp"))
    assert installation_ready < _t(first_istio, "requestReceivedTimestamp"), (
        f"{first_istio['objectRef']} was created before the Installation was Ready"
    )

    istiod = created("deployments", "istio-system", "istiod")
    workloads = created("deployments", "demo") + created("pods", "demo")
    assert istiod and workloads
    first_workload = min(_t(e, "requestReceivedTimestamp") for e in workloads)
    assert _t(istiod[0], "stageTimestamp") < first_workload, "a demo workload was created before istiod's release"

    deny = created("networkpolicies", "demo", "default-deny")
    pods = created("pods", "demo")
    assert deny and pods
    assert _t(deny[0], "stageTimestamp") < min(_t(e, "requestReceivedTimestamp") for e in pods), (
        "a demo pod ran before the default deny"
    )


# --- 3 ------------------------------------------------------------------------------------------


def test_preview_after_up_is_a_no_op(project: Project) -> None:
    with timed("no_op_preview"):
        project.pulumi("preview", "--expect-no-changes", "--stack", STACK)


# --- 4 ------------------------------------------------------------------------------------------

CHANGED_APPS = {
    "services": [
        {
            "name": "my-service",
            "port": 5000,
            "versions": ["v1", "v2"],
            "expose": True,
            "routes": [
                {"prefix": "/v1", "destinations": [{"subset": "v1"}]},
                # The canary: 90/10 instead of all on v2.
                {"destinations": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}]},
            ],
            "allowFrom": ["frontend", "client"],
        },
        {"name": "frontend", "port": 8080, "role": "frontend"},
        # A service added.
        {"name": "billing", "port": 7000, "allowFrom": ["frontend"]},
    ]
}


def test_config_change_updates_in_place(project: Project) -> None:
    before = {key(o): o for o in project.render("before-change")}
    project.write(project.config(apps=CHANGED_APPS))
    after = {key(o): o for o in project.render("after-change")}
    want_creates = set(after) - set(before)
    want_updates = {k for k in set(after) & set(before) if after[k] != before[k]}
    assert want_creates and want_updates

    preview = json.loads(project.pulumi("preview", "--json", "--stack", STACK).stdout)
    steps = preview.get("steps") or []
    ops: dict[str, set] = {}
    for s in steps:
        state = s.get("newState") or s.get("oldState") or {}
        if not state.get("type", "").startswith("kubernetes:") or state["type"].startswith(
            ("kubernetes:helm", "pulumi:providers")
        ):
            if s["op"] not in ("same", "read"):
                ops.setdefault("other " + s["op"], set()).add(s["urn"])
            continue
        ops.setdefault(s["op"], set()).add(key(state["inputs"]))
    assert not {op for op in ops if "replace" in op or op == "delete" or op.startswith("other")}, ops
    assert ops.get("create", set()) == want_creates, ops.get("create")
    assert ops.get("update", set()) == want_updates, ops.get("update")

    with timed("update"):
        project.pulumi("up", "--yes", "--skip-preview", "--stack", STACK)
    vs = live(project, after[("VirtualService", "demo", "my-service")])
    assert vs is not None
    weights = [[d.get("weight") for d in r["route"]] for r in vs["spec"]["http"]]
    assert [90, 10] in weights, weights
    assert not compare(project, list(after.values()))
    project.pulumi("preview", "--expect-no-changes", "--stack", STACK)


# --- 8 ------------------------------------------------------------------------------------------

INSTALLATION = "/apis/operator.tigera.io/v1/installations/default"


def _pool_owners(inst: dict) -> set[str]:
    """The field managers that own spec.calicoNetwork.ipPools (an atomic list: one owner set)."""
    return {
        m["manager"]
        for m in inst["metadata"].get("managedFields") or []
        if "f:ipPools" in ((m.get("fieldsV1") or {}).get("f:spec") or {}).get("f:calicoNetwork", {})
    }


def test_installation_changes_after_the_operator_wrote_its_defaults(project: Project) -> None:
    # The stand-in tigera-operator wrote what the real one writes (tests/data/tigera_operator.yaml)
    # under its field manager "operator"; the pool list, complete as the stack sends it, stays the
    # stack's alone, so changing it later is no 409 "conflict with operator".
    inst = project.cp.kube.get(INSTALLATION)
    managers = {m["manager"] for m in inst["metadata"]["managedFields"]}
    assert "operator" in managers and project.cp.operators.defaulted, managers
    assert inst["spec"]["variant"] == "Calico", "the operator's defaults are not in the spec"
    assert _pool_owners(inst) and "operator" not in _pool_owners(inst), _pool_owners(inst)
    project.write(project.config(apps=CHANGED_APPS, calico={"encapsulation": "VXLANCrossSubnet"}))
    with timed("installation_update"):
        done = project.pulumi("up", "--yes", "--skip-preview", "--stack", STACK, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    (pool,) = project.cp.kube.get(INSTALLATION)["spec"]["calicoNetwork"]["ipPools"]
    assert pool["encapsulation"] == "VXLANCrossSubnet" and pool["allowedUses"] == ["Workload", "Tunnel"]
    project.pulumi("preview", "--expect-no-changes", "--stack", STACK)


# --- 9 ------------------------------------------------------------------------------------------

PACKAGE = "kubernetes-cert-manager:index:CertManager"


def helm_releases(project: Project, namespace: str, name: str) -> list[dict]:
    """Helm's own record of a release on the API server, every revision, oldest first: its storage
    Secrets (``sh.helm.release.v1.<name>.v<revision>``), each a base64, gzipped JSON document."""
    selector = {"labelSelector": f"owner=helm,name={name}"}
    found = project.cp.kube.get(f"/api/v1/namespaces/{namespace}/secrets", params=selector)["items"]
    out = [json.loads(gzip.decompress(base64.b64decode(base64.b64decode(s["data"]["release"])))) for s in found]
    return sorted(out, key=lambda r: r["version"])


def test_cert_manager_through_the_package_plugin_updates_its_release(project: Project) -> None:
    # Up: the program registered the package's component (remote); the plugin, not the program,
    # registered the Helm release under it, with the stack's Kubernetes provider.
    state = json.loads(project.pulumi("stack", "export", "--stack", STACK).stdout)["deployment"]["resources"]
    (component,) = [r for r in state if r["type"] == PACKAGE]
    (release,) = [r for r in state if r["type"] == "kubernetes:helm.sh/v3:Release" and r.get("parent") == component["urn"]]
    assert release["urn"].endswith("::cert-manager-install-helm"), release["urn"]
    assert release["provider"].split("::")[-2] == "cluster-k8s", release["provider"]
    providers = [r for r in state if r["type"] == "pulumi:providers:kubernetes-cert-manager"]
    assert providers and providers[0]["inputs"].get("version") == "0.2.0", providers
    first = helm_releases(project, "cert-manager", "cert-manager")
    assert first and first[-1]["info"]["status"] == "deployed"
    assert first[-1]["config"] == {"crds": {"enabled": True, "keep": True}, "clusterResourceNamespace": "cert-manager"}
    assert first[-1]["chart"]["metadata"]["name"] == "cert-manager"

    # Update: a cert-manager value through the stack's config, between two `up`s.
    project.write(project.config(apps=CHANGED_APPS, calico={"encapsulation": "VXLANCrossSubnet"}, certManager={"replicas": 2}))
    preview = json.loads(project.pulumi("preview", "--json", "--stack", STACK).stdout)
    changed = {s["urn"].rsplit("::", 1)[-1]: s["op"] for s in preview.get("steps") or [] if s["op"] not in ("same", "read")}
    assert changed == {"cert-manager-install-helm": "update"}, changed
    with timed("cert_manager_update"):
        project.pulumi("up", "--yes", "--skip-preview", "--stack", STACK)
    after = helm_releases(project, "cert-manager", "cert-manager")
    assert after[-1]["version"] == first[-1]["version"] + 1 and after[-1]["info"]["status"] == "deployed"
    assert after[-1]["config"] == {**first[-1]["config"], "replicaCount": 2}, after[-1]["config"]
    project.pulumi("preview", "--expect-no-changes", "--stack", STACK)


# --- 5 ------------------------------------------------------------------------------------------


def test_destroy_leaves_nothing(project: Project) -> None:
    rendered = project.render("before-destroy")
    with timed("destroy"):
        project.pulumi("destroy", "--yes", "--skip-preview", "--stack", STACK, timeout=900)
    namespaces = [o for o in rendered if o["kind"] == "Namespace"]
    assert namespaces
    wait_for("the stack's namespaces gone", lambda: all(live(project, n) is None for n in namespaces), 120)
    left = [key(o) for o in rendered if live(project, o) is not None]
    assert not left, left
    # cert-manager went with it: the package's release is uninstalled (Helm keeps no record of it).
    assert not helm_releases(project, "cert-manager", "cert-manager")
    state = json.loads(project.pulumi("stack", "export", "--stack", STACK).stdout)
    assert not state["deployment"].get("resources"), "resources left in the state"


# --- 10 -----------------------------------------------------------------------------------------

#: A stack made before cert-manager came from its package: the component registered the release
#: itself, as ``cert-manager-install``. Then the same component with the package's component and
#: the program's own alias transform (components/cert_manager.py). Both use the project's name and
#: the component's type and name, so the URNs are the real stack's.
_MIGRATION = """
import pulumi
import pulumi_kubernetes as k8s

KUBECONFIG, MIRROR, VERSION, NOW = {kubeconfig!r}, {mirror!r}, {version!r}, {now!r}
provider = k8s.Provider("k8s", kubeconfig=open(KUBECONFIG).read())


class CertManager(pulumi.ComponentResource):
    def __init__(self) -> None:
        super().__init__("mesh-platform:index:CertManager", "cert-manager", None, pulumi.ResourceOptions(providers=[provider]))
        ns = k8s.core.v1.Namespace("cert-manager-ns", metadata={{"name": "cert-manager"}}, opts=pulumi.ResourceOptions(parent=self))
        if not NOW:
            k8s.helm.v3.Release(
                "cert-manager-install", name="cert-manager", chart="cert-manager", version=VERSION,
                repository_opts={{"repo": MIRROR}}, namespace="cert-manager",
                values={{"crds": {{"enabled": True, "keep": True}}, "clusterResourceNamespace": "cert-manager"}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[ns]),
            )
        else:
            import pulumi_kubernetes_cert_manager as kcm
            from components.cert_manager import CertManager as Ours

            kcm.CertManager(
                "cert-manager-install", cluster_resource_namespace="cert-manager",
                helm_options=kcm.ReleaseArgs(
                    name="cert-manager", chart="cert-manager", version=VERSION,
                    repository_opts=kcm.RepositoryOptsArgs(repo=MIRROR), namespace="cert-manager",
                    values={{"crds": {{"enabled": True, "keep": True}}}},
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[ns], transforms=[Ours._keep_former_release(self, "cert-manager-install")]
                ),
            )


CertManager()
"""


def test_a_stack_made_before_keeps_its_cert_manager_release(plane) -> None:
    from mesh_platform.versions import CERT_MANAGER_VERSION

    p = Project(plane, name="migration", program=False)
    stack = "migration"

    def program(now: bool) -> None:
        text = _MIGRATION.format(kubeconfig=str(plane.kubeconfig), mirror=plane.mirror, version=CERT_MANAGER_VERSION, now=now)
        (p.dir / "__main__.py").write_text(text)

    program(now=False)
    (p.dir / "stacks" / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    p.pulumi("stack", "init", stack, "--secrets-provider", "passphrase")
    p.pulumi("up", "--yes", "--skip-preview", "--stack", stack, timeout=600)
    before = helm_releases(p, "cert-manager", "cert-manager")
    assert len(before) == 1 and before[0]["info"]["status"] == "deployed"

    program(now=True)
    preview = json.loads(p.pulumi("preview", "--json", "--stack", stack).stdout)
    # The preview lists every step but the unchanged ones: the package's release is unchanged (an
    # alias of the former one), no release is created, replaced or deleted.
    releases = {s["urn"]: s["op"] for s in preview.get("steps") or [] if s["urn"].split("::")[-2].endswith("helm.sh/v3:Release")}
    assert not releases, releases
    assert set(preview["changeSummary"]) == {"create", "same"} and preview["changeSummary"]["create"] == 1, preview[
        "changeSummary"
    ]
    with timed("cert_manager_migration"):
        p.pulumi("up", "--yes", "--skip-preview", "--stack", stack, timeout=600)
    # The same Helm release, not touched: one revision, its values as they were.
    after = helm_releases(p, "cert-manager", "cert-manager")
    assert [(r["version"], r["info"]["status"], r["config"]) for r in after] == [(1, "deployed", before[0]["config"])], after
    state = json.loads(p.pulumi("stack", "export", "--stack", stack).stdout)["deployment"]["resources"]
    kept = [r["urn"] for r in state if r["type"] == "kubernetes:helm.sh/v3:Release"]
    assert len(kept) == 1 and kept[0].endswith("::cert-manager-install-helm"), kept
    p.pulumi("destroy", "--yes", "--skip-preview", "--stack", stack, timeout=600)
    wait_for(
        "the migration stack's namespace gone",
        lambda: live(p, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cert-manager"}}) is None,
        120,
    )


# --- 6 ------------------------------------------------------------------------------------------


def test_destroy_with_the_api_server_stopped(project: Project) -> None:
    project.write(project.config())
    project.pulumi("up", "--yes", "--skip-preview", "--stack", STACK, timeout=900)
    project.cp.stop_process("kube-apiserver")
    try:
        with timed("unreachable_destroy") as t:
            done = project.pulumi("destroy", "--yes", "--skip-preview", "--stack", STACK, check=False, timeout=120)
        out = done.stdout + done.stderr
        # The measured fact: it returns, well within a minute. With the stack's provider setting
        # (deleteUnreachable false) the provider refuses to drop anything from the state: plain
        # objects with "configured Kubernetes cluster is unreachable", Helm releases with "can't
        # delete Helm Release with unreachable cluster" (whichever it reaches first).
        assert t.seconds < 60, f"pulumi destroy took {t.seconds} s with the API server stopped"
        refused = ("configured Kubernetes cluster is unreachable", "can't delete Helm Release with unreachable cluster")
        assert done.returncode == 0 or any(r in out for r in refused), out[-3000:]
        # The project's lab teardown (make destroy): the cluster is gone, so the state goes.
        with timed("unreachable_stack_rm"):
            project.pulumi("stack", "rm", "--force", "--yes", "--preserve-config", "--stack", STACK)
        listed = project.pulumi("stack", "ls", "--json").stdout
        assert STACK not in {s["name"] for s in json.loads(listed)}, listed
        assert (project.dir / "stacks" / f"Pulumi.{STACK}.yaml").exists(), "the stack file must stay"
        yaml.safe_load(project.stack_file.read_text())
    finally:
        project.cp.restart_apiserver()
