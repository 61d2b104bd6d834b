"""STAND-IN Helm charts for the local control plane: same names and versions as the stack's pins.

These are NOT the upstream charts. Nothing here runs a container (kwok marks pods Running), so a
stand-in carries what a cluster sees of the real chart, taken from two upstream sources and never
from the program (components/):

- the real CRDs of the pinned version, verbatim, from a CRD directory (``crd_dir()``:
  ``$MESH_UPSTREAM_CRDS``, else ``../shared/upstream/crds`` beside the checkout; ``make local-crds``
  fills one from the real charts), where the real chart keeps them: its ``crds/`` (Istio's base,
  cert-manager), which Helm installs before anything else and never deletes, or its templates
  (Calico's CRD chart since 3.32, ``crds_in: templates`` in the table below), which Helm upgrades
  and deletes with the release. The API server so validates every custom resource the stack
  creates as a real cluster does: structural schema, defaults, CEL rules. Where the directory has
  no CRDs at exactly the pinned version, the nearest older release is used and
  ``CrdSet.substituted`` says so (the itest report names it).
- what the real chart renders at the pinned version with the stack's release names and values,
  recorded with its sources in tests/data/upstream_charts.yaml: each Deployment and DaemonSet
  (selector, pod labels and annotations, service account, container ports, host network), each
  Service (ports and targetPorts), the ServiceAccounts, and the webhook configurations (names,
  the Service, port and path they call, failure policy). No webhook server answers here, so each
  webhook's rules name an API group that does not exist: the configuration is there, it is never
  called.

Every stand-in is marked: its Chart.yaml description and every object's
``mesh-platform.dev/stand-in: "true"`` label. ``package()`` writes them, runs ``helm package`` at the
pinned versions and ``helm repo index``: the directory is then a Helm repository to serve.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from mesh_platform import versions

ROOT = Path(__file__).resolve().parents[3]
#: What each real chart renders at its pin, with sources.
FACTS = ROOT / "tests" / "data" / "upstream_charts.yaml"
STAND_IN = {"mesh-platform.dev/stand-in": "true"}
#: chart → the version its stand-in is packaged at: the stack's pins (``versions.CHARTS``).
VERSIONS = {chart: pinned.version for chart, pinned in versions.CHARTS.items()}
#: chart → (component directory prefix in the CRD directory, the files of a component directory
#: that hold its CRDs). The same CRDs the real chart installs: Calico's crd.projectcalico.org.v1
#: chart's ``templates/`` (calico-v3.32.1/crd.projectcalico.org.v1/, with its ``calico/``; since
#: 3.32 tigera-operator has none), Istio base's ``files/crd-all.gen.yaml``, cert-manager's
#: ``templates/crd-*`` (``crds.enabled``).
CRD_COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    versions.CALICO_CRDS_CHART: ("calico", (f"{versions.CALICO_CRDS_CHART}/**/*.yaml",)),
    "base": ("istio", ("crd-all.gen.yaml",)),
    "cert-manager": ("cert-manager", ("*.yaml",)),
}
#: Charts whose versions keep their leading ``v`` (Calico's: v3.32.1).
V_VERSIONS = {"tigera-operator", versions.CALICO_CRDS_CHART}
#: Pod Security 'restricted' (cert-manager's namespace enforces it): what every stand-in pod runs as.
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}
#: Never pulled: kwok runs no container.
IMAGE = "registry.invalid/mesh-platform/stand-in:0"
#: The API group a stand-in webhook's rules name: none exists, so the API server never calls it.
NO_GROUP = "stand-in.mesh-platform.invalid"
HOW_TO_GET_CRDS = (
    "the local control plane needs the real CRDs of the pinned charts: set MESH_UPSTREAM_CRDS to a "
    "directory of them (`make local-crds` fills out/local-crds from the real chart repositories; "
    "README.md, 'Local control plane')"
)


class CrdsMissingError(Exception):
    """No CRD directory, or none of a pinned chart's CRDs in it."""


@dataclass(frozen=True)
class CrdSet:
    chart: str
    pin: str
    #: The component directory used, e.g. ``istio-1.31.0-rc.0``.
    used: str
    files: tuple[Path, ...]

    @property
    def substituted(self) -> bool:
        return _version(self.used.rsplit("-", 1)[-1]) != _version(self.pin)

    def report(self) -> dict:
        return {"chart": self.chart, "pin": self.pin, "crds_used": self.used, "substituted": self.substituted,
                "files": len(self.files)}  # fmt: skip


def facts() -> dict:
    return yaml.safe_load(FACTS.read_text())


def crd_dir() -> Path | None:
    """``$MESH_UPSTREAM_CRDS``, else ``../shared/upstream/crds`` beside the checkout where it exists."""
    if os.environ.get("MESH_UPSTREAM_CRDS"):
        return Path(os.environ["MESH_UPSTREAM_CRDS"])
    beside = ROOT.parent / "shared" / "upstream" / "crds"
    return beside if beside.is_dir() else None


