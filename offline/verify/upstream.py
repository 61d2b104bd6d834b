"""The recorded upstream facts the verifier's models rest on: tests/data/upstream_charts.yaml.

What the real charts render at the pinned versions (pod labels, Services, ports) and the prometheus
chart's default scrape jobs, each with its source (file, tag, line in the chart's repository). The
verifier reads that table as data, as the stand-in charts (tests/itest/local/charts.py) and
tests/test_upstream_charts.py do, and never the program's own constants: a label or a job the
program gets wrong cannot hide behind the same assumption here. Nothing of ``tests`` is imported.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import yaml

from offline.engine import ROOT

TABLE = ROOT / "tests" / "data" / "upstream_charts.yaml"


@cache
def _table() -> dict[str, Any]:
    return yaml.safe_load(TABLE.read_text())


def row(chart: str) -> dict[str, Any]:
    """The chart's row (a copy): ``chart_version``, ``read_at_tag``, ``release``, ``workloads``, ..."""
    return copy.deepcopy(_table()[chart])


def workload(chart: str, name: str) -> dict[str, Any]:
    """One Deployment or DaemonSet the chart renders, by name."""
    for w in row(chart)["workloads"]:
        if w["name"] == name:
            return w
    raise KeyError(f"{TABLE.name} records no workload {name} of chart {chart}")


def pod_labels(chart: str, name: str) -> dict[str, str]:
    """The labels the chart puts on the pods of workload ``name`` (with the stack's release name)."""
    return {str(k): str(v) for k, v in workload(chart, name)["podLabels"].items()}
