"""Every option combination renders and verifies clean; the ones settings refuse are refused."""

from __future__ import annotations

import pulumi
import pytest
from combinations import OFFERED, REFUSED, render, verify


@pytest.mark.parametrize("combo", OFFERED, ids=[c.id for c in OFFERED])
def test_every_offered_combination_renders_and_verifies_clean(combo) -> None:
    result = verify(combo)
    assert result.violations == [], f"{combo.id}: " + "\n".join(f"{v.rule} {v.object}: {v.message}" for v in result.violations)
    assert result.checked > 0, combo.id


@pytest.mark.parametrize("combo", OFFERED, ids=[c.id for c in OFFERED])
def test_each_option_shows_in_what_is_rendered(combo) -> None:
    rec = render(combo)
    releases = {r.inputs["chart"] for r in rec.by_type("kubernetes:helm.sh/v3:Release")}
    assert ("cni" in releases) == combo.cni
    assert ("cert-manager-istio-csr" in releases) == (combo.ca == "cert-manager")
    assert ("kiali-server" in releases) == combo.observability
    assert ("cert-manager" in releases) == combo.cert_manager
    clusters = {"kind": "command:local:Command", "eks": "eks:index:Cluster"}
    if combo.provider in clusters:
        assert rec.by_type(clusters[combo.provider]), combo.id


@pytest.mark.parametrize("combo", REFUSED, ids=[c.id for c in REFUSED])
def test_cert_manager_ca_without_cert_manager_is_refused(combo) -> None:
    with pytest.raises(pulumi.RunError, match=r"istio\.ca 'cert-manager' needs certManager\.enabled true"):
        render(combo)
