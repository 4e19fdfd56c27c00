"""The DICOM node's configuration: Settings defaults, overridden by the command line."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import CXRError
from ..store.outbox import RetryPolicy  # the shared outbox's back-off; named here for the node's options
from .tls import TlsOptions

# PS3.5 6.2: an AE title is 1-16 characters of the default repertoire, no backslash, no control
# characters; leading and trailing spaces are not significant.
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")


class ConfigError(CXRError):
    """A DICOM node option that cannot work (bad AE title, malformed destination, ...)."""

    code = "dicom_config"


def check_ae_title(title: str) -> str:
    stripped = title.strip()
    if not stripped or not _AE_TITLE.match(stripped):
        raise ConfigError(f"{title!r} is not a valid AE title (1-16 printable characters, no backslash)")
    return stripped


@dataclass(frozen=True)
class Destination:
    """The DICOM peer (usually the PACS) that receives the results: ``AE@HOST:PORT``."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        ae, sep, address = text.rpartition("@")
        host, colon, port = address.rpartition(":")
        if not sep or not colon or not host or not port.isdigit():
            raise ConfigError(f"destination {text!r} is not AE@HOST:PORT")
        number = int(port)
        if not 0 < number < 65536:
            raise ConfigError(f"destination port {number} is out of range")
        return cls(check_ae_title(ae), host.strip("[]"), number)  # [::1]:104 style IPv6 literals

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class NodeOptions:
    ae_title: str
    bind: str
    port: int  # 0: any free port (tests)
    accept_aes: tuple[str, ...]  # empty: any calling AE
    destination: Destination | None
    spool_dir: Path
    retry: RetryPolicy
    timeout_seconds: float
    keep_received: bool
    refusal_sr: bool
    tls: TlsOptions | None = None  # certificate, key and trusted CA, when any is configured
    listen_tls: bool = False  # accept associations over TLS only
    destination_tls: bool = False  # send results over TLS
    destination_dicomweb: str | None = None  # a DICOMweb base URL: results go there with STOW-RS

    def listening_context(self) -> ssl.SSLContext | None:
        """The TLS context to listen with, or None for plain TCP."""
        return self.tls.server_context() if self.listen_tls and self.tls is not None else None

    def destination_context(self) -> ssl.SSLContext | None:
        """The TLS context to send results with, or None for plain TCP."""
        if not self.destination_tls:
            return None
        return (self.tls or TlsOptions(None, None, None)).client_context()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> NodeOptions:
        """Options from Settings; keyword overrides (the CLI's; None means "not given") win.

        Overrides are NodeOptions fields, plus ``retry_initial_seconds``, ``retry_max_seconds`` and
        ``retry_max_attempts`` for the retry policy and ``tls_cert``, ``tls_key``, ``tls_ca`` for TLS.
        """
        given = {key: value for key, value in overrides.items() if value is not None}
        accept = given.pop("accept_aes", None)
        if accept is None:
            accept = [a for a in (s.strip() for s in settings.dicom_accept_aes.split(",")) if a]
        destination = given.pop("destination", settings.dicom_destination)
        if isinstance(destination, str):
            destination = Destination.parse(destination)
        retry = RetryPolicy(
            given.pop("retry_initial_seconds", settings.dicom_retry_initial_seconds),
            given.pop("retry_max_seconds", settings.dicom_retry_max_seconds),
            given.pop("retry_max_attempts", settings.dicom_retry_max_attempts),
        )
        options = cls(
            ae_title=check_ae_title(given.pop("ae_title", settings.dicom_ae_title)),
            bind=given.pop("bind", settings.dicom_bind),
            port=given.pop("port", settings.dicom_port),
            accept_aes=tuple(check_ae_title(a) for a in accept),
            destination=destination,
            spool_dir=given.pop("spool_dir", None) or settings.resolved_dicom_spool_dir,
            retry=retry,
            timeout_seconds=given.pop("timeout_seconds", settings.dicom_timeout_seconds),
            keep_received=given.pop("keep_received", settings.dicom_keep_received),
            refusal_sr=given.pop("refusal_sr", settings.dicom_refusal_sr),
            tls=_tls_files(given, settings),
            listen_tls=given.pop("listen_tls", settings.dicom_tls),
            destination_tls=given.pop("destination_tls", settings.dicom_destination_tls),
            destination_dicomweb=given.pop("destination_dicomweb", settings.dicom_destination_dicomweb),
        )
        if given:
            raise ConfigError(f"unknown DICOM node option(s): {', '.join(sorted(given))}")
        if not 0 <= options.port < 65536:
            raise ConfigError(f"port {options.port} is out of range")
        if options.retry.initial_seconds <= 0 or options.retry.max_seconds < options.retry.initial_seconds:
            raise ConfigError("retry delays must be positive, and the longest at least the first")
        if options.retry.max_attempts < 0:
            raise ConfigError("retry max attempts must be 0 (never give up) or more")
        if options.destination is not None and options.destination_dicomweb:
            raise ConfigError("give one destination: a DICOM AE or a DICOMweb URL, not both")
        if options.destination_dicomweb and not options.destination_dicomweb.startswith(
            ("http://", "https://")
        ):
            raise ConfigError("the DICOMweb destination must be an http:// or https:// URL")
        _check_tls(options)
        return options


def _tls_files(given: dict[str, Any], settings: Settings) -> TlsOptions | None:
    cert = given.pop("tls_cert", settings.dicom_tls_cert)
    key = given.pop("tls_key", settings.dicom_tls_key)
    ca = given.pop("tls_ca", settings.dicom_tls_ca)
    if cert is None and key is None and ca is None:
        return None
    return TlsOptions(cert, key, ca)


def _check_tls(options: NodeOptions) -> None:
    """Build the TLS contexts once now, so a bad certificate stops the start, not the first send."""
    if options.listen_tls and options.tls is None:
        raise ConfigError("listening with TLS needs this node's certificate and private key")
    if options.destination_tls and options.destination is None:
        raise ConfigError("TLS towards the destination needs a destination")
    options.listening_context()
    options.destination_context()
