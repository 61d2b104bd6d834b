"""The composition root: install order on the recorded dependency graph."""

from __future__ import annotations

import pytest
from conftest import graph, one, run_config

#: Configs of conftest.LIKE: with observability and without.
CONFIGS = ["dev", "lab"]


@pytest.mark.parametrize("name", CONFIGS)
def test_no_istio_resource_can_start_before_calico_is_ready(like, name) -> None:
    rec = like(name)
    g = graph(rec)
    ready = one(rec, "kubernetes:operator.tigera.io/v1:Installation").urn
    istio = [
        r
        for r in rec.resources
        if r.urn != ready
        and (
            "istio" in r.type
            or "Istio" in r.urn.split("::")[2]
            or "istio" in str(r.inputs.get("chart", ""))
            or r.inputs.get("repositoryOpts", {}).get("repo", "").startswith("https://istio")
        )
    ]
    custom = [r for r in istio if r.custom]
    assert len(custom) >= 5
    late = [r.urn for r in custom if not g.waits_for(r.urn, ready)]
    assert not late, f"these Istio resources could start before Calico is ready: {late}"
    # And not only through the component: each root piece names the gate itself.
    for release in ("istio-base", "istio-gateway", "istio-istiod"):
        r = one(rec, "kubernetes:helm.sh/v3:Release", release)
        assert ready in r.dependencies, release


def test_calico_waits_for_the_cluster(like) -> None:
    rec = like("dev")
    g = graph(rec)
    cluster = one(rec, "command:local:Command", "cluster-kind").urn
    assert g.waits_for(one(rec, "kubernetes:helm.sh/v3:Release", "calico-operator").urn, cluster)


def test_the_graph_check_catches_a_missing_edge(like) -> None:
    """The Installation → istio-base check is not vacuous: with the Installation's edges stripped
    from the recording, the graph no longer has istio-base waiting for it."""
    rec = like("dev")
    ready = one(rec, "kubernetes:operator.tigera.io/v1:Installation").urn
    import copy

    broken = copy.deepcopy(rec)
    for r in broken.resources:
        r.dependencies = [d for d in r.dependencies if d != ready]
    g = graph(broken)
    base = one(broken, "kubernetes:helm.sh/v3:Release", "istio-base")
    assert not g.waits_for(base.urn, ready)


def test_bad_config_stops_the_program_cleanly() -> None:
    import pulumi

    with pytest.raises(pulumi.RunError):
        run_config(cluster={"workers": 99})
