"""Which inbound ports an injected pod's sidecar captures: only captured traffic meets AuthorizationPolicy.

Istio redirects a pod's inbound TCP to Envoy with iptables rules written at pod start, and the
ports it leaves out never reach Envoy, so no AuthorizationPolicy applies to them: the CNI layer
alone decides. As istio/istio (release-1.30 line; the same at 1.31.0-rc.0, the nearest stored tag to the
pinned 1.31.4) writes those rules:

- ``manifests/charts/istio-control/istio-discovery/files/injection-template.yaml``: ``istio-init``
  runs ``istio-iptables -b "<traffic.sidecar.istio.io/includeInboundPorts, default *>"`` and
  ``-d "15090,15021,{{ excludeInboundPort <status port> <traffic.sidecar.istio.io/excludeInboundPorts> }}"``;
  ``pilot/pkg/kube/inject/template.go`` ``excludeInboundPort`` adds the status port
  (``status.sidecar.istio.io/port``, ``global.proxy.statusPort`` 15020) to the annotation's list.
- With istio-cni, ``cni/pkg/plugin/sidecar_redirect.go`` reads the same annotations, which the
  injector writes onto the pod with the same values (its test expects ``15020,15021,15090``).

So 15090 (Envoy's metrics), 15021 (health) and 15020 (the agent's merged metrics) are never
captured, plus whatever a pod's ``excludeInboundPorts`` names; an ``includeInboundPorts`` other
than ``*`` leaves every other port uncaptured. A pod is injected when its namespace has
``istio-injection=enabled`` (or an ``istio.io/rev``), unless the pod says ``sidecar.istio.io/inject: "false"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from offline.verify import Flow

#: The ports the injection template always passes to ``istio-iptables -d``, the status port included.
ALWAYS_EXCLUDED = frozenset({"15090", "15021", "15020"})
EXCLUDE_INBOUND = "traffic.sidecar.istio.io/excludeInboundPorts"
INCLUDE_INBOUND = "traffic.sidecar.istio.io/includeInboundPorts"
STATUS_PORT = "status.sidecar.istio.io/port"
INJECT = "sidecar.istio.io/inject"
_RANGE = re.compile(r"^(\d+)-(\d+)$")


@dataclass(frozen=True)
class Capture:
    """A pod's inbound capture: ``include`` None means every port (``*``)."""

    include: frozenset[str] | None
    exclude: frozenset[str]

    def captured(self, port: str) -> bool:
        if port in self.exclude:
            return False
        return self.include is None or port in self.include


def _ports(text: str) -> set[str]:
    return {p.strip() for p in str(text).split(",") if p.strip()}


def _pod_meta(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == "Pod":
        return obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return (spec.get("template") or {}).get("metadata") or {}


def capture(obj: dict[str, Any], namespaces: dict[str, dict[str, str]]) -> Capture | None:
    """The inbound capture of a workload's pods, or None when they run without a sidecar."""
    meta = _pod_meta(obj)
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    ns_labels = namespaces.get((obj.get("metadata") or {}).get("namespace", "default"), {})
    injected = ns_labels.get("istio-injection") == "enabled" or (
        "istio.io/rev" in ns_labels and ns_labels.get("istio-injection") != "disabled"
    )
    choice = str(labels.get(INJECT, annotations.get(INJECT, ""))).lower()
    if choice == "false" or (not injected and choice != "true"):
        return None
    status = str(annotations.get(STATUS_PORT, "15020")).strip()
    exclude = (ALWAYS_EXCLUDED - {"15020"}) | ({status} if status not in ("", "0") else set())
    exclude |= _ports(annotations.get(EXCLUDE_INBOUND, ""))
    include = _ports(annotations.get(INCLUDE_INBOUND, "*"))
    return Capture(None if "*" in include else frozenset(include), frozenset(exclude))


def uncaptured(
    cni_flows: Iterable[Flow],
    workloads: Iterable[dict[str, Any]],
    namespaces: dict[str, dict[str, str]],
    name: Callable[[dict[str, Any]], str],
) -> set[Flow]:
    """``combined`` flows the mesh cannot stop: CNI-allowed TCP into an injected pod on a port its
    sidecar does not capture. A flow the CNI allows on every TCP port stands for each always-excluded
    port and each port an annotation excludes, and a port range (NCA's ``15020-15021``) for those in it."""
    by_name: dict[str, list[Capture]] = {}
    for w in workloads:
        c = capture(w, namespaces)
        if c is not None:
            by_name.setdefault(f"{(w.get('metadata') or {}).get('namespace', 'default')}/{name(w)}", []).append(c)
    out: set[Flow] = set()
    for f in cni_flows:
        captures = by_name.get(f.dst)
        if not captures:
            continue
        excluded = set().union(*(c.exclude for c in captures))
        if f.port in ("*", "*/TCP"):
            ports = sorted(excluded)
        elif f.port.isdigit():
            ports = [f.port]
        elif (m := _RANGE.match(f.port)) is not None:
            ports = sorted(p for p in excluded if p.isdigit() and int(m[1]) <= int(p) <= int(m[2]))
        else:
            continue  # other protocols never meet Envoy's inbound listener
        out |= {Flow(f.src, f.dst, p, "combined") for p in ports if any(not c.captured(p) for c in captures)}
    return out
