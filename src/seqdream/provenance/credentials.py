"""The certificate chain and key that sign C2PA manifests.

Configured (`SEQDREAM_C2PA_SIGN_CERT`, `SEQDREAM_C2PA_SIGN_KEY`) or, without them, made on first
start: a local CA and a signing certificate under it, kept in `<data dir>/provenance/`. C2PA
readers then report `signingCredential.untrusted` until that CA (`ca.pem`) is in their trust list.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)
FOLDER = "provenance"
VALID_FOR = timedelta(days=3650)


@dataclass(frozen=True)
class SigningIdentity:
    chain: bytes  # PEM: the signing certificate first, then its issuers
    key: bytes  # PEM private key
    algorithm: str  # es256, es384, es512, ps256, ps384, ps512, ed25519
    local_ca: Path | None  # the CA made here, when the service made its own


def load(cert: Path, key: Path, algorithm: str) -> SigningIdentity:
    return SigningIdentity(cert.read_bytes(), key.read_bytes(), algorithm, None)


def local_ca(data_dir: Path) -> Path:
    """Where the service keeps the CA it made (readers must trust it)."""
    return data_dir / FOLDER / "ca.pem"


def local(data_dir: Path, name: str) -> SigningIdentity:
    """The service's own CA and signing certificate, made once (several processes may race)."""
    folder = data_dir / FOLDER
    if not (folder / "signer.pem").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".provenance-", dir=folder.parent))
        _make_local_ca(staging, name)
        try:
            staging.rename(folder)  # atomic: the first process to finish wins
            log.warning(
                "C2PA: no signing certificate configured, so a local CA was made: %s. Readers report "
                "signingCredential.untrusted until it is in their trust list; set SEQDREAM_C2PA_SIGN_CERT and "
                "SEQDREAM_C2PA_SIGN_KEY to sign with your own certificate.",
                local_ca(data_dir),
            )
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return SigningIdentity(
        (folder / "signer.pem").read_bytes(), (folder / "signer-key.pem").read_bytes(), "es256", local_ca(data_dir)
    )


def _name(organisation: str, common: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation), x509.NameAttribute(NameOID.COMMON_NAME, common)]
    )


def _make_local_ca(folder: Path, service: str) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(service, f"{service} local C2PA CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name(service, f"{service} content credentials"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "signer.pem").write_bytes(signer.public_bytes(pem) + ca.public_bytes(pem))
    for path, private in ((folder / "ca-key.pem", ca_key), (folder / "signer-key.pem", key)):
        path.write_bytes(private.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        os.chmod(path, 0o600)


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )
