"""Allowed flows, computed by network-config-analyzer (NCA) from the policies themselves.

NCA evaluates Kubernetes NetworkPolicies (the CNI layer, what Calico enforces) and Istio
AuthorizationPolicy/PeerAuthentication (the mesh layer) over the workloads it is given, and reports
every allowed connection. It runs three times: CNI policies alone, Istio policies alone, and both
together (a connection passes only if every layer admits it). Its per-connection listing
(``txt_no_fw_rules``) is parsed into ``Flow``s named ``namespace/workload`` (a Deployment's ``app``
label), ``external`` for addresses outside the cluster.

The mesh layer governs TCP into injected pods only; its non-TCP verdicts are not reported.

What this needs of NCA's internals (its fast path's replacements of two private methods, its logger,
its output streams) is in ``offline.thirdparty.nca``; on an NCA version not tested there, the fast
path runs NCA as shipped.
"""

from __future__ import annotations

import concurrent.futures
import gc
import multiprocessing
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from offline.thirdparty import nca
from offline.verify import Flow, sidecar

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job", "CronJob")
CNI_KINDS = ("NetworkPolicy",)
MESH_KINDS = ("AuthorizationPolicy", "PeerAuthentication", "Sidecar")
_LINE = re.compile(r"^(?P<src>\S+) => (?P<dst>\S+) : (?P<conn>.+)$")
_PEER = re.compile(r"^(?P<ns>[^/\s]+)/(?P<name>[^\[\s]+)\[(?P<kind>\w+)\]$")
_FULL_RANGE = ("0.0.0.0-255.255.255.255", "0.0.0.0/0")


@dataclass(frozen=True)
class Peer:
    """A workload the charts create (not in the manifests), modelled by its known labels."""

    namespace: str
    name: str
    labels: dict[str, str]
    service_account: str

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "spec": {
                "selector": {"matchLabels": self.labels},
                "template": {
                    "metadata": {"labels": self.labels},
                    "spec": {"serviceAccountName": self.service_account, "containers": [{"name": "c", "image": "x"}]},
                },
            },
        }


def _workload_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    labels = template.get("labels") or meta.get("labels") or {}
    return labels.get("app") or meta.get("name", "?")


def _resources(objects: list[dict[str, Any]], peers: Iterable[Peer]) -> list[dict[str, Any]]:
    """Namespaces (with the label Kubernetes sets on each) and workloads, for NCA's topology."""
    workloads = [o for o in objects if o.get("kind") in WORKLOAD_KINDS] + [p.manifest() for p in peers]
    namespaces: dict[str, dict[str, str]] = {}
    for o in objects:
        if o.get("kind") == "Namespace":
            namespaces[o["metadata"]["name"]] = dict(o["metadata"].get("labels") or {})
    for w in workloads:
        namespaces.setdefault(w["metadata"].get("namespace", "default"), {})
    ns_docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {**labels, "kubernetes.io/metadata.name": n}}}
        for n, labels in sorted(namespaces.items())
    ]
    return ns_docs + workloads


def _run_nca(resources: list[dict[str, Any]], policies: list[dict[str, Any]], fast: bool = True, tcp_only: bool = False) -> str:
    """NCA's connectivity map of ``resources`` under ``policies``, as text; ``tcp_only``: the
    caller reads only its TCP part, so (on the fast path) NCA leaves the non-TCP part empty."""
    # NCA reads its files with libyaml (CSafeLoader); libyaml writes them as fast.
    dumper = yaml.CSafeDumper if fast else yaml.SafeDumper
    with tempfile.TemporaryDirectory(prefix="mesh-verify-") as tmp:
        res, pol, out = Path(tmp, "resources.yaml"), Path(tmp, "policies.yaml"), Path(tmp, "out.txt")
        res.write_text(yaml.dump_all(resources, Dumper=dumper))
        # With no policy of a layer everything is allowed; NCA needs a file either way.
        pol.write_text(yaml.dump_all(policies, Dumper=dumper) if policies else "")
        args = ["--connectivity", str(pol), "-r", str(res), "--output_format", "txt_no_fw_rules", "--file_out", str(out)]
        # NCA's chatter goes to a log; its results are read from a file.
        log = Path(tmp, "nca.log")
        nca.run(args, log, patched=fast, tcp_only=tcp_only)
        if not out.exists():
            raise RuntimeError(f"network-config-analyzer produced no result: {log.read_text()[-500:]}")
        return out.read_text()


