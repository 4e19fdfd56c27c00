"""The Predictor: a verified model package + ONNX Runtime, from input bytes to a Prediction."""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..config import get_settings
from ..errors import CXRError, ModelError
from ..imaging import Source, load
from ..imaging.limits import Limits
from ..imaging.preprocess import to_model_input
from ..imaging.xray import XRay
from ..package import ModelPackage
from .cache import MemoryCache, ResultCache
from .heatmap import grad_cam, pneumonia_score_gradient, scale_and_resize
from .prediction import Finding, ModelRef, Prediction, Timings
from .quality import REFER_FINDINGS, check_distribution, check_image, check_population, intensity_summary
from .session import head_weights, open_session

BatchResult = Prediction | CXRError


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def intensity(item: Prepared) -> dict[str, float]:
    return intensity_summary(item.xray.pixels)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class ModelOutputs:
    logits: np.ndarray  # (N, 3) raw
    features: np.ndarray  # (N, C, h, w) last feature map
    probs: np.ndarray  # (N, 3) calibrated (temperature-scaled) probabilities
    ood: np.ndarray  # (N,) Mahalanobis distance to the training features
    p_other: np.ndarray | None  # (N,) p(another population) from the package's gate, if it has one
    pooled: np.ndarray | None = None  # (N, C) globally pooled features (what the head and OOD read)


@dataclasses.dataclass
class Prepared:
    xray: XRay
    tensor: np.ndarray
    findings: tuple[Finding, ...]
    decode_ms: float
    preprocess_ms: float


