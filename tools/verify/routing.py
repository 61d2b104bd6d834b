"""The routing table: for each gateway host (and in-mesh host) and path, which service, subset and weight
answers, and whether every subset really selects pods."""

from __future__ import annotations

from typing import Any

from tools.verify import Route, Violation, ref


def _short(host: str, namespace: str) -> tuple[str, str]:
    """``name``, ``name.ns`` or ``name.ns.svc.cluster.local`` → (namespace, name)."""
    parts = host.split(".")
    return (parts[1], parts[0]) if len(parts) > 1 else (namespace, parts[0])


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return (obj.get("metadata") or {}).get("labels") or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def _path(route: dict[str, Any]) -> str:
    matches = route.get("match") or []
    if not matches:
        return "/"
    uri = matches[0].get("uri") or {}
    for kind in ("exact", "prefix", "regex"):
        if kind in uri:
            return uri[kind] if kind != "regex" else f"~{uri[kind]}"
    return "/"


def table(objects: list[dict[str, Any]]) -> tuple[list[Route], list[Violation]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        by_kind.setdefault(o.get("kind", ""), []).append(o)
    gateways = {(g["metadata"].get("namespace", "default"), g["metadata"]["name"]): g for g in by_kind.get("Gateway", [])}
    services = {(s["metadata"].get("namespace", "default"), s["metadata"]["name"]): s for s in by_kind.get("Service", [])}
    subsets: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for dr in by_kind.get("DestinationRule", []):
        key = _short(dr["spec"]["host"], dr["metadata"].get("namespace", "default"))
        subsets[key] = {s["name"]: s.get("labels") or {} for s in dr["spec"].get("subsets") or []}
    pods = [
        (o["metadata"].get("namespace", "default"), _labels(o))
        for kind in ("Deployment", "StatefulSet", "DaemonSet", "Pod")
        for o in by_kind.get(kind, [])
    ]
    routes: list[Route] = []
    violations: list[Violation] = []
    for vs in by_kind.get("VirtualService", []):
        ns, where = vs["metadata"].get("namespace", "default"), ref(vs)
        spec = vs.get("spec") or {}
        hosts: list[str] = []
        for gw_ref in spec.get("gateways") or ["mesh"]:
            if gw_ref == "mesh":
                hosts += [h for h in spec.get("hosts", []) if (_short(h, ns) in services)]
                continue
            gw_ns, _, gw_name = gw_ref.rpartition("/")
            gw = gateways.get((gw_ns or ns, gw_name))
            if gw is None:
                violations.append(Violation("routing", where, f"binds to gateway {gw_ref!r}, which does not exist"))
                continue
            served = {h.split("/")[-1] for s in gw["spec"].get("servers", []) for h in s.get("hosts", [])}
            hosts += [h for h in spec.get("hosts", []) if h in served or "*" in served]
        for i, http in enumerate(spec.get("http") or []):
            dests = http.get("route") or []
            total = sum(d.get("weight", 100 if len(dests) == 1 else 0) for d in dests)
            if dests and total != 100:
                violations.append(Violation("routing", where, f"http[{i}] weights sum to {total}, not 100"))
            for d in dests:
                dest = d.get("destination") or {}
                svc_key = _short(dest.get("host", ""), ns)
                subset = dest.get("subset", "")
                weight = d.get("weight", 100 if len(dests) == 1 else 0)
                for host in dict.fromkeys(hosts):
                    routes.append(Route(host, _path(http), f"{svc_key[0]}/{svc_key[1]}", subset or "*", weight))
                violations += _resolve(where, i, svc_key, subset, services, subsets, pods)
    return sorted(set(routes)), violations


def _resolve(where, i, svc_key, subset, services, subsets, pods) -> list[Violation]:
    svc = services.get(svc_key)
    name = f"{svc_key[0]}/{svc_key[1]}"
    if svc is None:
        return [Violation("routing", where, f"http[{i}] routes to {name}, which has no Service")]
    selector = (svc.get("spec") or {}).get("selector") or {}
    wanted = dict(selector)
    if subset:
        known = subsets.get(svc_key)
        if known is None or subset not in known:
            return [Violation("routing", where, f"http[{i}] names subset {subset!r} of {name}, which no DestinationRule defines")]
        wanted.update(known[subset])
    if not any(ns == svc_key[0] and all(labels.get(k) == v for k, v in wanted.items()) for ns, labels in pods):
        return [Violation("routing", where, f"http[{i}] subset {subset or '*'} of {name} selects no pods (labels {wanted})")]
    return []
