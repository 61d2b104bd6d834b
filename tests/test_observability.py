"""Observability: pinned pieces after istiod and off the workloads' path, exact allows, no trace when off."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_chart_values as chart_values
import yaml
from conftest import LIKE, graph, objects, one, run_config, write_stack_file

from components import observability as obs
from mesh_platform.versions import JAEGER_IMAGE, KIALI_CHART_VERSION, PROMETHEUS_CHART_VERSION
from offline.verify import scrapes
from offline.verify.helm import release_values

RELEASE = "kubernetes:helm.sh/v3:Release"
TABLE = yaml.safe_load((Path(__file__).parent / "data" / "upstream_charts.yaml").read_text())


def _np(rec, ns, name):
    return next(p for p in objects(rec, "NetworkPolicy") if p["metadata"] == {"name": name, "namespace": ns})


def test_dev_has_the_pinned_pieces(like) -> None:
    rec = like("dev")
    prom, kiali = one(rec, RELEASE, "observability-prometheus"), one(rec, RELEASE, "observability-kiali")
    assert (prom.inputs["chart"], prom.inputs["version"]) == ("prometheus", PROMETHEUS_CHART_VERSION)
    assert (kiali.inputs["chart"], kiali.inputs["version"]) == ("kiali-server", KIALI_CHART_VERSION)
    assert (
        kiali.inputs["values"]["auth"] == {"strategy": "token"} and kiali.inputs["values"]["deployment"]["view_only_mode"] is True
    )
    (jaeger,) = [d for d in objects(rec, "Deployment") if d["metadata"]["name"] == "jaeger"]
    pod = jaeger["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == JAEGER_IMAGE
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"] == {
        "type": "RuntimeDefault"
    }
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert [name for name, _, _ in _all_jobs(rec)] == ["prometheus", "kubernetes-pods", "istiod", "calico-felix", "calico-typha"]
    assert "extraScrapeConfigs" not in prom.inputs["values"]
    # The chart's own jobs unset, in a values file (a null in values, inline, is not the documented way).
    assert prom.inputs["valueYamlFiles"][0]["text"] == "scrapeConfigs: null\n"
    assert "scrapeConfigs" not in prom.inputs["values"]


#: The prometheus chart's default jobs at the pinned version, from the recorded upstream table.
CHART_DEFAULTS = scrapes.chart_defaults(TABLE["prometheus"])


def _all_jobs(rec) -> list[tuple[str, dict, str]]:
    """Every job prometheus.yml gets: the values Helm receives, over the chart's own defaults."""
    prom = one(rec, RELEASE, "observability-prometheus")
    return scrapes.jobs(release_values(prom.inputs), CHART_DEFAULTS)


def _jobs(rec) -> dict[str, dict]:
    jobs = _all_jobs(rec)
    assert len({name for name, _, _ in jobs}) == len(jobs), "two jobs of one name"
    return {name: job for name, job, _ in jobs}


#: The chart's default jobs but the two the stack runs its own way (``prometheus``, and ``kubernetes-pods``
#: limited to the namespaces the policy admits): each discovers in every namespace.
CHART_JOBS_BLOCKED = tuple(k for k in CHART_DEFAULTS["scrapeConfigs"] if k not in ("prometheus", "kubernetes-pods"))


def test_envoy_metrics_are_scraped_one_way_only(like) -> None:
    """15020 (the agent's merged endpoint, Envoy's istio_* included) and never 15090 as well."""
    jobs = _jobs(like("dev"))
    assert not [n for n, j in jobs.items() if "15090" in str(j) or "envoy-prom" in str(j) or "/stats/prometheus" in str(j)]
    sidecar_jobs = [n for n, j in jobs.items() if "prometheus_io_scrape" in str(j)]
    assert sidecar_jobs == ["kubernetes-pods"]
    assert obs.SIDECAR_METRICS_PORTS == (15020,)


