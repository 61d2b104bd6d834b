"""The ingress gateway's certificate, issued by the stack's CA (or ACME) into the gateway's namespace.

Istio's gateway reads ``tls.credentialName`` secrets only from its own namespace, so the Certificate
lives there; ``GatewayTls.secret_name`` is what the Gateway's HTTPS server names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.cert_manager import READY, issuer_ref
from mesh_platform.kube import TOKEN

SECRET_NAME = "gateway-tls"


@dataclass(frozen=True)
class GatewayTlsArgs:
    namespace: str
    hosts: tuple[str, ...]
    issuer: str
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)


class GatewayTls(pulumi.ComponentResource):
    certificate: k8s.apiextensions.CustomResource
    """Created once Ready: the secret exists and holds a signed certificate."""
    secret_name: pulumi.Output[str]

    def __init__(self, name: str, args: GatewayTlsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:GatewayTls", name, None, opts)
        self.certificate = k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": SECRET_NAME, "namespace": args.namespace, "annotations": READY},
            spec={
                "secretName": SECRET_NAME,
                "dnsNames": list(args.hosts),
                "duration": "2160h",
                "renewBefore": "360h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "issuerRef": issuer_ref(args.issuer),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        # Resolved only once the Certificate is Ready: whoever uses the name waits for the secret.
        self.secret_name = self.certificate.id.apply(lambda _: SECRET_NAME)
        self.register_outputs({"secretName": self.secret_name})
