"""ExistingCluster: a kubeconfig file and context the user already has."""

from __future__ import annotations

import pulumi
import pytest
import yaml
from conftest import one, render_config, run_config

from components.existing_cluster import only_context
from offline.engine import SECRET

TWO_CONTEXTS = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "dev",
    "contexts": [
        {"name": "dev", "context": {"cluster": "dev-cluster", "user": "dev-admin"}},
        {"name": "ops", "context": {"cluster": "ops-cluster", "user": "ops-admin", "namespace": "x"}},
    ],
    "clusters": [
        {"name": "dev-cluster", "cluster": {"server": "https://dev"}},
        {"name": "ops-cluster", "cluster": {"server": "https://ops"}},
    ],
    "users": [{"name": "dev-admin", "user": {"token": "dev-secret"}}, {"name": "ops-admin", "user": {"token": "ops-secret"}}],
}


def test_only_the_chosen_context_goes_into_state() -> None:
    ops = yaml.safe_load(only_context(yaml.safe_dump(TWO_CONTEXTS), "ops"))
    assert ops["current-context"] == "ops"
    assert [c["name"] for c in ops["contexts"]] == ["ops"] and ops["contexts"][0]["context"]["namespace"] == "x"
    assert ops["clusters"] == [{"name": "ops-cluster", "cluster": {"server": "https://ops"}}]
    assert ops["users"] == [{"name": "ops-admin", "user": {"token": "ops-secret"}}]
    assert "dev-secret" not in only_context(yaml.safe_dump(TWO_CONTEXTS), "ops")
    # Without a context: the file's current one.
    assert yaml.safe_load(only_context(yaml.safe_dump(TWO_CONTEXTS), None))["users"][0]["name"] == "dev-admin"


def test_unknown_context_names_the_ones_there_are() -> None:
    with pytest.raises(
        pulumi.RunError, match=r"cluster.existing.context: 'prod' is not a context of the kubeconfig; available: dev, ops"
    ):
        only_context(yaml.safe_dump(TWO_CONTEXTS), "prod")
    with pytest.raises(pulumi.RunError, match=r"cluster.existing.kubeconfig: not a kubeconfig"):
        only_context("just text", None)


def test_existing_cluster_uses_the_given_kubeconfig_and_context(tmp_path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump(TWO_CONTEXTS))
    rec = run_config(cluster={"provider": "existing", "existing": {"kubeconfig": str(kubeconfig), "context": "ops"}})
    provider = one(rec, "pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == SECRET and provider.inputs["context"] == "ops"
    assert not rec.by_type("command:local:Command"), "no kind cluster for an existing one"
    assert one(rec, "mesh-platform:index:ExistingCluster")
    assert rec.outputs["clusterKind"] == "existing"


def test_missing_kubeconfig_is_a_clean_error(tmp_path) -> None:
    with pytest.raises(pulumi.RunError, match=r"cluster.existing.kubeconfig: cannot read .*nope"):
        run_config(cluster={"provider": "existing", "existing": {"kubeconfig": str(tmp_path / "nope")}})


def test_the_cluster_keeps_only_the_chosen_context(tmp_path, monkeypatch) -> None:
    # The provider input and the output are secrets, unreadable in the recording: the component
    # must hand on what only_context made of the file, never the file itself.
    import components.existing_cluster as existing

    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump(TWO_CONTEXTS))
    calls: list[tuple[str, str | None]] = []

    def spy(content: str, context: str | None) -> str:
        calls.append((content, context))
        return only_context(content, context)

    monkeypatch.setattr(existing, "only_context", spy)
    render_config(cluster={"provider": "existing", "existing": {"kubeconfig": str(kubeconfig), "context": "ops"}})
    assert calls == [(kubeconfig.read_text(), "ops")]
