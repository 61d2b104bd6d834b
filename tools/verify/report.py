"""Formats: text for a terminal, Markdown (with a Mermaid diagram) for a pull-request comment, JSON."""

from __future__ import annotations

import json
import re
from collections import defaultdict

from tools.verify import Result

#: Marker that lets a CI job find and update its own PR comment instead of adding another.
COMMENT_MARKER = "<!-- mesh-platform-verify -->"


def _status(r: Result) -> str:
    return "OK" if r.ok else f"{len(r.violations)} violation(s)"


def text(r: Result) -> str:
    lines = [f"{r.source}: {_status(r)} — {r.checked} objects schema-checked, {len(r.routes)} routes, {len(r.flows)} flows"]
    if r.violations:
        lines.append("violations:")
        lines += [f"  [{v.rule}] {v.object}: {v.message}" for v in sorted(r.violations)]
    if r.routes:
        lines.append("routes:")
        lines += [f"  {x}" for x in sorted(r.routes)]
    combined = [f for f in r.flows if f.layer == "combined"]
    if combined:
        lines.append("allowed flows (both layers):")
        lines += [f"  {f}" for f in sorted(combined)]
    if r.diff is not None:
        lines.append("changes against the base:" if any(r.diff.values()) else "no change in routes or flows against the base")
        lines += [f"  {line}" for part in ("routes", "flows") for line in r.diff.get(part, [])]
    return "\n".join(lines) + "\n"


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def mermaid(r: Result) -> str:
    """Gateway → services → versions, then the workload-to-workload flows both layers allow."""
    lines = ["flowchart LR"]
    seen: set[str] = set()

    def node(name: str, label: str | None = None) -> str:
        nid = _id(name)
        if nid not in seen:
            seen.add(nid)
            lines.append(f'  {nid}["{label or name}"]')
        return nid

    for route in sorted(r.routes):
        if "." in route.host and route.host.endswith(".svc.cluster.local"):
            continue  # in-mesh host; the gateway's view is the one reviewers read
        gw = node(f"gw:{route.host}", f"gateway {route.host}")
        svc = node(route.service)
        version = node(f"{route.service}:{route.subset}", route.subset)
        lines.append(f'  {gw} -->|"{route.path}"| {svc}')
        lines.append(f'  {svc} -->|"{route.weight}%"| {version}')
    ports: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in r.flows:
        if f.layer == "combined":
            ports[(f.src, f.dst)].append(f.port)
    for (src, dst), ps in sorted(ports.items()):
        lines.append(f'  {node(src)} -.->|"{", ".join(sorted(ps))}"| {node(dst)}')
    # Deduplicate edges while keeping their order.
    return "\n".join(dict.fromkeys(lines))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(r: Result) -> str:
    icon = "✅" if r.ok else "❌"
    out = [COMMENT_MARKER, f"### {icon} mesh-platform verify: `{r.source}` — {_status(r)}", ""]
    out.append(f"{r.checked} objects schema-checked, {len(r.routes)} routes, {len(r.flows)} flows (per layer).")
    if r.violations:
        out += ["", "| rule | object | message |", "|---|---|---|"]
        out += [f"| {v.rule} | `{v.object}` | {_cell(v.message)} |" for v in sorted(r.violations)]
    if r.diff is not None:
        out += ["", "#### Changes against the base", ""]
        changed = [line for part in ("routes", "flows") for line in r.diff.get(part, [])]
        out += ["```diff", *changed, "```"] if changed else ["No change in routes or allowed flows."]
    if r.routes:
        out += ["", "#### Routes", "", "| host | path | service | subset | weight |", "|---|---|---|---|---|"]
        out += [f"| {x.host} | `{x.path}` | {x.service} | {x.subset} | {x.weight}% |" for x in sorted(r.routes)]
    out += ["", "#### Traffic", "", "```mermaid", mermaid(r), "```"]
    flows = sorted(f for f in r.flows if f.layer == "combined")
    if flows:
        out += ["", "<details><summary>Allowed flows (both layers)</summary>", "", *[f"- `{f}`" for f in flows], "", "</details>"]
    return "\n".join(out) + "\n"


def as_json(r: Result) -> str:
    return json.dumps(r.as_json(), indent=2, ensure_ascii=False) + "\n"


FORMATS = {"text": text, "markdown": markdown, "json": as_json}
