"""The association acceptor: answers C-ECHO, takes C-STOREs into the spool.

A C-STORE is acknowledged as soon as the instance is durably on disk; analysis happens later in a
worker, so a slow model never makes a PACS time out, and an acknowledged instance survives a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pynetdicom import AE, evt
from pynetdicom.dsutils import encode_file_meta
from pynetdicom.events import Event, EventHandlerType
from pynetdicom.transport import ThreadedAssociationServer

from ..store.spool import Spool
from .options import NodeOptions
from .syntaxes import OTHER_STORAGE_CLASSES, STORAGE_CLASSES, VERIFICATION, accepted_transfer_syntaxes

log = logging.getLogger(__name__)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # "Refused: Out of Resources": the sender will retry later

ReceivedCallback = Callable[[Path], None]
RejectedCallback = Callable[[str, str], None]  # (calling AE title, peer address)


class StorageSCP:
    def __init__(
        self,
        options: NodeOptions,
        spool: Spool,
        on_received: ReceivedCallback,
        on_rejected: RejectedCallback | None = None,
    ) -> None:
        self.options = options
        self.spool = spool
        self.on_received = on_received
        self.on_rejected = on_rejected
        self._server: ThreadedAssociationServer | None = None

    def _application_entity(self) -> AE:
        ae = AE(ae_title=self.options.ae_title)
        ae.add_supported_context(VERIFICATION)
        syntaxes = list(accepted_transfer_syntaxes())
        for sop_class in (*STORAGE_CLASSES, *OTHER_STORAGE_CLASSES):
            ae.add_supported_context(sop_class, syntaxes)
        # Others are rejected at association (A-ASSOCIATE-RJ "calling AE title not recognised").
        ae.require_calling_aet = list(self.options.accept_aes)
        # A peer addressing another AE title is misconfigured; better to say so than to accept.
        ae.require_called_aet = True
        ae.network_timeout = self.options.timeout_seconds * 2
        ae.acse_timeout = self.options.timeout_seconds
        ae.dimse_timeout = self.options.timeout_seconds
        return ae

    def start(self) -> tuple[str, int]:
        """Listen (without blocking); returns the bound (host, port), useful with port 0."""
        ae = self._application_entity()
        handlers: list[EventHandlerType] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        tls = self.options.listening_context()
        server = ae.start_server(
            (self.options.bind, self.options.port), block=False, evt_handlers=handlers, ssl_context=tls
        )
        assert server is not None  # non-blocking start always returns the server
        self._server = server
        host, port = server.server_address[:2]
        log.info(
            "DICOM node %s listening on %s:%s%s", self.options.ae_title, host, port, " (TLS)" if tls else ""
        )
        return str(host), int(port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_store(self, event: Event) -> int:
        calling_ae = str(event.assoc.requestor.ae_title).strip()
        meta = event.file_meta
        # PS3.10 7.1's own fields for who sent the instance and who received it: the worker reads
        # them back, after a restart too.
        meta.SourceApplicationEntityTitle = self.options.ae_title
        meta.SendingApplicationEntityTitle = calling_ae
        meta.ReceivingApplicationEntityTitle = self.options.ae_title
        address = str(event.assoc.requestor.address)
        meta.SendingPresentationAddress = f"dicom://[{address}]" if ":" in address else f"dicom://{address}"
        part10 = b"".join(
            (b"\x00" * 128, b"DICM", encode_file_meta(meta), event.encoded_dataset(include_meta=False))
        )
        try:
            path = self.spool.put(part10)
        except OSError as exc:  # disk full, permissions: tell the sender to try again later
            log.error("cannot queue an instance from %s: %s", calling_ae, exc)
            return OUT_OF_RESOURCES
        log.info("received %s from %s (%d bytes)", Spool.job_id(path), calling_ae, len(part10))
        self.on_received(path)
        return SUCCESS

    def _on_rejected(self, event: Event) -> None:
        calling_ae = str(event.assoc.requestor.ae_title).strip()
        address = str(event.assoc.requestor.address)
        log.warning("association from %s (%s) rejected", calling_ae, address)
        if self.on_rejected is not None:
            self.on_rejected(calling_ae, address)