def test_every_scrape_job_targets_only_what_the_policy_admits(like) -> None:
    rec = like("dev")
    jobs = _jobs(rec)
    assert not set(CHART_JOBS_BLOCKED) & set(jobs)
    assert not [name for name, _, origin in _all_jobs(rec) if origin == "the chart's default job"]
    egress = _np(rec, "observability", "prometheus")["spec"]["egress"]
    admitted = {
        e["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in egress
        for e in rule["to"]
        if "namespaceSelector" in e
    }
    for name, job in jobs.items():
        for sd in job.get("kubernetes_sd_configs", []):
            names = sd.get("namespaces", {}).get("names")
            assert names, f"{name} discovers in every namespace"
            # calico-system runs on the host network: reached through the nodes' addresses.
            assert set(names) - {"calico-system"} <= admitted, (name, names, admitted)
    assert jobs["kubernetes-pods"]["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["demo", "istio-ingress"]
    istiod = next(r for r in egress if r["to"][0].get("podSelector") == {"matchLabels": {"app": "istiod"}})
    assert jobs["istiod"]["relabel_configs"][0] == {
        "source_labels": ["__meta_kubernetes_pod_label_app"],
        "regex": "istiod",
        "action": "keep",
    }
    assert istiod["ports"] == [{"protocol": "TCP", "port": 15014}] and "15014" in str(jobs["istiod"])


def test_tracing_sampling_from_config_through_the_telemetry_api(like) -> None:
    for name, pct in (("dev", 100), ("prod", 1)):
        (tel,) = objects(like(name), "Telemetry")
        assert tel["metadata"] == {"name": "mesh-default", "namespace": "istio-system"}
        assert tel["spec"]["tracing"] == [{"providers": [{"name": obs.TRACING_PROVIDER}], "randomSamplingPercentage": pct}]
    mesh = one(like("dev"), RELEASE, "istio-istiod").inputs["values"]["meshConfig"]
    assert mesh["extensionProviders"] == [
        {"name": obs.TRACING_PROVIDER, "opentelemetry": {"service": "jaeger.observability.svc.cluster.local", "port": 4317}}
    ]


def test_calico_flow_visibility_and_metrics(like) -> None:
    rec = like("dev")
    assert {o["kind"] for o in objects(rec, "Goldmane") + objects(rec, "Whisker")} == {"Goldmane", "Whisker"}
    (inst,) = objects(rec, "Installation")
    assert inst["spec"]["nodeMetricsPort"] == 9091 and inst["spec"]["typhaMetricsPort"] == 9093


def test_after_istiod_and_never_before_a_workload(like) -> None:
    rec = like("dev")
    g = graph(rec)
    istiod = one(rec, RELEASE, "istio-istiod").urn
    mine = [r for r in rec.resources if r.parent and "Observability::observability" in r.parent]
    assert len(mine) >= 8
    for r in mine:
        assert g.waits_for(r.urn, istiod), r.urn
    mine_urns = {r.urn for r in mine} | {one(rec, "mesh-platform:index:Observability").urn}
    for d in rec.by_type("kubernetes:apps/v1:Deployment"):
        if d.parent and "SampleApps" in d.parent:
            assert not (g.ancestors(d.urn) & mine_urns), d.urn


def test_workload_namespace_admits_exactly_the_scrapes_and_sends_only_spans(like) -> None:
    rec = like("dev")
    scrape = _np(rec, "demo", "allow-metrics-scrape")["spec"]
    assert scrape["podSelector"] == {} and scrape["policyTypes"] == ["Ingress"]
    (rule,) = scrape["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 15020}]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
            "podSelector": {"matchLabels": obs.PROMETHEUS_LABELS},
        }
    ]
    (out,) = _np(rec, "demo", "allow-tracing")["spec"]["egress"]
    assert out["ports"] == [{"protocol": "TCP", "port": 4317}]
    # Spans only: to Jaeger's OTLP port, no other pod of the observability namespace.
    assert out["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
            "podSelector": {"matchLabels": obs.JAEGER_LABELS},
        }
    ]
    # The mesh layer is untouched: scrapes do not pass Envoy's inbound chain.
    lab_authz = sorted(p["metadata"]["name"] for p in objects(like("lab"), "AuthorizationPolicy"))
    assert sorted(p["metadata"]["name"] for p in objects(rec, "AuthorizationPolicy")) == lab_authz


