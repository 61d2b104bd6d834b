"""Offline verification of a rendered stack or of any Kubernetes YAML: schemas, flows, routes, invariants.

``python -m tools.verify --stack dev`` renders the stack (tools.render's engine) and checks it;
``python -m tools.verify --manifests a.yaml b.yaml`` checks a user's own manifests. Each check lives
in its own module and returns ``Violation``s; ``report`` formats the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Violation:
    rule: str
    object: str
    """``Kind namespace/name`` (or a workload ``namespace/name``, or a graph URN)."""
    message: str


@dataclass(frozen=True, order=True)
class Flow:
    src: str
    """``namespace/workload``, ``external``, or an IP range."""
    dst: str
    port: str
    """``5000`` (TCP), ``53/UDP``, or ``*`` for every port and protocol."""
    layer: str
    """``cni`` (NetworkPolicy), ``mesh`` (Istio authorization), or ``combined``."""

    def __str__(self) -> str:
        return f"{self.src} → {self.dst}:{self.port}"


@dataclass(frozen=True, order=True)
class Route:
    host: str
    path: str
    service: str
    subset: str
    weight: int

    def __str__(self) -> str:
        return f"{self.host}{self.path} → {self.service} {self.subset} ({self.weight}%)"


@dataclass
class Result:
    source: str
    violations: list[Violation] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    checked: int = 0
    """How many objects were schema-checked."""
    diff: dict[str, list[str]] | None = None

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "ok": self.ok,
            "checked": self.checked,
            "violations": [asdict(v) for v in sorted(self.violations)],
            "flows": [asdict(f) for f in sorted(self.flows)],
            "routes": [asdict(r) for r in sorted(self.routes)],
        }
        if self.diff is not None:
            out["diff"] = self.diff
        return out


def ref(obj: dict[str, Any]) -> str:
    """``Kind namespace/name`` of a manifest, for messages."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind', '?')} {ns + '/' if ns else ''}{meta.get('name', '?')}"
