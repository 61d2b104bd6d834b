"""Certificates for the local control plane and for the stand-in cert-manager, with ``cryptography``."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def issue(
    cn: str,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    is_ca: bool = False,
    org: str | None = None,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    client: bool = False,
    days: int = 365,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate and its key: self-signed when ``issuer`` (cert, key) is None."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = _name(cn, org)
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if is_ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
    else:
        usage = [x509.ExtendedKeyUsageOID.CLIENT_AUTH] if client else [x509.ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(signer_key, hashes.SHA256()), key


def load(cert_pem_bytes: bytes, key_pem_bytes: bytes) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = serialization.load_pem_private_key(key_pem_bytes, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"an issuer's key here is an EC key, not {type(key).__name__}")
    return x509.load_pem_x509_certificate(cert_pem_bytes), key


def write_control_plane_pki(d: Path) -> None:
    """ca, the API server's serving pair (127.0.0.1), an admin client pair, the service-account keys."""
    d.mkdir(parents=True, exist_ok=True)
    ca = issue("mesh-platform-local-ca", is_ca=True)
    server = issue(
        "kube-apiserver", issuer=ca, dns=("localhost", "kubernetes", "kubernetes.default"), ips=("127.0.0.1", "10.96.0.1")
    )
    admin = issue("mesh-platform-admin", issuer=ca, org="system:masters", client=True)
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for name, (cert, key) in {"ca": ca, "apiserver": server, "admin": admin}.items():
        (d / f"{name}.crt").write_bytes(cert_pem(cert))
        (d / f"{name}.key").write_bytes(key_pem(key))
        (d / f"{name}.key").chmod(0o600)
    (d / "sa.key").write_bytes(key_pem(sa))
    (d / "sa.key").chmod(0o600)
    (d / "sa.pub").write_bytes(
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
