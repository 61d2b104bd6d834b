"""The recorded resource graph: who waits for whom, as the engine would schedule it.

A resource starts only after everything it depends on is created, its parent is registered and its
provider exists; a component's children inherit the wait of the component's own dependencies,
because the SDK does not register a child before its parent. ``waits_for(a, b)`` answers whether
``a`` cannot start before ``b`` is done, following all three kinds of edge transitively.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from offline.engine import Recording, Registration


@dataclass(frozen=True)
class Graph:
    nodes: dict[str, Registration]

    @classmethod
    def of(cls, recording: Recording) -> Graph:
        return cls(recording.by_urn())

    def __hash__(self) -> int:
        return id(self)

    def edges(self, urn: str) -> list[str]:
        r = self.nodes[urn]
        out = list(r.dependencies)
        if r.parent and r.parent in self.nodes:
            out.append(r.parent)
        if r.provider and r.provider in self.nodes:
            out.append(r.provider)
        return out

    @cache  # noqa: B019 (graphs are short-lived and immutable)
    def ancestors(self, urn: str) -> frozenset[str]:
        """Everything ``urn`` transitively waits for."""
        seen: set[str] = set()
        todo = list(self.edges(urn))
        while todo:
            u = todo.pop()
            if u in seen or u not in self.nodes:
                continue
            seen.add(u)
            todo.extend(self.edges(u))
        return frozenset(seen)

    def waits_for(self, urn: str, other: str) -> bool:
        return other in self.ancestors(urn)