def _run_all(
    resources: list[dict[str, Any]], layers: list[list[dict[str, Any]]], tcp_only: list[bool], fast: bool = True
) -> list[str]:
    """NCA's answers for each policy list; the runs are independent, so they share the machine's cores.

    Workers are forked (no interpreter start-up, NCA already imported) and get only their inputs;
    ``fast=False``: each runs NCA as shipped.
    """
    nca.preload()  # before the fork, once for every worker

    workers = min(len(layers), os.cpu_count() or 1)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [_run_nca(resources, policies, fast, tcp_only=tcp) for policies, tcp in zip(layers, tcp_only, strict=True)]
    # The layer with the most policies (both together) takes longest: started first, the
    # shorter ones share the other worker instead of waiting behind it.
    order = sorted(range(len(layers)), key=lambda i: -len(layers[i]))
    # gc.freeze: a worker's collector leaves alone the heap it inherits (the rendered stack),
    # which it would otherwise walk again and again while NCA builds its sets (a third of its time).
    fork = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=fork, initializer=gc.freeze) as pool:
        runs = pool.map(
            _run_nca, [resources] * len(layers), [layers[i] for i in order], [fast] * len(layers), [tcp_only[i] for i in order]
        )
        answers = dict(zip(order, runs, strict=True))
    return [answers[i] for i in range(len(layers))]


def _ports(conn: str, section: str) -> list[str]:
    """NCA's connection text → port labels: ``5000`` (TCP), ``53/UDP``, ``*`` (everything) ..."""
    conn = conn.strip()
    if conn == "All connections":
        return {"": ["*"], "TCP": ["*/TCP"], "non-TCP": ["*/non-TCP"]}[section]
    out: list[str] = []
    for group in re.findall(r"\{([^}]*)\}", conn):
        m = re.match(r"^(?:protocols:(?P<protos>[A-Za-z0-9, \-]+?))?,?(?:dst_ports:(?P<ports>[0-9,\- ]+))?$", group.strip())
        if not m:
            out.append(group)
            continue
        protos = [p.strip() for p in (m["protos"] or "").split(",") if p.strip()] or (
            ["TCP"] if section == "TCP" else ["non-TCP"] if section == "non-TCP" else ["*"]
        )
        ports = [p.strip() for p in (m["ports"] or "*").split(",") if p.strip()]
        for proto in protos:
            for port in ports:
                out.append(port if proto == "TCP" else f"{port}/{proto}")
    return out


def _peer_name(text: str, names: dict[tuple[str, str], str]) -> str:
    m = _PEER.match(text)
    if m:
        return f"{m['ns']}/{names.get((m['ns'], m['name']), m['name'])}"
    return "external" if text in _FULL_RANGE else f"external:{text}"


def parse(text: str, layer: str, names: dict[tuple[str, str], str], tcp_only: bool = False) -> set[Flow]:
    flows: set[Flow] = set()
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("TCP Connections"):
            section = "TCP"
            continue
        if line.startswith("non-TCP Connections"):
            section = "non-TCP"
            continue
        m = _LINE.match(line)
        if not m or (tcp_only and section == "non-TCP"):
            continue
        src, dst = _peer_name(m["src"], names), _peer_name(m["dst"], names)
        for port in _ports(m["conn"], section):
            flows.add(Flow(src, dst, port, layer))
    return flows


def flows(
    objects: list[dict[str, Any]], peers: Iterable[Peer] = (), scope: set[str] | None = None, fast: bool = True
) -> list[Flow]:
    """Allowed flows per layer; only those with an end in ``scope`` namespaces (all when None).

    ``fast=False`` runs NCA exactly as shipped (see ``offline.thirdparty.nca``); the answer is the
    same. On an NCA version not tested there, ``fast=True`` runs it as shipped too (one note on stderr).
    """
    peers = list(peers)
    resources = _resources(objects, peers)
    names = {
        (w["metadata"].get("namespace", "default"), w["metadata"]["name"]): _workload_name(w)
        for w in resources
        if w["kind"] in WORKLOAD_KINDS
    }
    cni = [o for o in objects if o.get("kind") in CNI_KINDS]
    mesh = [o for o in objects if o.get("kind") in MESH_KINDS]
    layers = [cni, mesh, cni + mesh] if mesh else [cni]
    tcp_only = [False, True, False][: len(layers)]  # the mesh layer alone is read for TCP only
    if fast:
        # An NCA version not tested with the fast path's replacements: NCA as shipped, still in parallel.
        texts = _run_all(resources, layers, tcp_only, fast=nca.speedups())
    else:
        texts = [_run_nca(resources, policies, fast=False) for policies in layers]
    result: set[Flow] = set()
    result |= parse(texts[0], "cni", names)
    if mesh:
        result |= parse(texts[1], "mesh", names, tcp_only=True)
        result |= parse(texts[2], "combined", names)
        # NCA applies AuthorizationPolicy to every port; the sidecar never sees the ones it does not capture.
        result |= sidecar.uncaptured(
            [f for f in result if f.layer == "cni"],
            [w for w in resources if w["kind"] in WORKLOAD_KINDS],
            {d["metadata"]["name"]: d["metadata"]["labels"] for d in resources if d["kind"] == "Namespace"},
            _workload_name,
        )
    else:
        result |= {Flow(f.src, f.dst, f.port, "combined") for f in result if f.layer == "cni"}

    def in_scope(f: Flow) -> bool:
        if scope is None:
            return True
        return any(end.split("/")[0] in scope for end in (f.src, f.dst) if "/" in end and not end.startswith("external"))

    return sorted(f for f in result if in_scope(f))
