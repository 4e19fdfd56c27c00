"""DICOM over TLS (PS3.15 B.1 and BCP 195): the node's certificate, and whose certificates it trusts.

The policy (TLS 1.2 floor, modern suites, mutual authentication with a CA bundle) is the one every
door shares: cxr_pneumonia.tls. What is the node's own is how its listening sockets shake hands.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any, ClassVar

from .. import tls

HANDSHAKE_TIMEOUT_SECONDS = 30.0


class TlsConfigError(tls.TlsConfigError):
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


class TlsOptions(tls.TlsFiles):
    """The node's certificate, key and peers' CA bundle (CXR_DICOM_TLS_CERT, _KEY, _CA)."""

    error: ClassVar[type[tls.TlsConfigError]] = TlsConfigError
    server_class: ClassVar[type[ssl.SSLContext]] = _DeferredHandshakeContext
