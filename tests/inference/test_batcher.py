"""Micro-batching gives the same answers as one-at-a-time prediction, under real concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cxr_pneumonia.errors import InputError
from cxr_pneumonia.inference import Predictor
from cxr_pneumonia.inference.batcher import MicroBatcher
from cxr_pneumonia.inference.cache import MemoryCache


def test_concurrent_requests_match_single_predictions(predictor: Predictor, kermany: Path) -> None:
    fresh = Predictor(predictor.package, cache=MemoryCache(0))
    batcher = MicroBatcher(fresh, max_batch=8, max_wait_ms=20)
    files = sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[:12]
    with ThreadPoolExecutor(max_workers=8) as pool:
        batched = list(pool.map(lambda f: batcher.predict(f.read_bytes(), use_cache=False), files))
    for path, result in zip(files, batched, strict=True):
        single = fresh.predict(path, use_cache=False)
        assert result.input_sha256 == single.input_sha256
        assert result.p_pneumonia == pytest.approx(single.p_pneumonia, abs=1e-5)
        assert np.allclose(result.heatmap, single.heatmap, atol=1e-4)


def test_errors_reach_their_own_caller(predictor: Predictor, kermany: Path) -> None:
    batcher = MicroBatcher(predictor, max_batch=4, max_wait_ms=20)
    good = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[0].read_bytes()
    with ThreadPoolExecutor(max_workers=2) as pool:
        ok = pool.submit(batcher.predict, good)
        bad = pool.submit(batcher.predict, b"not an image")
        assert ok.result().label in ("normal", "pneumonia")
        with pytest.raises(InputError):
            bad.result()


def test_a_closed_batcher_finishes_its_callers_and_then_stops(predictor: Predictor, kermany: Path) -> None:
    """A model swapped out: the requests already on it get their answers, later callers are served
    unbatched, and its inference thread ends."""
    fresh = Predictor(predictor.package, cache=MemoryCache(0))
    batcher = MicroBatcher(fresh, max_batch=4, max_wait_ms=20)
    files = [f.read_bytes() for f in sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:6]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        in_flight = [pool.submit(batcher.predict, data, use_cache=False) for data in files]
        batcher.close()
        answers = [future.result(timeout=60) for future in in_flight]
    assert all(a.label in ("normal", "pneumonia") for a in answers)
    batcher._thread.join(10)
    assert not batcher._thread.is_alive()
    late = batcher.predict(files[0], use_cache=False)
    assert late.p_pneumonia == pytest.approx(answers[0].p_pneumonia, abs=1e-5)
