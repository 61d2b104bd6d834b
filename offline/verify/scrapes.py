"""What the Prometheus server scrapes: the jobs the prometheus chart writes into prometheus.yml.

Modelled on the chart, not on the program. Since chart 28.0 the chart's default jobs are the
``scrapeConfigs`` map (recorded at the pinned version in tests/data/upstream_charts.yaml,
``prometheus.defaultScrapeConfigs``, with its source): each key is a job named after it, enabled
unless ``enabled: false``; templates/cm.yaml renders them first, then
``serverFiles."prometheus.yml".scrape_configs``, then ``extraScrapeConfigs``. A stack that sends a
job list of its own without unsetting the map (``scrapeConfigs: null``) runs the chart's jobs too.

``check`` (rule ``scrapes``), on the values Helm gets (``offline.verify.helm``):

- no job discovers Kubernetes targets in every namespace: the namespaces' default denies block most
  of them, and every down target is a flow nobody declared;
- no two jobs share a name: Prometheus refuses to load such a configuration.
"""

from __future__ import annotations

from typing import Any

import yaml

from offline.engine import Recording
from offline.verify import Violation, registration_ref, upstream
from offline.verify import helm as helm_values

CHART = "prometheus"
RELEASE = "kubernetes:helm.sh/v3:Release"


def chart_defaults(row: dict[str, Any]) -> dict[str, Any]:
    """The recorded chart defaults the jobs come from: ``scrapeConfigs`` and an empty ``extraScrapeConfigs``."""
    return {"scrapeConfigs": row["defaultScrapeConfigs"]["jobs"], "extraScrapeConfigs": ""}


def jobs(values: dict[str, Any], defaults: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """Every job in prometheus.yml, in the chart's order: (job name, job, where it comes from)."""
    merged = helm_values.coalesce(values, defaults)
    out: list[tuple[str, dict[str, Any], str]] = []
    chart_jobs = defaults.get("scrapeConfigs") or {}
    for key, job in (merged.get("scrapeConfigs") or {}).items():
        job = dict(job or {})
        if not job.get("enabled", True):
            continue
        origin = "the chart's default job" if key in chart_jobs else "scrapeConfigs"
        out.append((job.get("job_name") or key, job, origin))
    files = merged.get("serverFiles") or {}
    for job in (files.get("prometheus.yml") or {}).get("scrape_configs") or []:
        out.append((job.get("job_name", ""), job, 'serverFiles."prometheus.yml".scrape_configs'))
    extra = merged.get("extraScrapeConfigs") or ""
    for job in (yaml.safe_load(extra) if extra else None) or []:
        out.append((job.get("job_name", ""), job, "extraScrapeConfigs"))
    return out


def problems(values: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    out = []
    seen: dict[str, str] = {}
    for name, job, origin in jobs(values, defaults):
        if name in seen:
            out.append(f"two jobs named {name} ({seen[name]}, {origin}): Prometheus refuses to load the configuration")
        seen.setdefault(name, origin)
        for sd in job.get("kubernetes_sd_configs") or []:
            if not (sd.get("namespaces") or {}).get("names") and not (sd.get("namespaces") or {}).get("own_namespace"):
                hint = " (scrapeConfigs: null unsets the chart's jobs)" if origin == "the chart's default job" else ""
                out.append(f"job {name} ({origin}) discovers {sd.get('role')} targets in every namespace{hint}")
    return out


def check(recording: Recording) -> list[Violation]:
    out = []
    for r in recording.by_type(RELEASE):
        if r.inputs.get("chart") != CHART:
            continue
        row = upstream.row(CHART)
        version = str(r.inputs.get("version"))
        if version != str(row["chart_version"]):
            out.append(
                Violation(
                    "scrapes",
                    registration_ref(r),
                    f"chart {CHART} {version}: its default jobs are recorded for {row['chart_version']} only "
                    f"({upstream.TABLE.name}); which jobs it runs is unknown",
                )
            )
            continue
        values = helm_values.release_values(r.inputs)
        out += [Violation("scrapes", registration_ref(r), p) for p in problems(values, chart_defaults(row))]
    return out
