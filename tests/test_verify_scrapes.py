"""offline.verify.scrapes: the jobs the prometheus chart runs, its own default jobs included.

The model takes the chart's default jobs from the recorded upstream table, never from the program:
the stack's job list is only half of prometheus.yml unless the chart's ``scrapeConfigs`` map is
unset, and each check here is shown to fail when that unsetting is dropped.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import LIKE, one, render_config, run_config

from components import observability as obs
from mesh_platform.versions import PROMETHEUS_CHART_VERSION
from offline.verify import helm, scrapes, upstream

RELEASE = "kubernetes:helm.sh/v3:Release"
TABLE = yaml.safe_load((Path(__file__).parent / "data" / "upstream_charts.yaml").read_text())
DEFAULTS = scrapes.chart_defaults(TABLE["prometheus"])
OWN_JOBS = ["prometheus", "kubernetes-pods", "istiod", "calico-felix", "calico-typha"]


def _prometheus(rec):
    return one(rec, RELEASE, "observability-prometheus")


def _dev():
    return run_config("dev", **LIKE["dev"])


def test_the_table_is_recorded_for_the_pinned_chart_and_read_as_is() -> None:
    assert str(TABLE["prometheus"]["chart_version"]) == PROMETHEUS_CHART_VERSION
    assert upstream.row("prometheus") == TABLE["prometheus"]
    # The chart's default jobs (charts/prometheus/values.yaml scrapeConfigs at the recorded tag).
    assert list(DEFAULTS["scrapeConfigs"]) == [
        "prometheus",
        "kubernetes-api-servers",
        "kubernetes-nodes",
        "kubernetes-nodes-cadvisor",
        "kubernetes-service-endpoints",
        "kubernetes-service-endpoints-slow",
        "prometheus-pushgateway",
        "kubernetes-services",
        "kubernetes-pods",
        "kubernetes-pods-slow",
    ]


def test_the_stack_runs_its_own_jobs_and_none_of_the_chart_s() -> None:
    prom = _prometheus(_dev())
    values = helm.release_values(prom.inputs)
    assert "scrapeConfigs" in values and values["scrapeConfigs"] is None
    assert [name for name, _, _ in scrapes.jobs(values, DEFAULTS)] == OWN_JOBS
    assert scrapes.check(_dev()) == []


def test_without_the_values_file_the_chart_s_jobs_come_back_and_are_reported() -> None:
    rec = copy.deepcopy(_dev())
    prom = _prometheus(rec)
    del prom.inputs["valueYamlFiles"]
    names = [name for name, _, _ in scrapes.jobs(helm.release_values(prom.inputs), DEFAULTS)]
    assert names == [*DEFAULTS["scrapeConfigs"], *OWN_JOBS]
    found = [v.message for v in scrapes.check(rec)]
    assert (
        'two jobs named prometheus (the chart\'s default job, serverFiles."prometheus.yml".scrape_configs): Prometheus refuses to load the configuration'
        in found
    )
    every_ns = [m for m in found if "in every namespace (scrapeConfigs: null unsets the chart's jobs)" in m]
    assert len(every_ns) == len(DEFAULTS["scrapeConfigs"]) - 1  # all but the static prometheus job
    assert {v.object for v in scrapes.check(rec)} == {"Release observability/prometheus"}


def test_a_program_that_stops_unsetting_the_chart_s_jobs_fails(monkeypatch) -> None:
    monkeypatch.setattr(obs, "PROMETHEUS_VALUES_FILES", ())
    rec = render_config("dev", **LIKE["dev"])
    assert "valueYamlFiles" not in _prometheus(rec).inputs
    assert any("two jobs named prometheus" in v.message for v in scrapes.check(rec))
    # An empty map unsets nothing: Helm merges it with the chart's.
    monkeypatch.setattr(obs, "PROMETHEUS_VALUES_FILES", ("scrapeConfigs: {}\n",))
    assert any("kubernetes-nodes" in v.message for v in scrapes.check(render_config("dev", **LIKE["dev"])))


def test_a_job_of_the_stack_that_discovers_everywhere_fails() -> None:
    rec = copy.deepcopy(_dev())
    jobs = _prometheus(rec).inputs["values"]["serverFiles"]["prometheus.yml"]["scrape_configs"]
    del jobs[1]["kubernetes_sd_configs"][0]["namespaces"]
    (v,) = scrapes.check(rec)
    assert v.message == (
        'job kubernetes-pods (serverFiles."prometheus.yml".scrape_configs) discovers pod targets in every namespace'
    )


def test_a_chart_version_without_recorded_defaults_is_not_guessed() -> None:
    rec = copy.deepcopy(_dev())
    _prometheus(rec).inputs["version"] = "29.27.0"
    (v,) = scrapes.check(rec)
    assert "its default jobs are recorded for 29.25.0 only" in v.message


def test_disabled_and_renamed_chart_jobs() -> None:
    values = {"scrapeConfigs": {"kubernetes-nodes": {"enabled": False}, "kubernetes-pods": {"job_name": "pods"}}}
    names = [n for n, _, _ in scrapes.jobs(values, DEFAULTS)]
    assert "kubernetes-nodes" not in names and "pods" in names and "kubernetes-pods" not in names
    values = {"extraScrapeConfigs": "- job_name: prometheus\n  static_configs: [{targets: ['x:1']}]\n", "scrapeConfigs": None}
    assert [n for n, _, origin in scrapes.jobs(values, DEFAULTS)] == ["prometheus"]


@pytest.mark.parametrize(
    ("values", "defaults", "want"),
    [
        ({"a": None}, {"a": {"x": 1}, "b": 2}, {"b": 2}),  # null deletes a default
        ({"a": {"y": 2}}, {"a": {"x": 1}}, {"a": {"x": 1, "y": 2}}),  # maps merge
        ({"a": [3]}, {"a": [1, 2]}, {"a": [3]}),  # a list replaces
        ({"a": {"x": None}}, {"a": {"x": 1, "z": 0}}, {"a": {"z": 0}}),  # also nested
        ({"n": None}, {}, {"n": None}),  # a null with no default stays
    ],
)
def test_helm_coalescing(values, defaults, want) -> None:
    assert helm.coalesce(values, defaults) == want


def test_the_provider_reads_values_files_first_then_values() -> None:
    inputs = {
        "valueYamlFiles": [
            {"4dabf18193072939515e22adb298388d": "c44067f5952c0a294b673a41bacd8c17", "text": "a: {x: 1, y: 1}\nb: null\n"}
        ],
        "values": {"a": {"y": 2}},
    }
    assert helm.release_values(inputs) == {"a": {"x": 1, "y": 2}, "b": None}
    with pytest.raises(ValueError, match="only text assets"):
        helm.release_values({"valueYamlFiles": [{"path": "x.yaml"}]})
