"""Run every check on a stack (rendered under the mock engine) or on a user's manifests."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, cast

import pulumi
import yaml

from mesh_platform.settings import Settings
from mesh_platform.versions import KUBERNETES_VERSION
from offline import engine
from offline.verify import Flow, Result, Route, Violation, connectivity, diff, intent, invariants, routing, schema, scrapes

#: Schemas for ``--manifests``: the Kubernetes minor the stacks deploy by default.
DEFAULT_KUBERNETES_VERSION = KUBERNETES_VERSION


def _traffic(
    objects: list[dict[str, Any]], settings: Settings | None, fast: bool = True
) -> tuple[list[Flow], list[Route], list[Violation]]:
    if settings is not None:
        scope = set(_guarded_namespaces(settings))
        peers = intent.peers(settings)
    else:
        scope = {o["metadata"].get("namespace", "default") for o in objects if o.get("kind") in connectivity.WORKLOAD_KINDS}
        peers = []
    flows = connectivity.flows(objects, peers, scope, fast=fast) if scope else []
    routes, route_violations = routing.table(objects)
    return flows, routes, route_violations


def _guarded_namespaces(settings: Settings) -> list[str]:
    """Namespaces the stack puts behind a default deny: the workloads', and observability's."""
    return [settings.apps.namespace] * settings.apps.enabled + [settings.observability.namespace] * settings.observability.enabled


def verify_stack(stack: str, config_file: Path | None = None, base_ref: str | None = None, fast: bool = True) -> Result:
    """Every check on a stack; ``fast=False`` takes the straightforward path of each (same answers, slower)."""
    config_file = config_file or engine.stack_file(stack)
    settings = engine.settings(config_file, stack)  # raises pulumi.RunError with the clean message
    if base_ref:
        diff.resolve(base_ref)  # an unknown ref fails before any work
    version = settings.cluster.kubernetes_version
    # The schema worker loads its schemas while the stack renders here.
    with schema.CheckBeside(version) if fast else contextlib.nullcontext() as beside:
        recording = engine.run(stack, config_file=config_file)
        objects = recording.manifests()
        if beside is not None:
            beside.submit(objects)
        result = Result(source=f"stack {stack}", checked=len(objects))
        result.flows, result.routes, route_violations = _traffic(objects, settings, fast=fast)
        result.violations += beside.result() if beside is not None else schema.check(objects, version, fast=False)
    result.violations += route_violations
    workload_ns = [settings.apps.namespace] if settings.apps.enabled else []
    result.violations += invariants.admits_all(objects)
    result.violations += invariants.default_deny(
        objects, _guarded_namespaces(settings), [f for f in result.flows if f.layer == "cni"]
    )
    result.violations += invariants.mtls_strict(objects, workload_ns, mesh_root="istio-system")
    result.violations += invariants.pinned(objects, recording)
    result.violations += invariants.ordering(recording)
    result.violations += invariants.edges_hold(recording, settings)
    result.violations += scrapes.check(recording)
    if settings.apps.enabled:
        result.violations += intent.check(settings, result.flows)
    if base_ref:
        # The base is verified by its own code with its own settings, as an independent run.
        result.diff = diff.compare(base_ref, diff.verify_at(base_ref, stack), result.routes, result.flows)
    return result


def load_manifests(paths: list[Path]) -> list[dict[str, Any]]:
    """Every Kubernetes object of the files; a file with none, or with anything else, is an input error."""
    objects: list[dict[str, Any]] = []
    for path in paths:
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise pulumi.RunError(f"cannot read {path}: {' '.join(str(err).split())}") from None
        found = 0
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise pulumi.RunError(f"{path}: document {i + 1} is a YAML {type(doc).__name__}, not a Kubernetes object")
            items = doc.get("items") if doc.get("kind") == "List" else [doc]
            for item in items if isinstance(items, list) else [items]:
                problem = _not_an_object(item)
                if problem:
                    raise pulumi.RunError(f"{path}: document {i + 1} is no Kubernetes object ({problem})")
                objects.append(cast(dict[str, Any], item))  # _not_an_object found a mapping
                found += 1
        if not found:
            raise pulumi.RunError(f"{path}: no Kubernetes objects (the file is empty or only comments)")
    return objects


def _not_an_object(item: Any) -> str | None:
    """Why ``item`` is no Kubernetes object (apiVersion, kind, metadata.name), or None."""
    if not isinstance(item, dict):
        return f"a YAML {type(item).__name__}"
    missing = [k for k in ("apiVersion", "kind") if not isinstance(item.get(k), str) or not item.get(k)]
    meta = item.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        missing.append("metadata.name")
    return f"no {', '.join(missing)}" if missing else None


def verify_manifests(paths: list[Path], kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> Result:
    try:
        kubernetes_version = schema.known_version(kubernetes_version)
    except ValueError as err:
        raise pulumi.RunError(f"--kubernetes-version {err}") from None
    objects = load_manifests(paths)
    result = Result(source=", ".join(str(p) for p in paths), checked=len(objects))
    result.violations += schema.check(objects, kubernetes_version)
    try:
        _analyse_manifests(result, objects)
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as err:
        # The traffic and invariant checks read fields by their schema types. An object that breaks
        # its schema can break them too: that is an input error naming the object, not a crash.
        # An object set that passes every schema still lets the error through (a bug to fix).
        broken = sorted({v.object for v in result.violations if v.rule == "schema" and not v.message.startswith("no schema for")})
        if not broken:
            raise
        raise pulumi.RunError(
            f"cannot analyse traffic with schema violations in {', '.join(broken[:5])}{' ...' if len(broken) > 5 else ''} "
            f"({type(err).__name__} reading them); fix those first"
        ) from None
    return result


def _analyse_manifests(result: Result, objects: list[dict[str, Any]]) -> None:
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
