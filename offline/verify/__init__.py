"""Offline verification of a rendered stack or of any Kubernetes YAML: schemas, flows, routes, invariants.

``python -m offline.verify --stack dev`` renders the stack (offline.render's engine) and checks it;
``python -m offline.verify --manifests a.yaml b.yaml`` checks a user's own manifests. Each check lives
in its own module and returns ``Violation``s; ``report`` formats the result. Imports the product
and the rest of ``offline``, never ``ops`` or ``tests``; the models of what the real charts run
(``intent``'s chart pods, ``scrapes``' default jobs) read the recorded upstream table
tests/data/upstream_charts.yaml as data (``upstream``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Violation:
    rule: str
    object: str
    """``Kind namespace/name`` (or a workload ``namespace/name``, or ``src → dst`` for a flow)."""
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
    diff: dict[str, Any] | None = None
    """Against a base ref: ``ref``, and ``routes``/``flows`` as ``+``/``-`` lines."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"diff": self.diff} if self.diff is not None else {}
        out |= {
            "source": self.source,
            "ok": self.ok,
            "checked": self.checked,
            "violations": [asdict(v) for v in sorted(self.violations)],
            "flows": [asdict(f) for f in sorted(self.flows)],
            "routes": [asdict(r) for r in sorted(self.routes)],
        }
        return out


def ref(obj: dict[str, Any]) -> str:
    """``Kind namespace/name`` of a manifest, for messages."""
    meta = obj.get("metadata") or {}
    return kind_ref(obj.get("kind", "?"), meta.get("namespace"), meta.get("name", "?"))


def kind_ref(kind: Any, namespace: Any, name: Any) -> str:
    """``Kind namespace/name`` (``Kind name`` without a namespace); any YAML type is shown as given."""
    return f"{kind} {f'{namespace}/' if namespace else ''}{name}"


def registration_ref(r: Any) -> str:
    """``Kind namespace/name`` of a recorded registration (a Helm release is ``Release ns/name``,
    a component ``Type name``), for messages: never a URN."""
    kind = r.type.rsplit(":", 1)[-1]
    if r.type == "kubernetes:helm.sh/v3:Release":
        ns, name = r.inputs.get("namespace"), r.inputs.get("name") or r.name
    elif r.type.startswith("kubernetes:"):
        meta = r.inputs.get("metadata") or {}
        ns, name = meta.get("namespace"), meta.get("name") or r.name
    else:
        ns, name = None, r.name
    return kind_ref(kind, ns, name)