#: A version as semver orders it: (major, minor, patch, 1 for a release / 0 for a pre-release, the
#: pre-release's dot-separated parts, numbers before words).
Version = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


def _version(text: str) -> Version | None:
    """``v1.30.3`` → (1, 30, 3, 1, ()); ``1.31.0-rc.0`` → (1, 31, 0, 0, ((1, "rc"), (0, 0))), below
    1.31.0 and above every 1.30 release, as semver orders them; None for anything else."""
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?", text)
    if not m:
        return None
    major, minor, patch = (int(x) for x in m.groups()[:3])
    if m.group(4) is None:
        return (major, minor, patch, 1, ())
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in m.group(4).split("."))
    return (major, minor, patch, 0, parts)


def crd_sets(directory: Path | None) -> list[CrdSet]:
    """For each chart that installs CRDs: the component directory at its pin, else the nearest older.

    Older as semver orders versions: a pre-release counts below its release, so where the directory
    holds only ``istio-1.31.0-rc.0`` and ``istio-1.30.3``, a 1.31.4 pin runs on the 1.31 release
    candidate's CRDs (a substitution, reported), not on the previous minor's.
    """
    if directory is None or not directory.is_dir():
        raise CrdsMissingError(f"no CRD directory{f' at {directory}' if directory else ''}: {HOW_TO_GET_CRDS}")
    out = []
    for chart, (component, patterns) in CRD_COMPONENTS.items():
        pin = VERSIONS[chart]
        at_most = _version(pin)
        if at_most is None or at_most[3] == 0:
            raise CrdsMissingError(f"{chart} is pinned to {pin!r}, not a release version")
        candidates = []
        for d in directory.iterdir():
            named = re.fullmatch(r"(.+?)-(v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)", d.name)
            v = _version(named.group(2)) if named else None
            if d.is_dir() and named and named.group(1) == component and v is not None and v <= at_most:
                candidates.append((v, d))
        if not candidates:
            raise CrdsMissingError(f"{directory} has no {component}-<version> directory at or below {pin}: {HOW_TO_GET_CRDS}")
        _, chosen = max(candidates)
        files = tuple(sorted(f for p in patterns for f in chosen.glob(p) if f.is_file()))
        if not files:
            raise CrdsMissingError(f"{chosen} holds no CRD file ({', '.join(patterns)}): {HOW_TO_GET_CRDS}")
        out.append(CrdSet(chart, pin, chosen.name, files))
    return out


def _ports(ports: list[dict]) -> list[dict]:
    return [{"name": p.get("name") or f"port-{p['port']}", **{k: v for k, v in p.items() if k != "name"}} for p in ports]


def workload(w: dict) -> dict:
    pod = {
        "metadata": {"labels": {**w["podLabels"], **STAND_IN}, "annotations": w.get("podAnnotations", {})},
        "spec": {
            "serviceAccountName": w["serviceAccount"],
            "securityContext": RESTRICTED_POD,
            "containers": [
                {
                    "name": "stand-in",
                    "image": IMAGE,
                    "ports": [dict(p) for p in w["ports"]],
                    "securityContext": RESTRICTED_CONTAINER,
                }
            ],
        },
    }
    if w.get("hostNetwork"):
        pod["spec"]["hostNetwork"] = True
    spec: dict = {"selector": {"matchLabels": w["selector"]}, "template": pod}
    if w["kind"] == "Deployment":
        spec = {"replicas": 1, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": w["kind"],
        "metadata": {"name": w["name"], "namespace": "{{ .Release.Namespace }}", "labels": {**w["podLabels"], **STAND_IN}},
        "spec": spec,
    }


def service(s: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": s["name"], "namespace": "{{ .Release.Namespace }}", "labels": STAND_IN},
        "spec": {"type": "ClusterIP", "selector": s["selector"], "ports": _ports(s["ports"])},
    }


def webhook_configuration(w: dict) -> dict:
    hooks = []
    for h in w["webhooks"]:
        hooks.append(
            {
                "name": h["name"],
                "clientConfig": {"service": dict(h["service"])},
                "failurePolicy": h["failurePolicy"] or "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "rules": [{"apiGroups": [NO_GROUP], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["*"]}],
            }
        )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": w["kind"],
        "metadata": {"name": w["name"], "labels": STAND_IN},
        "webhooks": hooks,
    }


def templates(chart: str, table: dict | None = None) -> str:
    row = (table or facts())[chart]
    docs = [workload(w) for w in row["workloads"]]
    docs += [service(s) for s in row["services"]]
    docs += [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": a["name"], "namespace": "{{ .Release.Namespace }}", "labels": STAND_IN},
        }
        for a in row["serviceAccounts"]
        if not a.get("hook")
    ]
    docs += [webhook_configuration(w) for w in row["webhooks"]]
    return "".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs)