def test_observability_namespace_has_its_own_default_deny_and_minimal_allows(like) -> None:
    rec = like("dev")
    assert _np(rec, "observability", "default-deny")["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    prom = _np(rec, "observability", "prometheus")["spec"]
    assert prom["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": obs.KIALI_LABELS}}], "ports": [{"protocol": "TCP", "port": 9090}]}
    ]
    ports = sorted(p["port"] for rule in prom["egress"] for p in rule["ports"])
    assert ports == [53, 53, 443, 6443, 9091, 9093, 15014, 15020]
    jaeger = _np(rec, "observability", "jaeger")["spec"]
    assert sorted(p["port"] for rule in jaeger["ingress"] for p in rule["ports"]) == [4317, 16686]
    kiali = _np(rec, "observability", "kiali")["spec"]
    assert "ingress" not in kiali and kiali["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.slow  # the verifier's whole pipeline, network-config-analyzer included
def test_verify_sees_the_scrapes_and_nothing_more(tmp_path) -> None:
    from offline.verify.pipeline import verify_stack

    result = verify_stack("dev", config_file=write_stack_file(tmp_path / "Pulumi.dev.yaml", **LIKE["dev"]))
    assert result.ok, result.violations
    scrapes = {
        (f.src, f.dst, f.port)
        for f in result.flows
        if f.layer == "cni" and f.src == "observability/prometheus" and f.dst.startswith("demo/")
    }
    assert scrapes == {
        ("observability/prometheus", f"demo/{w}", p) for w in ("my-service", "frontend", "client") for p in ("15020",)
    }


def test_port_forward_outputs(like) -> None:
    out = like("dev").outputs["portForward"]
    assert set(out) == {"kiali", "prometheus", "jaeger", "whisker"}
    assert out["whisker"].startswith("kubectl -n calico-system port-forward svc/whisker 8081:8081")


def test_switched_off_leaves_no_trace(like) -> None:
    rec = like("lab")
    assert not [r for r in rec.resources if "bservability" in r.urn]
    assert not objects(rec, "Telemetry") and not objects(rec, "Goldmane") and not objects(rec, "Whisker")
    (inst,) = objects(rec, "Installation")
    assert "nodeMetricsPort" not in inst["spec"]
    assert "extensionProviders" not in one(rec, RELEASE, "istio-istiod").inputs["values"]["meshConfig"]
    names = {p["metadata"]["name"] for p in objects(rec, "NetworkPolicy")}
    assert "allow-metrics-scrape" not in names and "allow-tracing" not in names
    assert "portForward" not in rec.outputs


def test_node_cidrs_on_kind_come_from_the_network_the_cluster_got(like, run) -> None:
    """Not a guessed 172.16.0.0/12: the stand-in probe reports 192.168.97.0/24 (offline.engine)."""
    for name in ("prometheus", "kiali"):
        egress = _np(like("dev"), "observability", name)["spec"]["egress"]
        assert egress[-1]["to"] == [{"ipBlock": {"cidr": "192.168.97.0/24"}}], name
    rec = run(observability={"enabled": True, "nodeCidrs": ["10.1.0.0/16"]})
    assert _np(rec, "observability", "prometheus")["spec"]["egress"][-1]["to"] == [{"ipBlock": {"cidr": "10.1.0.0/16"}}]
    assert "172.16.0.0/12" not in str(objects(like("dev"), "NetworkPolicy"))


def test_a_node_rule_is_never_left_without_peers() -> None:
    args = obs.ObservabilityArgs("observability", "1.0.0", "1.0.0", 1.0, ("demo",), "istio-ingress", ())
    with pytest.raises(ValueError, match="at least one node CIDR"):
        obs.network_policies(args)


def test_kiali_chart_adds_no_policy_and_only_real_v2_fields(like) -> None:
    release = one(like("dev"), RELEASE, "observability-kiali").inputs
    values = release["values"]
    # kiali-server's own NetworkPolicy (default on) admits 20001 and 9090 from any source.
    assert values["deployment"]["network_policy"] == {"enabled": False}
    # Kiali v2 has no istio_namespace field: it would be dropped silently.
    assert "istio_namespace" not in values
    # Every path sent is one the pinned kiali-server chart reads (tests/data/chart_values.yaml).
    kiali = chart_values.record()["kiali-server"]
    assert str(kiali["version"]) == release["version"]
    assert [p for p in chart_values.flatten(values) if not chart_values.accepted(p, kiali["paths"])] == []


def test_a_scrape_job_whose_discovery_role_has_no_known_rights_stops_the_program(monkeypatch) -> None:
    jobs = [{"job_name": "svc", "kubernetes_sd_configs": [{"role": "service"}]}]
    monkeypatch.setattr(obs, "scrape_configs", lambda _args: jobs)
    with pytest.raises(ValueError, match=r"service-discovery roles \['service'\]"):
        obs.prometheus_rbac_rules(None)  # type: ignore[arg-type]


def test_prometheus_gets_no_chart_rbac_and_a_pods_only_role_bound_before_it_starts() -> None:
    rec = run_config(observability={"enabled": True})
    release = one(rec, "kubernetes:helm.sh/v3:Release", "observability-prometheus")
    assert release.inputs["values"]["rbac"] == {"create": False}
    role = one(rec, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "observability-prometheus-role")
    binding = one(rec, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "observability-prometheus-role-binding")
    assert role.inputs["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus-server", "namespace": "observability"}]
    assert role.urn in release.dependencies and binding.urn in release.dependencies