class Predictor:
    """Reads radiographs with one model package. Thread-safe: ONNX Runtime sessions allow concurrent runs."""

    def __init__(
        self,
        package: ModelPackage,
        *,
        threads: int = 0,
        limits: Limits | None = None,
        min_side: int = 64,
        cache: ResultCache | None = None,
        registry_version: str | None = None,
    ) -> None:
        self.package = package
        manifest = package.manifest
        self.spec = manifest.preprocess
        self.calibration = manifest.calibration
        self.classes = manifest.classes
        if tuple(self.classes) != ("normal", "bacterial", "viral"):
            raise ModelError(f"this version serves classes (normal, bacterial, viral), not {self.classes}")
        self.session = open_session(package.onnx_path, threads)
        self.head_weight, self.head_bias = self._read_head()
        self.limits = limits or Limits.from_settings()
        self.min_side = min_side
        self.cache: ResultCache = cache if cache is not None else MemoryCache()
        self.model_ref = ModelRef(
            manifest.name,
            manifest.version,
            manifest.onnx_sha256,
            self.spec.version,
            manifest.digest,
            registry_version,
        )
        self._self_check()

    @classmethod
    def from_package(cls, path: str | Path, **kwargs: object) -> Predictor:
        """Open and verify a package (sha256 of every file, preprocessing spec) and start a session."""
        return cls(ModelPackage.open(path), **kwargs)  # type: ignore[arg-type]

    def _read_head(self, *, refresh: bool = False) -> tuple[np.ndarray, np.ndarray]:
        manifest = self.package.manifest
        return head_weights(
            self.package.onnx_path,
            manifest.feature_channels,
            sha256=manifest.onnx_sha256,
            cache_dir=get_settings().resolved_cache_dir,
            refresh=refresh,
        )

    def _head_reproduces_logits(self) -> bool:
        probe = np.zeros((1, self.spec.channels, self.spec.size, self.spec.size), dtype=np.float32)
        logits, features = self.session.run(["logits", "features"], {"image": probe})
        recomputed = features.mean(axis=(2, 3)) @ self.head_weight.T + self.head_bias
        return bool(np.allclose(recomputed, logits, atol=1e-3))

    def _self_check(self) -> None:
        """The head must reproduce the graph's logits, or heatmaps would lie. A cached head that does
        not (stale or altered) is read from the graph again, and re-cached."""
        if self._head_reproduces_logits():
            return
        self.head_weight, self.head_bias = self._read_head(refresh=True)
        if not self._head_reproduces_logits():
            raise ModelError("the model's head is not a linear layer over pooled features; cannot explain it")

    # ---- single image -------------------------------------------------------------------------
    def predict(self, source: Source, *, heatmap: bool = True, use_cache: bool = True) -> Prediction:
        """Read one image. Raises InputError (unreadable) or RejectedImage (not a frontal CXR)."""
        started = time.perf_counter()
        prepared = self.prepare(source)
        if use_cache:
            cached = self.cache.get(prepared.xray.sha256, self.model_ref.cache_key)
            if cached is not None and (cached.heatmap is not None or not heatmap):
                return cached.with_cached_flag()
        result = self.infer([prepared], heatmap=heatmap, started=[started])[0]
        if isinstance(result, CXRError):
            raise result
        if use_cache:
            self.cache.put(result)
        return result

    # ---- batches ------------------------------------------------------------------------------
    def predict_batch(
        self,
        sources: Sequence[Source],
        *,
        heatmap: bool = True,
        batch_size: int = 16,
        decode_workers: int = 2,
    ) -> list[BatchResult]:
        """Read many images; each result is a Prediction or the CXRError that refused it."""
        return list(
            self.iter_predict(sources, heatmap=heatmap, batch_size=batch_size, decode_workers=decode_workers)
        )

    def iter_predict(
        self,
        sources: Iterable[Source],
        *,
        heatmap: bool = True,
        batch_size: int = 16,
        decode_workers: int = 2,
    ) -> Iterator[BatchResult]:
        """Results in input order. A pool of decoders runs ahead of the session, so decoding (which
        releases the GIL in Pillow and pydicom's decoders) overlaps inference; it runs at most two
        batches ahead, so memory stays flat however many inputs there are."""
        pending: list[tuple[float, Prepared | CXRError]] = []
        with ThreadPoolExecutor(max_workers=max(1, decode_workers)) as pool:

            def timed(source: Source) -> tuple[float, Prepared | CXRError]:
                start = time.perf_counter()
                return start, self._prepare_or_error(source)

            in_flight: deque[Future[tuple[float, Prepared | CXRError]]] = deque()
            for source in sources:
                in_flight.append(pool.submit(timed, source))
                if len(in_flight) < 2 * batch_size:
                    continue
                pending.append(in_flight.popleft().result())
                if len(pending) >= batch_size:
                    yield from self._run_pending(pending, heatmap)
                    pending = []
            while in_flight:
                pending.append(in_flight.popleft().result())
                if len(pending) >= batch_size:
                    yield from self._run_pending(pending, heatmap)
                    pending = []
            if pending:
                yield from self._run_pending(pending, heatmap)

    def _run_pending(
        self, pending: list[tuple[float, Prepared | CXRError]], heatmap: bool
    ) -> list[BatchResult]:
        results: list[BatchResult | None] = [p if isinstance(p, CXRError) else None for _, p in pending]
        ready = [(i, s, p) for i, (s, p) in enumerate(pending) if isinstance(p, Prepared)]
        if ready:
            outputs = self.infer([p for _, _, p in ready], heatmap=heatmap, started=[s for _, s, _ in ready])
            for (index, _, _), output in zip(ready, outputs, strict=True):
                results[index] = output
                if isinstance(output, Prediction):
                    self.cache.put(output)
        return [r for r in results if r is not None]

    # ---- internals ----------------------------------------------------------------------------
    def _prepare_or_error(self, source: Source) -> Prepared | CXRError:
        try:
            return self.prepare(source)
        except CXRError as exc:
            return exc

    def prepare(self, source: Source) -> Prepared:
        t0 = time.perf_counter()
        xray = load(source, self.limits)
        decode_ms = _ms(t0)
        findings = check_image(xray, self.min_side)
        outside = check_population(xray.meta, self.package.manifest.population)
        if outside is not None:
            findings = (*findings, outside)
        t1 = time.perf_counter()
        tensor = to_model_input(xray, self.spec)
        return Prepared(xray, tensor, findings, decode_ms, _ms(t1))

    def run_model(self, batch: np.ndarray) -> ModelOutputs:
        """The model and its package-fitted statistics on a preprocessed batch (N, C, H, W)."""
        logits, features = self.session.run(["logits", "features"], {"image": batch})
        pooled = features.mean(axis=(2, 3))
        probs = _softmax(logits.astype(np.float64) / self.calibration.temperature)
        gate = self.package.population_gate
        p_other = gate.probability(pooled) if gate is not None else None
        return ModelOutputs(logits, features, probs, self.package.ood.distance(pooled), p_other, pooled)

    def atypical_finding(self, ood_score: float, p_other: float | None) -> Finding | None:
        """Refuse far-out inputs (RejectedImage); flag inputs outside the training population, by
        the Mahalanobis distance or by the package's population gate."""
        cal = self.calibration
        finding = check_distribution(ood_score, cal.ood_threshold, cal.ood_refuse_threshold)
        gate = self.package.population_gate
        if finding is None and gate is not None and p_other is not None and p_other > gate.threshold:
            finding = Finding(
                "atypical_input",
                f"looks like a radiograph from another population than the training images (p {p_other:.2f} >"
                f" {gate.threshold:.2f}); the model was trained on {self.population_words}: treat this result with"
                " extra caution",
            )
        return finding

    @property
    def population_words(self) -> str:
        return self.package.manifest.population.description or "the population of its training data"

    def decide(self, p_pneumonia: float) -> tuple[str, tuple[str, ...], bool]:
        """(label at the package threshold, conformal prediction set, refer flag) for one image.

        The conformal score of a class is 1 - p(class); a class is in the set when its score is at most
        the package's quantile for that class (one per class with Mondrian conformal, else one for
        both). Refer when the set holds both classes (unsure) or neither (nothing fits).
        """
        cal = self.calibration
        in_set = tuple(
            name
            for name, p_class in (("normal", 1.0 - p_pneumonia), ("pneumonia", p_pneumonia))
            if 1.0 - p_class <= cal.quantile_for(name)
        )
        label = "pneumonia" if p_pneumonia >= cal.threshold else "normal"
        return label, in_set, len(in_set) != 1

    def infer(self, prepared: list[Prepared], *, heatmap: bool, started: list[float]) -> list[BatchResult]:
        t0 = time.perf_counter()
        out = self.run_model(np.stack([p.tensor for p in prepared]))
        inference_ms = _ms(t0) / len(prepared)
        cams = None
        t1 = time.perf_counter()
        if heatmap:
            cams = grad_cam(out.features, self.head_weight, pneumonia_score_gradient(out.logits))
        heatmap_share = _ms(t1) / len(prepared)
        results: list[BatchResult] = []
        for i, item in enumerate(prepared):
            try:
                atypical = self.atypical_finding(
                    float(out.ood[i]), float(out.p_other[i]) if out.p_other is not None else None
                )
            except CXRError as exc:
                results.append(exc)
                continue
            if atypical is not None:
                item = dataclasses.replace(item, findings=(*item.findings, atypical))
            t2 = time.perf_counter()
            cam = peak = None
            if cams is not None:
                peak = float(cams[i].max())
                cam = scale_and_resize(
                    cams[i], (self.spec.size, self.spec.size), self.calibration.heatmap_reference
                )
            timings = (inference_ms, heatmap_share + _ms(t2), started[i])
            raw = tuple(float(v) for v in out.logits[i])
            prediction = self._assemble(item, (out.probs[i], raw), float(out.ood[i]), (cam, peak), timings)
            pooled = out.pooled[i] if out.pooled is not None else None
            results.append(dataclasses.replace(prediction, pooled_features=pooled, intensity=intensity(item)))
        return results

    def _assemble(
        self,
        item: Prepared,
        scores: tuple[np.ndarray, tuple[float, ...]],
        ood_score: float,
        heat: tuple[np.ndarray | None, float | None],
        timings: tuple[float, float, float],
    ) -> Prediction:
        inference_ms, heatmap_ms, started = timings
        cam, peak = heat
        probs, logits = scores  # calibrated probabilities, raw logits
        p_pneumonia = float(probs[1] + probs[2])
        label, in_set, refer = self.decide(p_pneumonia)
        # outside the training population the conformal guarantee does not hold: always refer
        refer = refer or any(f.code in REFER_FINDINGS for f in item.findings)
        return Prediction(
            label=label,
            p_pneumonia=p_pneumonia,
            p_bacterial=float(probs[1]),
            p_viral=float(probs[2]),
            threshold=self.calibration.threshold,
            refer=refer,
            prediction_set=in_set,
            ood_score=ood_score,
            ood_threshold=self.calibration.ood_threshold,
            model=self.model_ref,
            input_sha256=item.xray.sha256,
            input_meta=item.xray.meta.to_dict(),
            findings=item.findings,
            heatmap=cam,
            heatmap_peak=peak,
            heatmap_reference=self.calibration.heatmap_reference if cam is not None else None,
            timings=Timings(
                decode_ms=item.decode_ms,
                preprocess_ms=item.preprocess_ms,
                inference_ms=round(inference_ms, 3),
                heatmap_ms=round(heatmap_ms, 3),
                total_ms=_ms(started),
            ),
            logits=logits,
        )
