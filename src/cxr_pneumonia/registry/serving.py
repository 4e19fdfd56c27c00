"""Serving from the registry: the models one process serves (champion, challenger, shadow), the A/B
routing between them, and the hot swap when an alias moves.

A swap loads the new package beside the old one, verifies it (every file's sha256, the digest the
registry recorded), warms it up, then replaces one reference: a request holds the ServedModel it
started with, so in-flight requests finish on their model; the old micro-batcher stops once they are
done. A package that fails is refused, audited, and the old one keeps serving.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import Settings
from ..errors import CXRError, ModelError
from ..imaging.limits import Limits
from ..inference import Predictor
from ..inference.batcher import MicroBatcher
from ..inference.cache import ResultCache
from .cache import Fetched, PackageCache
from .errors import RegistryUnreachable
from .reader import RegistryReader, open_reader
from .shadow import ShadowRunner
from .uri import ModelURI, parse_model_uri

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) loads only where a service passes one in
    from ..store.facade import Store

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, SHADOW = "champion", "challenger", "shadow"


@dataclass
class ServedModel:
    role: str
    uri: str
    predictor: Predictor
    batcher: MicroBatcher | None = None  # the shadow runs unbatched in its own thread
    degraded: str | None = None  # served from the cache because the registry did not answer
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def id(self) -> str:
        return self.predictor.model_ref.digest[:12]

    @property
    def registry_version(self) -> str | None:
        return self.predictor.model_ref.registry_version

    def record_model(self) -> dict[str, Any]:
        """What a prediction record keeps about the model that answered it."""
        ref = self.predictor.model_ref
        return {
            "arm": self.role,
            "registry_version": ref.registry_version,
            "digest": ref.digest,
            "uri": self.uri,
        }

    def describe(self) -> dict[str, Any]:
        ref = self.predictor.model_ref
        return {
            "id": self.id,
            "role": self.role,
            "uri": self.uri,
            "model_id": ref.model_id,
            "name": ref.name,
            "version": ref.version,
            "registry_version": ref.registry_version,
            "sha256": ref.sha256,
            "digest": ref.digest,
            "loaded_at": self.loaded_at.isoformat(),
            "degraded": self.degraded,
        }


class ModelLoader:
    """From a URI to a verified, warmed-up Predictor."""

    def __init__(self, settings: Settings, cache: ResultCache | None = None) -> None:
        self.settings = settings
        self.result_cache = cache
        self.packages = PackageCache(settings.resolved_model_cache)
        self._reader: RegistryReader | None = None

    @property
    def reader(self) -> RegistryReader:
        if self._reader is None:
            self._reader = open_reader(self.settings.resolved_mlflow_uri)
        return self._reader

    def fetch(self, uri: ModelURI) -> Fetched:
        """Resolve and download (once per digest); an unreachable registry falls back to the cache."""
        assert uri.name is not None
        try:
            model = self.reader.resolve(uri.name, alias=uri.alias, version=uri.version)
            path = self.packages.fetch(self.reader, model)
        except RegistryUnreachable as exc:
            cached = self.packages.last_known(uri)
            if cached is None:
                raise
            log.warning("serving %s from the cache: %s", uri.text, exc.detail)
            return Fetched(cached.path, cached.version, cached.digest, degraded=exc.detail)
        fetched = Fetched(path, model.version, model.digest)
        self.packages.remember(uri, fetched)
        return fetched

    def current_digest(self, uri: ModelURI) -> str:
        """Where the URI points now (a registry call, or reading the package's model.json)."""
        if uri.name is None:
            from ..package import ModelPackage

            return ModelPackage.open(uri.path or "").manifest.digest
        return self.reader.resolve(uri.name, alias=uri.alias, version=uri.version).digest

    def load_predictor(self, text: str, *, threads: int | None = None) -> tuple[Predictor, str | None]:
        """A verified Predictor for a path or registry URI, and why it came from the cache (if it did)."""
        settings = self.settings
        uri = parse_model_uri(text)
        degraded, registry_version = None, None
        path = uri.path
        if uri.in_registry:
            fetched = self.fetch(uri)
            path, registry_version, degraded = fetched.path, fetched.version, fetched.degraded
        predictor = Predictor.from_package(
            path or "",
            threads=settings.intra_op_threads if threads is None else threads,
            min_side=settings.min_side,
            limits=Limits.from_settings(settings),
            cache=self.result_cache,
            registry_version=registry_version,
        )
        return predictor, degraded

    def load(self, text: str, role: str) -> ServedModel:
        # the shadow gets one thread: it must not take the cores the answers need
        predictor, degraded = self.load_predictor(text, threads=1 if role == SHADOW else None)
        warm_up(predictor)
        batcher = None if role == SHADOW else MicroBatcher(predictor)
        return ServedModel(role, text, predictor, batcher, degraded)


def warm_up(predictor: Predictor) -> None:
    """One full inference (with heatmap) on a neutral image: the first real request pays no setup."""
    spec = predictor.spec
    probe = np.full((1, spec.channels, spec.size, spec.size), 0.0, dtype=np.float32)
    outputs = predictor.run_model(probe)
    if not np.all(np.isfinite(outputs.probs)):
        raise ModelError("the model answers NaN on a neutral image")


def in_challenger_arm(key: str, percent: float) -> bool:
    """Deterministic: the same key (input sha256, StudyInstanceUID) always lands in the same arm."""
    bucket = int(hashlib.sha256(f"ab:{key}".encode()).hexdigest()[:8], 16) % 10_000
    return bucket < round(percent * 100)


class ModelRouter:
    """The models a process serves, by role; thread-safe reads, one swap at a time."""

    def __init__(
        self, settings: Settings, store: Store, loader: ModelLoader, actor: str = "system:models"
    ) -> None:
        self.settings = settings
        self.store = store
        self.loader = loader
        self.actor = actor
        self._models: dict[str, ServedModel] = {}
        self.errors: dict[str, str] = {}
        self._swap_lock = threading.Lock()
        self.on_swap: list[Callable[[ServedModel], None]] = []
        self.shadow_runner: ShadowRunner | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # ---- building -------------------------------------------------------------------------------
    def uris(self) -> dict[str, str]:
        s = self.settings
        wanted = {CHAMPION: s.served_model_uri}
        if s.ab_model_uri and s.ab_percent > 0:
            wanted[CHALLENGER] = s.ab_model_uri
        if s.shadow_model_uri:
            wanted[SHADOW] = s.shadow_model_uri
        return wanted

    def start(self, champion: Predictor | None = None) -> ModelRouter:
        """Load every configured model; a failure leaves that role empty with its reason."""
        for role, uri in self.uris().items():
            if role == CHAMPION and champion is not None:
                self._models[role] = ServedModel(role, uri, champion, MicroBatcher(champion))
                continue
            try:
                self._models[role] = self.loader.load(uri, role)
            except CXRError as exc:
                log.error("the %s model %s cannot be served: %s", role, uri, exc.detail)
                self.errors[role] = exc.detail
        if SHADOW in self.uris():
            self.shadow_runner = ShadowRunner(
                self.store, self._shadow_predictor, self.settings.shadow_queue_size
            )
        return self

    def _shadow_predictor(self) -> Predictor | None:
        shadow = self._models.get(SHADOW)
        return shadow.predictor if shadow is not None else None

    def start_polling(self) -> None:
        interval = self.settings.model_poll_seconds
        if interval <= 0 or not any(parse_model_uri(u).in_registry for u in self.uris().values()):
            return
        self._poller = threading.Thread(
            target=self._poll, args=(interval,), name="cxr-model-poll", daemon=True
        )
        self._poller.start()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.reload(registry_only=True)
            except Exception:  # the poller must outlive any one failure
                log.exception("checking the registry for moved aliases failed")

    def close(self) -> None:
        self._stop.set()
        if self.shadow_runner is not None:
            self.shadow_runner.close()
        for served in self._models.values():
            if served.batcher is not None:
                served.batcher.close()

    # ---- reading --------------------------------------------------------------------------------
    def get(self, role: str) -> ServedModel | None:
        return self._models.get(role)

    @property
    def champion(self) -> ServedModel | None:
        return self._models.get(CHAMPION)

    def served(self) -> list[ServedModel]:
        return list(self._models.values())

    def find(self, model_id: str) -> ServedModel | None:
        for served in self.served():
            if model_id in (served.id, served.predictor.model_ref.digest):
                return served
        return None

    def route(self, key: str) -> ServedModel | None:
        """The model that answers the input (or study) ``key``: the challenger for its share."""
        champion, challenger = self._models.get(CHAMPION), self._models.get(CHALLENGER)
        if challenger is not None and in_challenger_arm(key, self.settings.ab_percent):
            return challenger
        return champion

    def answering(self) -> tuple[Predictor | None, list[Predictor]]:
        """The champion's predictor and the challenger's: the models whose answers are returned (what
        the drift monitors follow); the shadow's never are."""
        champion, challenger = self._models.get(CHAMPION), self._models.get(CHALLENGER)
        return (champion.predictor if champion else None), ([challenger.predictor] if challenger else [])

    def degraded(self) -> list[str]:
        return [f"{m.role}: {m.degraded}" for m in self.served() if m.degraded]

    def shadow(self, prediction_id: str, data: bytes) -> None:
        """Queue an answered input for the shadow model (never waits)."""
        if self.shadow_runner is not None:
            self.shadow_runner.submit(prediction_id, data)

    # ---- swapping -------------------------------------------------------------------------------
    def reload(self, *, actor: str | None = None, registry_only: bool = False) -> list[dict[str, Any]]:
        """Swap in every role whose URI now points at another package; report what happened."""
        report = []
        with self._swap_lock:
            for role, uri in self.uris().items():
                if registry_only and not parse_model_uri(uri).in_registry:
                    continue
                report.append(self._reload_one(role, uri, actor or self.actor))
        return report

    def _reload_one(self, role: str, uri: str, actor: str) -> dict[str, Any]:
        old = self._models.get(role)
        try:
            digest = self.loader.current_digest(parse_model_uri(uri))
        except CXRError as exc:
            return {"role": role, "outcome": "unchanged", "detail": f"cannot check {uri}: {exc.detail}"}
        if old is not None and old.predictor.model_ref.digest == digest and not old.degraded:
            return {"role": role, "outcome": "unchanged", "model": old.describe()}
        try:
            new = self.loader.load(uri, role)
        except CXRError as exc:
            detail = {
                "role": role,
                "uri": uri,
                "digest": digest,
                "error": exc.code,
                "reason": exc.detail,
                "serving": old.describe() if old else None,
            }
            self.store.audit("model_swap", actor=actor, outcome="refused", detail=detail)
            log.error("refused the %s model at %s: %s", role, uri, exc.detail)
            return {"role": role, "outcome": "refused", "detail": exc.detail}
        self._models[role] = new  # the switch: one reference, atomic for every reader
        self.errors.pop(role, None)
        if old is not None and old.batcher is not None:
            old.batcher.close()  # ends after the requests already on it have their answers
        self.store.audit(
            "model_swap",
            actor=actor,
            outcome="ok",
            detail={"role": role, "uri": uri, "from": old.describe() if old else None, "to": new.describe()},
        )
        for hook in self.on_swap:
            hook(new)
        log.info("now serving %s as %s", new.predictor.model_ref.model_id, role)
        return {"role": role, "outcome": "swapped", "model": new.describe()}
