"""GatewayTls: the gateway certificate lives where the gateway reads it and feeds the HTTPS server."""

from __future__ import annotations

from conftest import objects, one, run_config

from components.gateway_tls import SECRET_NAME


def test_certificate_secret_is_the_gateway_credential_in_the_gateway_namespace(like) -> None:
    rec = like("dev")
    (cert,) = [c for c in objects(rec, "Certificate") if c["metadata"]["name"] == SECRET_NAME]
    (gw,) = objects(rec, "Gateway")
    https = next(s for s in gw["spec"]["servers"] if s["port"]["number"] == 443)
    assert https["tls"] == {"mode": "SIMPLE", "credentialName": cert["spec"]["secretName"]}
    assert cert["metadata"]["namespace"] == "istio-ingress"
    assert cert["spec"]["dnsNames"] == ["localhost"]
    assert cert["spec"]["issuerRef"]["name"] == "mesh-platform-ca"


def test_gateway_waits_for_the_certificate(like) -> None:
    rec = like("dev")
    cert = one(rec, "kubernetes:cert-manager.io/v1:Certificate", "gateway-tls-certificate")
    gw = one(rec, "kubernetes:networking.istio.io/v1:Gateway")
    assert cert.urn in gw.dependencies
    assert one(rec, "kubernetes:core/v1:Namespace", "istio-gateway-ns").urn in cert.dependencies


def test_https_redirect_and_outputs() -> None:
    rec = run_config(certManager={"httpsRedirect": True}, apps={"hosts": ["mesh.localtest.me"]})
    gws = {g["metadata"]["name"]: g["spec"] for g in objects(rec, "Gateway")}
    # Port 80 redirects through a catch-all route on a Gateway of its own (components/sample_apps.py),
    # never a server-level httpsRedirect, which would redirect the ACME HTTP-01 challenge too.
    assert [s["port"]["number"] for s in gws["mesh-gateway"]["servers"]] == [443]
    assert [s["port"]["number"] for s in gws["mesh-gateway-http"]["servers"]] == [80]
    assert "httpsRedirect" not in str(gws)
    assert rec.outputs["curlHttps"][1] == "curl -s --cacert mesh-platform-ca.crt https://mesh.localtest.me:8443/v1"
    (cert,) = [c for c in objects(rec, "Certificate") if c["metadata"]["name"] == SECRET_NAME]
    assert cert["spec"]["dnsNames"] == ["mesh.localtest.me"]
