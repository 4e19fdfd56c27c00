"""Analyse one received instance: the same imaging + quality gate + Predictor as every other door,
then queue the DICOM results and record the prediction and the audit event."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydicom.dataset import Dataset

from ..errors import InputError, RejectedImage
from ..imaging import load
from ..imaging.dicom import read_dataset
from ..inference import Prediction, Predictor
from .capture import capture_image
from .outbox import Outbox
from .provenance import Provenance
from .sr import finding_report, refusal_report

if TYPE_CHECKING:
    from ..registry.serving import ModelRouter

log = logging.getLogger(__name__)

SOURCE = "dicom"


class ResultStore(Protocol):
    """What the node needs of the shared Store (``cxr_pneumonia.store.facade.Store``)."""

    def record_prediction(
        self,
        prediction: Prediction,
        *,
        source: str,
        caller: str,
        client: str | None = None,
        request_id: str | None = None,
        extra: dict[str, Any] | None = None,
        image: bytes | None = None,
    ) -> str: ...

    def audit(
        self,
        action: str,
        *,
        actor: str,
        outcome: str,
        client: str | None = None,
        request_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class Outcome:
    job: str
    status: str  # "analysed" | "refused"
    reason: str | None = None  # refusal code (RejectedImage.reason or InputError.code)
    detail: str | None = None
    prediction_id: str | None = None
    queued: tuple[Path, ...] = ()  # result files put in the outbox


@dataclass(frozen=True)
class Origin:
    """Who sent an instance, from the file meta the SCP wrote."""

    ae_title: str
    address: str | None

    @property
    def caller(self) -> str:
        return f"dicom:{self.ae_title}"

    @classmethod
    def of(cls, header: Dataset | None) -> Origin:
        meta = getattr(header, "file_meta", None)
        ae = str(getattr(meta, "SendingApplicationEntityTitle", "") or "").strip() or "UNKNOWN"
        url = str(getattr(meta, "SendingPresentationAddress", "") or "")
        address = url.removeprefix("dicom://").removeprefix("http://").strip("[]") or None  # C-STORE, STOW-RS
        return cls(ae, address)


class Processor:
    def __init__(
        self,
        predictor: Predictor,
        store: ResultStore,
        outbox: Outbox,
        *,
        refusal_sr: bool,
        models: ModelRouter | None = None,
    ) -> None:
        self.predictor = predictor
        self.store = store
        self.outbox = outbox
        self.refusal_sr = refusal_sr
        self.provenance = Provenance(predictor.model_ref)
        self.models = models  # A/B by StudyInstanceUID, hot swap and shadow, when served from a router

    def _model_for(self, study_uid: str) -> tuple[Predictor, dict[str, Any]]:
        """The predictor that answers this study (a study never flips between A/B arms) and what its
        record says about it."""
        served = self.models.route(study_uid) if self.models is not None else None
        if served is None:
            return self.predictor, {}
        return served.predictor, {"model": served.record_model()}

    def process(self, path: Path, job: str) -> Outcome:
        """Analyse one spooled instance. Raises only on a bug or an I/O failure of our own."""
        data = path.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        try:
            header: Dataset | None = read_dataset(data, self.predictor.limits, stop_before_pixels=True)
        except InputError:
            header = None
        sender = Origin.of(header)
        try:
            if header is None or "StudyInstanceUID" not in header or "SOPInstanceUID" not in header:
                raise InputError("the instance has no readable DICOM header with study and instance UIDs",
                                 code="unreadable_header")  # fmt: skip
            predictor, served = self._model_for(str(header.StudyInstanceUID))
            prediction = predictor.predict(data)
        except RejectedImage as exc:
            return self._refused(job, sender, header, sha256, exc.reason, exc.detail)
        except InputError as exc:
            return self._refused(job, sender, header, sha256, exc.code, exc.detail)
        return self._analysed(job, sender, header, data, prediction, served)

    def _analysed(
        self,
        job: str,
        sender: Origin,
        header: Dataset,
        data: bytes,
        prediction: Prediction,
        served: dict[str, Any],
    ) -> Outcome:
        # Decoded again for the capture: the Predictor keeps no pixels, and a decode costs far less
        # than inference.
        xray = load(data, self.predictor.limits)
        provenance = self.provenance if not served else Provenance(prediction.model)
        report = finding_report(header, prediction.input_sha256, prediction, provenance)
        capture = capture_image(header, prediction.input_sha256, xray, prediction, provenance)
        # Queue first, record second: after a crash in between, re-analysis re-queues the same UIDs
        # (an overwrite) and records once; the other order could record a result never sent.
        queued = (self.outbox.put(report), self.outbox.put(capture))
        prediction_id = self.store.record_prediction(
            prediction,
            source=SOURCE,
            caller=sender.caller,
            client=sender.address,
            request_id=job,
            image=data,  # kept (as encrypted pixels, never the header) only if settings.store_images
            extra={
                "sop_instance_uid": str(header.SOPInstanceUID),
                "study_instance_uid": str(header.StudyInstanceUID),
                "sr_sop_instance_uid": str(report.SOPInstanceUID),
                "sc_sop_instance_uid": str(capture.SOPInstanceUID),
                **served,
            },
        )
        if self.models is not None:  # the shadow's answer is stored only: never sent to the PACS
            self.models.shadow(prediction_id, data)
        log.info(
            "%s analysed: %s p=%.3f refer=%s", job, prediction.label, prediction.p_pneumonia, prediction.refer
        )
        return Outcome(job, "analysed", prediction_id=prediction_id, queued=queued)

    def _refused(
        self, job: str, sender: Origin, header: Dataset | None, sha256: str, reason: str, detail: str
    ) -> Outcome:
        queued: tuple[Path, ...] = ()
        if (
            self.refusal_sr
            and header is not None
            and "StudyInstanceUID" in header
            and "SOPInstanceUID" in header
        ):
            queued = (self.outbox.put(refusal_report(header, sha256, reason, detail, self.provenance)),)
        # The Store's convention for a refused input: action "predict", outcome "refused", a reason.
        self.store.audit(
            "predict",
            actor=sender.caller,
            outcome="refused",
            client=sender.address,
            request_id=job,
            detail={"reason": reason, "detail": detail, "source": SOURCE, "refusal_sr": bool(queued)},
        )
        log.info("%s refused: %s", job, reason)
        return Outcome(job, "refused", reason=reason, detail=detail, queued=queued)
