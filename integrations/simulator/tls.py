"""Self-signed TLS certificates whose CN is the printer serial, one key per fleet."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


class CertFactory:
    """Makes server SSL contexts for simulated printers; the RSA key is generated once."""

    def __init__(self) -> None:
        # One key for the whole fleet: key generation is the slow part, signing is cheap.
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._dir = tempfile.TemporaryDirectory(prefix="printforge-sim-tls-")
        key_path = Path(self._dir.name) / "key.pem"
        key_path.write_bytes(
            self._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        self._key_path = key_path
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}

    def certificate_pem(self, serial: str, host: str) -> bytes:
        """A PEM certificate with CN=serial, valid for the serial and `host` as SANs."""
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "BBL Technologies Co., Ltd"),
                x509.NameAttribute(NameOID.COMMON_NAME, serial),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        alt_names: list[x509.GeneralName] = [x509.DNSName(serial)]
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def server_context(self, serial: str, host: str) -> ssl.SSLContext:
        """A server-side SSLContext presenting the printer's certificate (cached per serial)."""
        cached = self._contexts.get((serial, host))
        if cached is not None:
            return cached
        cert_path = Path(self._dir.name) / f"{serial}-{host}.pem"
        cert_path.write_bytes(self.certificate_pem(serial, host))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, self._key_path)
        self._contexts[(serial, host)] = context
        return context

    def close(self) -> None:
        """Remove the temporary certificate files."""
        self._contexts.clear()
        self._dir.cleanup()