def crds_directory(row: dict) -> str:
    """Where a chart's table row says the real chart keeps its CRDs: ``crds/`` (Helm installs them
    once, before the rest, and never upgrades or deletes them) unless ``crds_in: templates`` (upgraded
    and deleted with the release, as Calico's CRD chart does since 3.32)."""
    where = row.get("crds_in", "crds")
    if where not in ("crds", "templates"):
        raise ValueError(f"crds_in must be crds or templates (got {where!r})")
    return str(where)


def package(dest: Path, helm: Path, crds: list[CrdSet]) -> Path:
    """Write every stand-in chart, package each at its pinned version, index: ``dest`` is a repository."""
    dest.mkdir(parents=True, exist_ok=True)
    src = dest / "src"
    table = facts()
    by_chart = {c.chart: c for c in crds}
    for chart, version in VERSIONS.items():
        d = src / chart
        shutil.rmtree(d, ignore_errors=True)
        (d / "templates").mkdir(parents=True)
        meta = {
            "apiVersion": "v2",
            "name": chart,
            "version": version if chart in V_VERSIONS else version.removeprefix("v"),
            "description": f"STAND-IN for the {chart} chart: its real CRDs and the workloads, Services, ServiceAccounts "
            "and webhook configurations it renders (mesh-platform local control plane)",
        }
        (d / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        (d / "templates" / "stand-in.yaml").write_text(templates(chart, table))
        if chart in by_chart:
            where = d / crds_directory(table[chart])
            where.mkdir(exist_ok=True)
            for i, f in enumerate(by_chart[chart].files):
                shutil.copyfile(f, where / f"{i:02d}-{f.name}")
        subprocess.run([str(helm), "package", str(d), "--version", version, "-d", str(dest)], check=True, capture_output=True)
    subprocess.run([str(helm), "repo", "index", str(dest)], check=True, capture_output=True)
    return dest


# --- `make local-crds`: a CRD directory from the real charts ------------------------------------

#: chart → how its CRDs are read from the real chart, and the file they go to in the directory.
_FETCH = {
    # The chart is its CRDs, as templates (upstream: `helm template calico-crds ... | kubectl apply`).
    versions.CALICO_CRDS_CHART: (
        ["template", "calico-crds", versions.CALICO_CRDS_CHART],
        f"{versions.CALICO_CRDS_CHART}/crds.yaml",
    ),
    # Templated (files/crd-all.gen.yaml through templates/crds.yaml).
    "base": (["template", "istio-base", "base", "--include-crds"], "crd-all.gen.yaml"),
    # Templated only with crds.enabled.
    "cert-manager": (["template", "cert-manager", "cert-manager", "--set", "crds.enabled=true", "--include-crds"], "crds.yaml"),
}


def fetch_crds(out: Path, helm: str, mirror: str | None = None) -> list[Path]:
    """``<out>/<component>-<pin>/…``: the CRDs each pinned chart installs, read with ``helm``."""
    written = []
    for chart, (verb, name) in _FETCH.items():
        component = CRD_COMPONENTS[chart][0]
        repo = mirror or versions.UPSTREAM_CHART_REPOS[chart]
        done = subprocess.run([helm, *verb, "--repo", repo, "--version", VERSIONS[chart]], capture_output=True, text=True)
        if done.returncode != 0:
            raise CrdsMissingError(
                f"helm could not read chart {chart} {VERSIONS[chart]} from {repo}: {done.stderr.strip()[-500:]}"
            )
        docs = [d for d in yaml.safe_load_all(done.stdout) if d and d.get("kind") == "CustomResourceDefinition"]
        if not docs:
            raise CrdsMissingError(f"chart {chart} {VERSIONS[chart]} from {repo} rendered no CustomResourceDefinition")
        target = out / f"{component}-{VERSIONS[chart]}" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join("---\n" + yaml.safe_dump(d, sort_keys=False) for d in docs))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    ap = argparse.ArgumentParser(
        prog="python -m tests.itest.local.charts",
        description="Fill a CRD directory for the local control plane from the real charts at the pinned versions.",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "local-crds", help="the directory to fill (default: %(default)s)")
    ap.add_argument("--helm", default=None, help="the helm binary (default: helm on PATH, else the one `make local-tools` built)")
    ap.add_argument("--mirror", default=os.environ.get("MESH_CHART_MIRROR"),
                    help="one repository serving every chart (default: $MESH_CHART_MIRROR, else each chart's own)")  # fmt: skip
    args = ap.parse_args(argv)
    from . import build

    built = build.cache_root() / build.TOOLS["helm"].key / "bin" / "helm"
    helm = args.helm or shutil.which("helm") or (str(built) if built.exists() else None)
    if helm is None or shutil.which(helm) is None:
        print(f"error: no helm ({args.helm or 'not on PATH, not built'}); `make local-tools` builds it", file=sys.stderr)
        return 2
    args.helm = helm
    try:
        files = fetch_crds(args.out, args.helm, args.mirror)
    except CrdsMissingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for f in files:
        print(f)
    print(f"now: export MESH_UPSTREAM_CRDS={args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
