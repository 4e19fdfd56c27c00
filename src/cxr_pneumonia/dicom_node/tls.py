"""DICOM over TLS (PS3.15 B.1 and BCP 195): the node's certificate, and whose certificates it trusts.

Listening with TLS, the node presents its certificate; with a CA bundle it also demands a certificate
from every caller that this CA signed (mutual authentication, as the DICOM secure transport profiles
expect), so an unknown machine cannot even open an association. Sending with TLS, it checks the
destination's certificate against the CA bundle (or the system's) and its host name, and presents its
own certificate when the destination asks for one. TLS 1.2 is the floor (BCP 195).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CXRError

HANDSHAKE_TIMEOUT_SECONDS = 30.0


class TlsConfigError(CXRError):
    code = "dicom_tls_config"


class _DeferredHandshakeContext(ssl.SSLContext):
    """A server context whose sockets shake hands on their first read, in their association's thread.

    pynetdicom wraps each accepted socket in the loop that accepts connections; with the default
    handshake-on-wrap, one caller that connects and stays silent would hold that loop, and every other
    modality, until it gave up. The handshake also gets a deadline of its own.
    """

    handshake_timeout: float = HANDSHAKE_TIMEOUT_SECONDS

    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # type: ignore[override]
        sock.settimeout(self.handshake_timeout)
        kwargs["do_handshake_on_connect"] = False
        return super().wrap_socket(sock, *args, **kwargs)


@dataclass(frozen=True)
class TlsOptions:
    cert: Path | None  # this node's certificate chain (PEM)
    key: Path | None  # its private key (PEM, unencrypted: the node starts unattended)
    ca: Path | None  # CA bundle (PEM) of the peers: callers must present a certificate it signed

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise TlsConfigError("a TLS certificate needs its private key, and a key its certificate")
        for what, path in (("certificate", self.cert), ("private key", self.key), ("CA bundle", self.ca)):
            if path is not None and not path.is_file():
                raise TlsConfigError(f"the TLS {what} {path} does not exist")

    def server_context(self) -> ssl.SSLContext:
        """For the listening side; needs the node's own certificate."""
        if self.cert is None or self.key is None:
            raise TlsConfigError("listening with TLS needs this node's certificate and private key")
        # A bare context: the system's public CAs must not vouch for callers, only the bundle given.
        context = _DeferredHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._load_own(context)
        if self.ca is not None:
            self._load_trusted(context)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """For sending to the destination: verify it (CA bundle, else the system's), show ours."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name
        context.minimum_version = ssl.TLSVersion.TLSv1_2
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
            raise TlsConfigError(
                f"the TLS certificate {self.cert} and key {self.key} cannot be used: {exc}"
            ) from exc

    def _load_trusted(self, context: ssl.SSLContext) -> None:
        try:
            context.load_verify_locations(cafile=str(self.ca))
        except (ssl.SSLError, OSError) as exc:
            raise TlsConfigError(f"the TLS CA bundle {self.ca} cannot be used: {exc}") from exc
