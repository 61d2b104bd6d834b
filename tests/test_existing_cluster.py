"""ExistingCluster: a kubeconfig file and context the user already has."""

from __future__ import annotations

import pulumi
import pytest
from conftest import one, run_config

from tools.engine import SECRET


def test_existing_cluster_uses_the_given_kubeconfig_and_context(tmp_path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    rec = run_config(cluster={"provider": "existing", "existing": {"kubeconfig": str(kubeconfig), "context": "ops"}})
    provider = one(rec, "pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == SECRET and provider.inputs["context"] == "ops"
    assert not rec.by_type("command:local:Command"), "no kind cluster for an existing one"
    assert one(rec, "mesh-platform:index:ExistingCluster")


def test_missing_kubeconfig_is_a_clean_error(tmp_path) -> None:
    with pytest.raises(pulumi.RunError, match=r"cluster.existing.kubeconfig: cannot read .*nope"):
        run_config(cluster={"provider": "existing", "existing": {"kubeconfig": str(tmp_path / "nope")}})
