"""The storage facade every door uses (REST API, DICOM node, CLI): records, audit events, images.

Each call is its own transaction and commits before returning, so a caller that has a prediction id in
hand knows the record (and its audit event) is on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings
from ..imaging import load
from ..imaging.limits import Limits
from ..inference.prediction import Prediction
from . import audit as audit_chain
from . import idempotency, references
from .crypto import ImageCipher
from .db.base import utcnow
from .db.engine import SQLITE_BEGIN_OPTION, make_engine
from .db.migrate import upgrade
from .db.models import PredictionRecord, ShadowPrediction, StoredImage
from .images import storage_png
from .observer import NoObserver, PredictionPublisher, StoreObserver
from .private import make_private
from .records import build_record
from .shadow import shadow_row

log = logging.getLogger(__name__)

REFUSED_OUTCOMES = ("refused", "failed")


class Store:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        observer: StoreObserver | None = None,
        publisher: PredictionPublisher | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.observer: StoreObserver = observer or NoObserver()
        self.publisher = publisher
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._readers = sessionmaker(
            engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"}), expire_on_commit=False
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        observer: StoreObserver | None = None,
        publisher: PredictionPublisher | None = None,
    ) -> Store:
        """Open the database named by the settings and bring its schema up to date."""
        make_private(settings.data_dir)
        engine = make_engine(settings.resolved_database_url)
        upgrade(engine)
        return cls(settings, engine, observer, publisher)

    # ---- sessions -----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits when the block ends (and rolls back if it raises)."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only: on SQLite it neither takes nor waits for the write lock."""
        with self._readers() as session:
            yield session

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    @property
    def label(self) -> str:
        """The database this store is, for lineage and messages (never its password)."""
        return self.engine.url.render_as_string(hide_password=True)

    @cached_property
    def cipher(self) -> ImageCipher:
        return ImageCipher.from_settings(self.settings)

    # ---- the facade ---------------------------------------------------------------------------
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
    ) -> str:
        """Commit an accepted prediction and its audit event; return the prediction id."""
        return self.commit_prediction(
            prediction,
            source=source,
            caller=caller,
            client=client,
            request_id=request_id,
            extra=extra,
            image=image,
        ).id

    def commit_prediction(
        self,
        prediction: Prediction,
        *,
        source: str,
        caller: str,
        client: str | None = None,
        request_id: str | None = None,
        extra: dict[str, Any] | None = None,
        image: bytes | None = None,
        claim: idempotency.Claim | None = None,
        reference: str | None = None,
    ) -> PredictionRecord:
        """As record_prediction, returning the committed row (detached; its attributes stay loaded).

        With an idempotency ``claim`` already fulfilled, nothing is written and the earlier row is
        returned instead (raises KeyReused when the key belongs to another request)."""
        sealed = self._seal(image, prediction.input_sha256) if self.settings.store_images and image else None
        row = build_record(
            prediction,
            source=source,
            caller=caller,
            client=client,
            request_id=request_id,
            extra=extra,
            image_sha256=prediction.input_sha256 if sealed else None,
        )
        if reference is not None:
            references.seal(row, self.cipher, reference)
        staged = self.publisher.stage(row) if self.publisher is not None else None
        try:
            self._commit_row(row, prediction, sealed, source, caller, client, request_id, claim)
        except idempotency.Replay as replay:
            if staged is not None and self.publisher is not None:
                self.publisher.discard(staged)  # the earlier request's row was published already
            with self.reading() as session:
                earlier = session.get(PredictionRecord, replay.prediction_id)
            assert earlier is not None  # written in the same transaction as its key
            return earlier
        except BaseException:
            if staged is not None and self.publisher is not None:
                self.publisher.discard(staged)
            raise
        if staged is not None and self.publisher is not None:
            self.publisher.release(staged)
        self.observer.observe_prediction(prediction, source)
        return row

    def _commit_row(
        self,
        row: PredictionRecord,
        prediction: Prediction,
        sealed: StoredImage | None,
        source: str,
        caller: str,
        client: str | None,
        request_id: str | None,
        claim: idempotency.Claim | None,
    ) -> None:
        with self.transaction() as session:
            event = audit_chain.append(
                session,
                action="predict",
                actor=caller,
                outcome="accepted",
                client=client,
                request_id=request_id,
                detail={
                    "prediction_id": row.id,
                    "digest": row.digest,
                    "source": source,
                    "input_sha256": prediction.input_sha256,
                    "model_id": prediction.model.model_id,
                    "model_sha256": prediction.model.sha256,
                    "label": prediction.label,
                    "refer": prediction.refer,
                    "image_stored": sealed is not None,
                },
            )
            if claim is not None:  # after append: the chain lock is held, so this check is race-free
                idempotency.record(session, claim, row.id)
            row.audit_seq = event.seq
            session.add(row)
            # After append: the chain lock is held, so two uploads of one image cannot both insert it.
            if sealed is not None and session.get(StoredImage, sealed.sha256) is None:
                session.add(sealed)

    def is_recorded(self, prediction_id: str) -> bool:
        with self.reading() as session:
            return session.get(PredictionRecord, prediction_id) is not None

    def record_shadow(
        self, prediction_id: str, outcome: Prediction | tuple[str, dict[str, Any]]
    ) -> ShadowPrediction | None:
        """Commit a shadow model's answer (or refusal) to an input ``prediction_id`` answered; once per
        input and shadow model (an idempotent replay that raced its original queues the input twice):
        None when that answer is stored already."""
        row = shadow_row(prediction_id, outcome)
        with self.transaction() as session:
            earlier = session.scalar(
                select(ShadowPrediction).where(
                    ShadowPrediction.prediction_id == prediction_id,
                    ShadowPrediction.model_digest == row.model_digest,
                )
            )
            if earlier is not None:
                return None
            session.add(row)
        return row

    def audit(
        self,
        action: str,
        *,
        actor: str,
        outcome: str,
        client: str | None = None,
        request_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Commit one audit event. A refused input is recorded as action 'predict' with outcome
        'refused' (or 'failed') and ``detail['reason']``; the observer counts it as well."""
        with self.transaction() as session:
            audit_chain.append(
                session,
                action=action,
                actor=actor,
                outcome=outcome,
                client=client,
                request_id=request_id,
                detail=detail,
            )
        if action == "predict" and outcome in REFUSED_OUTCOMES:
            info = detail or {}
            self.observer.observe_refusal(
                str(info.get("reason") or info.get("error") or "unknown"), str(info.get("source") or "api")
            )

    # ---- images -------------------------------------------------------------------------------
    def _seal(self, image: bytes, sha256: str) -> StoredImage:
        xray = load(image, Limits.from_settings(self.settings))
        nonce, ciphertext = self.cipher.seal(storage_png(xray), sha256.encode())
        return StoredImage(
            sha256=sha256,
            media_type="image/png",
            key_id=self.cipher.key_id,
            nonce=nonce,
            ciphertext=ciphertext,
            created_at=utcnow(),
        )

    def read_reference(self, row: PredictionRecord) -> str | None:
        """The caller's reference on a record, decrypted (None when it has none)."""
        return references.read(row, self.cipher)

    def reference_index(self, reference: str) -> str:
        """The keyed hash that finds the records with exactly this reference."""
        return self.cipher.index(reference)

    def read_image(self, session: Session, sha256: str) -> bytes | None:
        """The decrypted PNG of a stored image, or None when it was not kept."""
        stored = session.get(StoredImage, sha256)
        if stored is None:
            return None
        return self.cipher.open(stored.nonce, stored.ciphertext, sha256.encode(), stored.key_id)
