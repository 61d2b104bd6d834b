"""Invariants every stack (and every manifest set) must hold, each returning its Violations.

- ``admits_all``: a NetworkPolicy rule with an empty or missing peer list, or a peer that selects
  every namespace, admits every source/destination (the seed's ``ingress: [{from: []}]``); an
  AuthorizationPolicy ALLOW rule that is empty allows every request.
- ``default_deny``: each workload namespace has a real default deny (every pod, both directions,
  no rules), and the computed CNI flows show nothing open in or out of it to "anything".
- ``mtls_strict``: STRICT mesh-wide and per workload namespace; nothing PERMISSIVE or DISABLE.
- ``pinned``: every image has a tag (not ``latest``); every Helm chart an exact version.
- ``ordering``: on the dependency graph, Calico's readiness gate comes before every Istio resource,
  and istiod's before every workload in an injected namespace (upstream facts, independent of the
  program's own edge table).
- ``edges_hold``: every edge of ``mesh_platform/edges.py`` that applies to the stack holds on the graph.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mesh_platform import edges
from mesh_platform.edges import Node
from mesh_platform.settings import Settings
from offline.engine import Recording
from offline.graph import Graph
from offline.verify import Flow, Violation, kind_ref, ref, registration_ref

_EXACT = re.compile(r"^v?\d+\.\d+\.\d+$")


def admits_all(objects: Iterable[dict[str, Any]]) -> list[Violation]:
    out = []
    for o in objects:
        spec = o.get("spec") or {}
        if o.get("kind") == "NetworkPolicy":
            for direction, key in (("ingress", "from"), ("egress", "to")):
                for i, rule in enumerate(spec.get(direction) or []):
                    peers = rule.get(key) if isinstance(rule, dict) else None
                    what = "source" if direction == "ingress" else "destination"
                    if not peers:
                        out.append(
                            Violation(
                                "admits-all",
                                ref(o),
                                f"{direction}[{i}] has no '{key}' peers, so it admits every {what}"
                                + (" on its ports" if rule and rule.get("ports") else "")
                                + "; a deny has no rules at all",
                            )
                        )
                        continue
                    for j, peer in enumerate(peers):
                        if peer.get("namespaceSelector") == {} and not peer.get("podSelector"):
                            out.append(
                                Violation(
                                    "admits-all", ref(o), f"{direction}[{i}].{key}[{j}] selects every pod of every namespace"
                                )
                            )
                        if (peer.get("ipBlock") or {}).get("cidr") in ("0.0.0.0/0", "::/0") and not peer["ipBlock"].get("except"):
                            out.append(
                                Violation(
                                    "admits-all",
                                    ref(o),
                                    f"{direction}[{i}].{key}[{j}] is every address ({peer['ipBlock']['cidr']})",
                                )
                            )
        if o.get("kind") == "AuthorizationPolicy" and spec.get("action", "ALLOW") == "ALLOW":
            for i, rule in enumerate(spec.get("rules") or []):
                if not rule:
                    out.append(Violation("admits-all", ref(o), f"rules[{i}] is empty, so it allows every request"))
    return out


def _is_default_deny(policy: dict[str, Any]) -> bool:
    spec = policy.get("spec") or {}
    return (
        spec.get("podSelector") in ({}, None)
        and set(spec.get("policyTypes") or []) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def default_deny(objects: list[dict[str, Any]], namespaces: Iterable[str], cni_flows: Iterable[Flow]) -> list[Violation]:
    out = []
    flows = list(cni_flows)
    for ns in sorted(set(namespaces)):
        policies = [o for o in objects if o.get("kind") == "NetworkPolicy" and o["metadata"].get("namespace") == ns]
        if not any(_is_default_deny(p) for p in policies):
            out.append(
                Violation(
                    "default-deny",
                    f"Namespace {ns}",
                    "no default deny: add a NetworkPolicy with podSelector {}, policyTypes [Ingress, Egress] and no rules",
                )
            )
        for f in flows:
            ends = (f.src, f.dst)
            if f.port.startswith("*") and any(e.startswith(f"{ns}/") for e in ends):
                out.append(Violation("default-deny", f"Namespace {ns}", f"{f} is open on every port"))
            elif "external" in ends and any(e.startswith(f"{ns}/") for e in ends):
                out.append(Violation("default-deny", f"Namespace {ns}", f"{f} is open to every address outside the cluster"))
    return out


def mtls_strict(objects: list[dict[str, Any]], namespaces: Iterable[str], mesh_root: str | None) -> list[Violation]:
    out = []
    pas = [o for o in objects if o.get("kind") == "PeerAuthentication"]
    for pa in pas:
        mode = ((pa.get("spec") or {}).get("mtls") or {}).get("mode", "UNSET")
        if mode not in ("STRICT", "UNSET"):
            out.append(Violation("mtls-strict", ref(pa), f"mTLS mode {mode}; must be STRICT"))
        for port, setting in ((pa.get("spec") or {}).get("portLevelMtls") or {}).items():
            if setting.get("mode") not in ("STRICT", None):
                out.append(Violation("mtls-strict", ref(pa), f"port {port} mTLS mode {setting.get('mode')}; must be STRICT"))

    def strict_in(ns: str) -> bool:
        return any(
            p["metadata"].get("namespace") == ns
            and not (p.get("spec") or {}).get("selector")
            and ((p.get("spec") or {}).get("mtls") or {}).get("mode") == "STRICT"
            for p in pas
        )

    if mesh_root is not None and not strict_in(mesh_root):
        out.append(Violation("mtls-strict", f"Namespace {mesh_root}", "no mesh-wide PeerAuthentication with mtls.mode STRICT"))
    for ns in sorted(set(namespaces)):
        if not strict_in(ns):
            out.append(Violation("mtls-strict", f"Namespace {ns}", "no namespace-wide PeerAuthentication with mtls.mode STRICT"))
    return out


def _containers(o: dict[str, Any]) -> list[dict[str, Any]]:
    spec = o.get("spec") or {}
    if o.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    pod = spec if o.get("kind") == "Pod" else ((spec.get("template") or {}).get("spec") or {})
    return list(pod.get("containers") or []) + list(pod.get("initContainers") or [])


def pinned(objects: Iterable[dict[str, Any]], recording: Recording | None = None) -> list[Violation]:
    out = []
    for o in objects:
        for c in _containers(o):
            image = c.get("image", "")
            name, _, digest = image.partition("@")
            tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
            if not digest and (not tag or tag == "latest"):
                out.append(
                    Violation("pinned", ref(o), f"container {c.get('name')} image {image!r} is not pinned to a tag or digest")
                )
    if recording is not None:
        for r in recording.resources:
            if r.type == "kubernetes:helm.sh/v3:Release":
                version = str(r.inputs.get("version", ""))
                if not _EXACT.match(version):
                    out.append(
                        Violation(
                            "pinned", registration_ref(r), f"chart {r.inputs.get('chart')} version {version!r} is not exact"
                        )
                    )
    return out


#: The names of Istio's Helm charts (istio/istio manifests/charts/{base,istio-cni,istio-control/
#: istio-discovery,gateway}/Chart.yaml ``name``). A release is Istio's by its chart, never by the
#: repository it came from: a mirror or ``charts.repos`` serves the same charts under any URL.
ISTIO_CHARTS = frozenset({"base", "cni", "istiod", "gateway"})


def _is_istio(r: Any) -> bool:
    release = r.type == "kubernetes:helm.sh/v3:Release" and r.inputs.get("chart") in ISTIO_CHARTS
    return r.custom and ("istio.io" in r.type or release)


def ordering(recording: Recording) -> list[Violation]:
    g = Graph.of(recording)
    out = []
    gates = [r.urn for r in recording.resources if r.type == "kubernetes:operator.tigera.io/v1:Installation"]
    if not gates:
        out.append(Violation("order", "Calico", "no Calico Installation: nothing gates Istio on a working CNI"))
    for r in recording.resources:
        if _is_istio(r) and gates and not any(g.waits_for(r.urn, gate) for gate in gates):
            out.append(Violation("order", registration_ref(r), "can start before Calico's Installation is Ready"))
    istiod = [
        r.urn for r in recording.resources if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs.get("chart") == "istiod"
    ]
    injected = {
        r.inputs["metadata"]["name"]
        for r in recording.resources
        if r.type == "kubernetes:core/v1:Namespace"
        and (r.inputs["metadata"].get("labels") or {}).get("istio-injection") == "enabled"
    }
    for r in recording.resources:
        in_mesh = r.type.startswith("kubernetes:apps/v1:") and (r.inputs.get("metadata") or {}).get("namespace") in injected
        if in_mesh and (not istiod or not any(g.waits_for(r.urn, i) for i in istiod)):
            out.append(
                Violation(
                    "order",
                    registration_ref(r),
                    "an injected workload can start before istiod is ready (it would run without a sidecar)",
                )
            )
    return out


def found(recording: Recording, node: Node, s: Settings) -> list[str]:
    """The URNs of the resources registered as ``node`` (by type, name and namespace)."""
    name, namespace = node.names(s)
    out = []
    for r in recording.resources:
        meta = r.inputs.get("metadata") or {}
        named = r.name == name or r.inputs.get("name") == name or meta.get("name") == name
        if r.type == node.type and named and (namespace is None or meta.get("namespace", r.inputs.get("namespace")) == namespace):
            out.append(r.urn)
    return out


def edges_hold(recording: Recording, s: Settings) -> list[Violation]:
    """Every edge of mesh_platform/edges.py that applies to the stack, on the recorded graph: each
    resource of the waiting component waits for the resource (``data`` edges: one of them does)."""
    g = Graph.of(recording)
    out = []
    for e in edges.applying(s):
        before = found(recording, e.before, s)
        name, ns = e.before.names(s)
        what = kind_ref(e.before.type.rsplit(":", 1)[-1], ns, name)
        if not before:
            out.append(Violation("order", what, f"is not registered, yet {e.component} must wait for it: {e.reason}"))
            continue
        component = [r.urn for r in recording.resources if r.type.startswith("mesh-platform:index:") and r.name == e.component]
        members = [r for r in recording.resources if r.custom and any(c in g.ancestors(r.urn) for c in component)]
        if not members:
            out.append(Violation("order", f"component {e.component}", f"registers nothing, yet should wait for {what}"))
            continue
        waiting = [r for r in members if any(g.waits_for(r.urn, b) for b in before)]
        if e.via == "data" and not waiting:
            out.append(Violation("order", f"component {e.component}", f"nothing reads {what}: {e.reason}"))
        if e.via == "after":
            # By URN: ``r not in waiting`` would compare whole registrations, inputs and all.
            waiting_urns = {r.urn for r in waiting}
            for r in members:
                if r.urn not in waiting_urns:
                    out.append(Violation("order", registration_ref(r), f"can start before {what}: {e.reason}"))
    return out
