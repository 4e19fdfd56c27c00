"""Two-sample tests, each suited to one kind of statistic, and the multiple-testing correction."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy.special import chdtrc


def ks_test(reference: np.ndarray, window: np.ndarray) -> tuple[float, float]:
    """(KS statistic, p-value) of a numeric statistic, two-sided.

    The p-value is the asymptotic Kolmogorov distribution with Stephens' small-sample correction
    (accurate to a few percent from n = 5), in numpy: scipy's ks_2samp costs milliseconds per call in
    argument handling and exact-distribution code, and the monitor runs a dozen of them per evaluation."""
    a = np.sort(np.asarray(reference, dtype=np.float64))
    b = np.sort(np.asarray(window, dtype=np.float64))
    n, m = a.size, b.size
    if n == 0 or m == 0:
        return 0.0, 1.0
    values = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, values, side="right") / n
    cdf_b = np.searchsorted(b, values, side="right") / m
    statistic = float(np.max(np.abs(cdf_a - cdf_b)))
    root = np.sqrt(n * m / (n + m))
    return statistic, kolmogorov_sf((root + 0.12 + 0.11 / root) * statistic)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution: 2 * sum (-1)^(k-1) exp(-2 k^2 x^2)."""
    if x < 0.27:  # the series converges slowly there and the answer is 1 to 1e-6
        return 1.0
    k = np.arange(1, 101, dtype=np.float64)
    total = 2.0 * float(np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k * k * x * x)))
    return min(1.0, max(0.0, total))


def chi_square_test(reference: dict[str, int], window: Sequence[str]) -> tuple[float, float]:
    """(Pearson chi-square, p-value) of a categorical statistic against the reference's frequencies.

    Half a count is added to every category of either side, so a value the reference never saw has a
    small but non-zero expected frequency (a jpeg-only reference meeting PNGs gives a huge statistic)."""
    counts = Counter(window)
    categories = sorted(set(reference) | set(counts))
    if len(categories) < 2:
        return 0.0, 1.0
    ref = np.array([reference.get(c, 0) + 0.5 for c in categories], dtype=np.float64)
    observed = np.array([counts.get(c, 0) for c in categories], dtype=np.float64)
    expected = ref / ref.sum() * observed.sum()
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return statistic, float(chdtrc(len(categories) - 1, statistic))  # chi2.sf without its overhead


def proportion_test(reference_rate: float, reference_n: int, successes: int, n: int) -> tuple[float, float]:
    """(window rate - reference rate, two-sided p) by a two-proportion z test (pooled variance): the
    reference rate is itself estimated from a few hundred images."""
    if n == 0:
        return 0.0, 1.0
    rate = successes / n
    pooled = (reference_rate * reference_n + successes) / (reference_n + n)
    variance = pooled * (1.0 - pooled) * (1.0 / reference_n + 1.0 / n)
    if variance <= 0:
        return rate - reference_rate, 1.0
    z = (rate - reference_rate) / np.sqrt(variance)
    return float(rate - reference_rate), float(math.erfc(abs(z) / math.sqrt(2.0)))  # 2 * norm.sf(|z|)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error control, no independence assumed)."""
    m = len(p_values)
    order = np.argsort(p_values)
    adjusted = np.empty(m, dtype=np.float64)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


class MMDTest:
    """Maximum mean discrepancy with an RBF kernel between a window and the reference features.

    The reference is split in two halves: one the windows are compared with (the base), the other to
    draw same-size windows from under the null (the pool), once per window size. A p-value then costs
    one (n x reference) kernel block, well under a millisecond.

    With ``blocks`` (0/1 per row: the earlier and later half of the reference's patients), the base is
    the earlier patients and the pool the later ones, so the null holds what new patients of a later
    period look like, as production's are. Random halves would give a null of exchangeable resamples,
    far tighter than the variation between patients and acquisition periods of one population: on
    model 2.0.0's validation images, windows of its later patients exceeded that null's 99th percentile
    in 67% of draws (pneumonia, 31 per window) and 14% (normal, 19). Without blocks: random halves."""

    MIN_BLOCK = 20  # rows each block needs, or the halves are random

    def __init__(
        self, features: np.ndarray, *, blocks: np.ndarray | None = None, null_draws: int = 400, seed: int = 0
    ) -> None:
        rng = np.random.default_rng(seed)
        later = None if blocks is None else np.asarray(blocks) > 0
        if later is not None and min(int(later.sum()), int((~later).sum())) >= self.MIN_BLOCK:
            self.base, self.pool = features[~later], features[later]
            self.null_kind = "later patients against earlier"
        else:
            order = rng.permutation(features.shape[0])
            half = features.shape[0] // 2
            self.base, self.pool = features[order[:half]], features[order[half:]]
            self.null_kind = "random halves"
        sample = self.base[rng.choice(self.base.shape[0], min(200, self.base.shape[0]), replace=False)]
        distances = np.sqrt(((sample[:, None, :] - sample[None, :, :]) ** 2).sum(-1))
        self.gamma = 1.0 / (2.0 * float(np.median(distances[distances > 0])) ** 2)  # median heuristic
        self.base_term = float(self._kernel(self.base, self.base).mean())
        self.null_draws = null_draws
        self._rng = rng
        self._nulls: dict[int, np.ndarray] = {}

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.exp(-self.gamma * np.maximum(squared, 0.0))

    def statistic(self, window: np.ndarray) -> float:
        """Biased MMD^2 between the window and the base half."""
        within = float(self._kernel(window, window).mean())
        across = float(self._kernel(window, self.base).mean())
        return within + self.base_term - 2.0 * across

    def null(self, n: int) -> np.ndarray:
        if n not in self._nulls:
            size = min(n, self.pool.shape[0])
            self._nulls[n] = np.array(
                [
                    self.statistic(self.pool[self._rng.choice(self.pool.shape[0], size, replace=False)])
                    for _ in range(self.null_draws)
                ]
            )
        return self._nulls[n]

    def test(self, window: np.ndarray) -> tuple[float, float]:
        """(MMD^2, permutation-style p-value) of a window of projected features."""
        observed = self.statistic(window)
        null = self.null(min(window.shape[0], self.pool.shape[0]))
        return observed, float((1 + np.count_nonzero(null >= observed)) / (1 + null.size))
