"""Run every check on a stack (rendered under the mock engine) or on a user's manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.settings import Settings
from tools import engine
from tools.verify import Flow, Result, Route, Violation, connectivity, diff, intent, invariants, routing, schema

DEFAULT_KUBERNETES_VERSION = "1.34"


def _traffic(objects: list[dict[str, Any]], settings: Settings | None) -> tuple[list[Flow], list[Route], list[Violation]]:
    if settings is not None:
        scope = set(_guarded_namespaces(settings))
        peers = intent.peers(settings)
    else:
        scope = {o["metadata"].get("namespace", "default") for o in objects if o.get("kind") in connectivity.WORKLOAD_KINDS}
        peers = []
    flows = connectivity.flows(objects, peers, scope) if scope else []
    routes, route_violations = routing.table(objects)
    return flows, routes, route_violations


def _guarded_namespaces(settings: Settings) -> list[str]:
    """Namespaces the stack puts behind a default deny: the workloads', and observability's."""
    return [settings.apps.namespace] * settings.apps.enabled + [settings.observability.namespace] * settings.observability.enabled


def verify_stack(stack: str, config_file: Path | None = None, base_ref: str | None = None) -> Result:
    config_file = config_file or engine.stack_file(stack)
    settings = engine.settings(config_file, stack)  # raises pulumi.RunError with the clean message
    recording = engine.run(stack, config_file=config_file)
    objects = recording.manifests()
    result = Result(source=f"stack {stack}", checked=len(objects))
    result.violations += schema.check(objects, settings.cluster.kubernetes_version)
    result.flows, result.routes, route_violations = _traffic(objects, settings)
    result.violations += route_violations
    workload_ns = [settings.apps.namespace] if settings.apps.enabled else []
    result.violations += invariants.admits_all(objects)
    result.violations += invariants.default_deny(
        objects, _guarded_namespaces(settings), [f for f in result.flows if f.layer == "cni"]
    )
    result.violations += invariants.mtls_strict(objects, workload_ns, mesh_root="istio-system")
    result.violations += invariants.pinned(objects, recording)
    result.violations += invariants.ordering(recording)
    if settings.apps.enabled:
        result.violations += intent.check(settings, result.flows)
    if base_ref:
        base_objects, _ = diff.render_at(base_ref, stack)
        base_flows, base_routes, _ = _traffic(base_objects, settings) if base_objects else ([], [], [])
        result.diff = diff.compare(base_routes, result.routes, base_flows, result.flows)
    return result


def load_manifests(paths: list[Path]) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in paths:
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as err:
            raise pulumi.RunError(f"cannot read {path}: {err}") from None
        for doc in docs:
            if not doc:
                continue
            items = doc.get("items", []) if doc.get("kind") == "List" else [doc]
            objects += [i for i in items if isinstance(i, dict) and i.get("kind")]
    return objects


def verify_manifests(paths: list[Path], kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> Result:
    objects = load_manifests(paths)
    result = Result(source=", ".join(str(p) for p in paths), checked=len(objects))
    result.violations += schema.check(objects, kubernetes_version)
    result.flows, result.routes, route_violations = _traffic(objects, None)
    result.violations += route_violations
    workload_ns = sorted(
        {o["metadata"].get("namespace", "default") for o in objects if o.get("kind") in connectivity.WORKLOAD_KINDS}
    )
    result.violations += invariants.admits_all(objects)
    result.violations += invariants.default_deny(objects, workload_ns, [f for f in result.flows if f.layer == "cni"])
    if any(o.get("kind") in connectivity.MESH_KINDS for o in objects):
        injected = [
            o["metadata"]["name"]
            for o in objects
            if o.get("kind") == "Namespace" and (o["metadata"].get("labels") or {}).get("istio-injection") == "enabled"
        ]
        result.violations += invariants.mtls_strict(objects, injected, mesh_root=None)
    result.violations += invariants.pinned(objects)
    return result
