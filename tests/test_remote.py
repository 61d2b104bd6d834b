"""offline/remote.py: what the kubernetes-cert-manager package's component constructs, from its table.

The table (offline/remote_components.yaml) is read from the package's Go source at v0.2.0; the
package's Python SDK, generated from the same schema, is a second witness of its input names.
"""

from __future__ import annotations

import copy

import pytest
from pulumi_kubernetes_cert_manager import _inputs, cert_manager

from offline import remote

PACKAGE = "kubernetes-cert-manager:index:CertManager"


def _schema_names(cls: type) -> set[str]:
    """The schema property names of an SDK input type (``@pulumi.getter(name=...)``)."""
    return {getattr(v.fget, "_pulumi_name", None) for v in vars(cls).values() if isinstance(v, property)} - {None}


def construct(inputs: dict, name: str = "cm") -> dict:
    (child,) = remote.construct(PACKAGE, name, inputs)
    return child.inputs


def test_one_release_named_after_the_component() -> None:
    (child,) = remote.construct(PACKAGE, "cert-manager-install", {})
    assert child.type == "kubernetes:helm.sh/v3:Release" and child.name == "cert-manager-install-helm"
    # No helmOptions at all: the package's own chart, repository and an empty values map.
    assert child.inputs == {
        "chart": "cert-manager",
        "repositoryOpts": {"repo": "https://charts.jetstack.io"},
        "values": {},
        "compat": "true",
    }


def test_given_chart_and_repository_win_over_the_defaults() -> None:
    got = construct({"helmOptions": {"chart": "cm", "repositoryOpts": {"repo": "https://mirror.example", "username": "u"}}})
    assert got["chart"] == "cm" and got["repositoryOpts"] == {"repo": "https://mirror.example", "username": "u"}
    # A repositoryOpts without repo still gets the default repository.
    got = construct({"helmOptions": {"repositoryOpts": {"username": "u"}}})
    assert got["repositoryOpts"] == {"repo": "https://charts.jetstack.io", "username": "u"}


def test_typed_inputs_are_laid_over_the_values_whole() -> None:
    got = construct(
        {
            "clusterResourceNamespace": "cm",
            "webhook": {"replicaCount": 2},
            "helmOptions": {"values": {"webhook": {"timeoutSeconds": 5}, "crds": {"enabled": True}}},
        }
    )
    # No deep merge: the typed webhook replaces the values' webhook key entirely.
    assert got["values"] == {"clusterResourceNamespace": "cm", "webhook": {"replicaCount": 2}, "crds": {"enabled": True}}


def test_a_typed_key_given_only_in_values_never_reaches_the_chart() -> None:
    got = construct({"helmOptions": {"values": {"replicaCount": 3, "clusterResourceNamespace": "x", "crds": {"keep": True}}}})
    assert got["values"] == {"crds": {"keep": True}}


def test_release_fields_are_copied_and_the_rest_is_not() -> None:
    helm = {"name": "r", "namespace": "ns", "version": "v1", "timeout": 600, "skipAwait": False, "atomic": True}
    got = construct({"helmOptions": {**helm, "status": {"status": "x"}, "valueYamlFiles": ["a.yaml"]}})
    assert {k: got[k] for k in helm} == helm
    # status is not a field To() copies; value files become toAssetOrArchiveArray's nil.
    assert "status" not in got and "valueYamlFiles" not in got


def test_the_inputs_are_not_changed() -> None:
    inputs = {"clusterResourceNamespace": "cm", "helmOptions": {"values": {"a": 1}, "repositoryOpts": {}}}
    before = copy.deepcopy(inputs)
    construct(inputs)
    assert inputs == before


def test_an_unrecorded_component_is_refused() -> None:
    with pytest.raises(KeyError, match="records no remote component 'x:index:Y'"):
        remote.construct("x:index:Y", "n", {})
    assert not remote.known("x:index:Y") and remote.known(PACKAGE)


def test_the_table_names_the_sdks_inputs() -> None:
    b = remote.behaviour(PACKAGE)
    # The component's typed inputs: every one is laid over the values, helmOptions aside.
    assert set(b["typedValues"]) | {"helmOptions"} == _schema_names(cert_manager.CertManagerArgs)
    # helmOptions' fields: all but status and valueYamlFiles reach the Release (base.go To()).
    assert set(b["releaseFields"]) | {"valueYamlFiles"} == _schema_names(_inputs.ReleaseArgs)


def test_the_table_check_fails_on_a_table_missing_an_input(monkeypatch) -> None:
    broken = copy.deepcopy(remote.table())
    broken[PACKAGE]["typedValues"].remove("clusterResourceNamespace")
    monkeypatch.setattr(remote, "table", lambda: broken)
    with pytest.raises(AssertionError):
        test_the_table_names_the_sdks_inputs()
    # ... and with that table, the merged values would keep a key the package erases.
    assert construct({"helmOptions": {"values": {"clusterResourceNamespace": "x"}}})["values"] == {
        "clusterResourceNamespace": "x"
    }
