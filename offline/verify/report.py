"""Formats: text for a terminal, Markdown (with a Mermaid diagram) for a pull-request comment, JSON."""

from __future__ import annotations

import json
import re
from collections import defaultdict

from offline.verify import Result

#: Marker that lets a CI job find and update its own PR comment instead of adding another.
COMMENT_MARKER = "<!-- mesh-platform-verify -->"


def _status(r: Result) -> str:
    return "OK" if r.ok else f"{len(r.violations)} violation(s)"


def _combined(r: Result) -> list:
    return sorted(f for f in r.flows if f.layer == "combined")


def _counts(r: Result) -> str:
    """The headline: each count is the length of a list the report shows."""
    return f"{r.checked} objects schema-checked, {len(r.routes)} routes, {len(_combined(r))} allowed flows (both layers)"


def _changes(r: Result) -> list[str]:
    assert r.diff is not None
    return [line for part in ("routes", "flows") for line in r.diff.get(part, [])]


def text(r: Result) -> str:
    lines = [f"{r.source}: {_status(r)} — {_counts(r)}"]
    if r.diff is not None:
        changed = _changes(r)
        lines.append(f"changes against {r.diff['ref']}:" if changed else f"no change in routes or flows against {r.diff['ref']}")
        lines += [f"  {line}" for line in changed]
    if r.violations:
        lines.append("violations:")
        lines += [f"  [{v.rule}] {v.object}: {v.message}" for v in sorted(r.violations)]
    if r.routes:
        lines.append("routes:")
        lines += [f"  {x}" for x in sorted(r.routes)]
    combined = _combined(r)
    if combined:
        lines.append("allowed flows (both layers):")
        lines += [f"  {f}" for f in combined]
    return "\n".join(lines) + "\n"


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


#: Under the diagram: what its two kinds of edge mean.
LEGEND = (
    "Solid arrows: routes, from the host a request names to the service subset that answers, labelled "
    "with the path and the share of requests. Dotted arrows: flows both layers allow, labelled with the ports."
)


def mermaid(r: Result) -> str:
    """Each route (host → service subset, path and weight), then the flows both layers allow;
    empty when there is nothing to draw."""
    lines = ["flowchart LR"]
    ids: dict[str, str] = {}

    def node(name: str, label: str | None = None) -> str:
        if name not in ids:
            nid = base = _id(name)
            while nid in ids.values():  # names that differ only in punctuation get distinct nodes
                nid = f"{base}_{len(ids)}"
            ids[name] = nid
            lines.append(f'  {nid}["{_label(label or name)}"]')
        return ids[name]

    for route in sorted(r.routes):
        in_mesh = route.host.endswith(".svc.cluster.local")
        host = node(f"host {route.host}", f"{'in-mesh host' if in_mesh else 'host'} {route.host}")
        subset = node(f"subset {route.service} {route.subset}", f"{route.service} {route.subset}")
        lines.append(f'  {host} -->|"{_label(route.path)} {route.weight}%"| {subset}')
    ports: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in r.flows:
        if f.layer == "combined":
            ports[(f.src, f.dst)].append(f.port)
    for (src, dst), ps in sorted(ports.items()):
        lines.append(f'  {node(src)} -.->|"{", ".join(sorted(ps))}"| {node(dst)}')
    if len(lines) == 1:
        return ""
    # Deduplicate edges while keeping their order.
    return "\n".join(dict.fromkeys(lines))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(r: Result) -> str:
    icon = "✅" if r.ok else "❌"
    out = [COMMENT_MARKER, f"### {icon} mesh-platform verify: `{r.source}` — {_status(r)}", ""]
    if r.diff is not None:
        out += [f"#### Changes against `{r.diff['ref']}`", ""]
        changed = _changes(r)
        out += ["```diff", *changed, "```"] if changed else ["No change in routes or allowed flows."]
        out.append("")
    out.append(f"{_counts(r)}.")
    if r.violations:
        out += ["", "| rule | object | message |", "|---|---|---|"]
        out += [f"| {v.rule} | `{v.object}` | {_cell(v.message)} |" for v in sorted(r.violations)]
    if r.routes:
        out += ["", "#### Routes", "", "| host | path | service | subset | weight |", "|---|---|---|---|---|"]
        out += [f"| {x.host} | `{x.path}` | {x.service} | {x.subset} | {x.weight}% |" for x in sorted(r.routes)]
    diagram = mermaid(r)
    if diagram:
        out += ["", "#### Traffic", "", "```mermaid", diagram, "```", "", LEGEND]
    flows = _combined(r)
    if flows:
        out += ["", "<details><summary>Allowed flows (both layers)</summary>", "", *[f"- `{f}`" for f in flows], "", "</details>"]
    return "\n".join(out) + "\n"


def as_json(r: Result) -> str:
    return json.dumps(r.as_json(), indent=2, ensure_ascii=False) + "\n"


FORMATS = {"text": text, "markdown": markdown, "json": as_json}
