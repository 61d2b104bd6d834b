"""Every option combination the stack offers, rendered once per session (in-process, mock engine).

istio.cni, istio.ca, observability.enabled, certManager.enabled and cluster.provider, crossed. The
combinations with istio.ca cert-manager but cert-manager off are not offered: settings refuse them.
"""

from __future__ import annotations

import itertools
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from offline import engine

_KUBECONFIG = Path(tempfile.mkdtemp(prefix="mesh-combos-")) / "kubeconfig"
_KUBECONFIG.write_text(engine.FAKE_KUBECONFIG)
PROVIDERS: dict[str, dict[str, Any]] = {
    "kind": {"provider": "kind"},
    "eks": {"provider": "eks", "eks": {"region": "eu-west-1"}},
    "existing": {"provider": "existing", "existing": {"kubeconfig": str(_KUBECONFIG)}},
}


class Combo(NamedTuple):
    cni: bool
    ca: str
    observability: bool
    cert_manager: bool
    provider: str

    @property
    def id(self) -> str:
        return "-".join(
            (
                "cni" if self.cni else "nocni",
                "csr" if self.ca == "cert-manager" else "istiodca",
                "obs" if self.observability else "noobs",
                "cm" if self.cert_manager else "nocm",
                self.provider,
            )
        )

    @property
    def offered(self) -> bool:
        return not (self.ca == "cert-manager" and not self.cert_manager)

    def config(self) -> dict[str, Any]:
        observability: dict[str, Any] = {"enabled": self.observability}
        if self.observability and self.provider == "existing":
            # Only kind and a created EKS VPC have known node addresses; an existing cluster names them.
            observability["nodeCidrs"] = ["10.0.0.0/16"]
        return {
            "cluster": PROVIDERS[self.provider],
            "istio": {"cni": self.cni, "ca": self.ca},
            "observability": observability,
            "certManager": {"enabled": self.cert_manager},
        }


ALL = [Combo(*c) for c in itertools.product((False, True), ("istiod", "cert-manager"), (False, True), (False, True), PROVIDERS)]
OFFERED = [c for c in ALL if c.offered]
REFUSED = [c for c in ALL if not c.offered]


def stack_file(combo: Combo) -> Path:
    path = _KUBECONFIG.parent / f"Pulumi.{combo.id}.yaml"
    path.write_text(yaml.safe_dump({"config": {f"mesh-platform:{k}": v for k, v in combo.config().items()}}))
    return path


@cache
def render(combo: Combo) -> engine.Recording:
    return engine.run("combo", config_file=stack_file(combo))


@cache
def verify(combo: Combo):
    from offline.verify.pipeline import verify_stack

    return verify_stack("combo", config_file=stack_file(combo))
