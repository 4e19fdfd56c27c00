"""TLS contexts for every door (the REST service and the DICOM node): one policy, BCP 195.

A server context presents its certificate; with a CA bundle it also demands a certificate from every
caller that this CA signed (mutual authentication), and only that bundle vouches for callers, never
the system's public CAs. A client context checks the peer's certificate against the bundle (or the
system's) and its host name, and presents its own certificate when asked. TLS 1.2 is the floor and
TLS 1.2 offers only forward-secret AEAD suites (TLS 1.3 suites are all modern already).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .errors import CXRError

# ECDHE key exchange with AES-GCM or ChaCha20-Poly1305: the BCP 195 / Mozilla "intermediate" set.
MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS"


class TlsConfigError(CXRError):
    code = "tls_config"


@dataclass(frozen=True)
class TlsFiles:
    cert: Path | None  # our certificate chain (PEM)
    key: Path | None  # its private key (PEM, unencrypted: the doors start unattended)
    ca: Path | None  # CA bundle (PEM) of the peers: callers must present a certificate it signed

    error: ClassVar[type[TlsConfigError]] = TlsConfigError  # what a door reports a bad file as
    server_class: ClassVar[type[ssl.SSLContext]] = ssl.SSLContext

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise self.error("a TLS certificate needs its private key, and a key its certificate")
        for what, path in (("certificate", self.cert), ("private key", self.key), ("CA bundle", self.ca)):
            if path is not None and not path.is_file():
                raise self.error(f"the TLS {what} {path} does not exist")

    def server_context(self) -> ssl.SSLContext:
        """For the listening side; needs our own certificate."""
        if self.cert is None or self.key is None:
            raise self.error("listening with TLS needs a certificate and its private key")
        # A bare context: the system's public CAs must not vouch for callers, only the bundle given.
        context = self.server_class(ssl.PROTOCOL_TLS_SERVER)
        _harden(context)
        self._load_own(context)
        if self.ca is not None:
            self._load_trusted(context)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """For connecting to a peer: verify it (CA bundle, else the system's), show ours."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name
        _harden(context)
        if self.ca is not None:
            self._load_trusted(context)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if self.cert is not None:
            self._load_own(context)
        return context

    def _load_own(self, context: ssl.SSLContext) -> None:
        try:
            context.load_cert_chain(str(self.cert), str(self.key))
        except (ssl.SSLError, OSError) as exc:
            raise self.error(
                f"the TLS certificate {self.cert} and key {self.key} cannot be used: {exc}"
            ) from exc

    def _load_trusted(self, context: ssl.SSLContext) -> None:
        try:
            context.load_verify_locations(cafile=str(self.ca))
        except (ssl.SSLError, OSError) as exc:
            raise self.error(f"the TLS CA bundle {self.ca} cannot be used: {exc}") from exc


def _harden(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(MODERN_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
