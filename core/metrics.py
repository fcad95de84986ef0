"""Detection metrics in plain numpy: ROC, AUC, AP, EER, rates at a threshold, Brier, ECE, bootstrap CIs.

Conventions: `labels` are 1 for fake (the positive class) and 0 for real; `scores` are calibrated
probabilities of manipulation; an item is called fake when its score is at or above the threshold
(as `core.analyze.decide` does). A metric that is undefined for the input (AUC with one class only,
TPR without fakes) is NaN, never an exception, so a report can show "n/a" for that cell.
"""
from __future__ import annotations

from typing import Callable, Iterator, Mapping

import numpy as np

__all__ = [
    "roc_curve", "roc_auc", "average_precision", "eer", "rates_at", "brier", "ece",
    "reliability", "stratified_resamples", "bootstrap_ci", "Metric",
]

Metric = Callable[[np.ndarray, np.ndarray], float]


def _arrays(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.int8).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length ({y.size} vs {s.size})")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < y.size


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FPR, TPR and thresholds, one point per distinct score (highest first) plus the (0, 0) start
    at threshold +inf. Tied scores form one point, so a tie between classes is a diagonal segment."""
    y, s = _arrays(labels, scores)
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s)), y.size - 1] if y.size else np.array([], int)
    tp = np.cumsum(y)[last_of_run]
    fp = (last_of_run + 1) - tp
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    tpr = np.r_[0.0, tp / n_pos] if n_pos else np.full(tp.size + 1, np.nan)
    fpr = np.r_[0.0, fp / n_neg] if n_neg else np.full(fp.size + 1, np.nan)
    return fpr, tpr, np.r_[np.inf, s[last_of_run]]


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve: the chance that a random fake outscores a random real, a tie
    counting one half (Mann-Whitney U with mid-ranks)."""
    y, s = _arrays(labels, scores)
    if not _both_classes(y):
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based rank, ties share their mean rank
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    rank_sum = mid_rank[inverse][y == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(labels, scores) -> float:
    """Precision averaged over the recall steps, sum of (R_k - R_k-1) * P_k over distinct thresholds
    (the step-wise definition, no interpolation)."""
    y, s = _arrays(labels, scores)
    if y.sum() == 0:
        return float("nan")
    fpr, tpr, _ = roc_curve(y, s)
    n_pos, n_neg = int(y.sum()), y.size - int(y.sum())
    tp = tpr[1:] * n_pos
    fp = np.nan_to_num(fpr[1:]) * n_neg
    precision = tp / (tp + fp)
    return float(np.sum(np.diff(tpr) * precision))


def eer(labels, scores) -> tuple[float, float]:
    """Equal error rate and the threshold where it is reached: the ROC point where the false
    positive rate meets the false negative rate, linearly interpolated between the two ROC points
    around the crossing."""
    y, _ = _arrays(labels, scores)
    if not _both_classes(y):
        return float("nan"), float("nan")
    fpr, tpr, thresholds = roc_curve(labels, scores)
    gap = (1.0 - tpr) - fpr  # FNR - FPR: starts at 1, ends at -1, never increases
    i = int(np.argmax(gap <= 0))
    if gap[i] == 0:
        return float(fpr[i]), float(thresholds[i])
    t = gap[i - 1] / (gap[i - 1] - gap[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1])), float(thresholds[i])


def rates_at(labels, scores, threshold: float) -> dict[str, float]:
    """Accuracy, TPR (fakes caught) and FPR (reals called fake) when score >= threshold means fake."""
    y, s = _arrays(labels, scores)
    called = s >= threshold
    n_pos, n_neg = int(y.sum()), y.size - int(y.sum())
    nan = float("nan")
    return {
        "accuracy": float(np.mean(called == (y == 1))) if y.size else nan,
        "tpr": float(np.sum(called & (y == 1)) / n_pos) if n_pos else nan,
        "fpr": float(np.sum(called & (y == 0)) / n_neg) if n_neg else nan,
    }


def brier(labels, scores) -> float:
    """Mean squared difference between the probability and the 0/1 label (lower is better)."""
    y, s = _arrays(labels, scores)
    return float(np.mean((s - y) ** 2)) if y.size else float("nan")


def _bin_index(s: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bins over [0, 1]; a score of exactly 1 falls in the last bin."""
    return np.minimum((np.clip(s, 0.0, 1.0) * bins).astype(int), bins - 1)


def reliability(labels, scores, bins: int = 10) -> list[dict[str, float]]:
    """Reliability-diagram data: per equal-width bin its edges, item count, mean predicted
    probability and observed fraction of fakes (NaN for an empty bin)."""
    y, s = _arrays(labels, scores)
    index = _bin_index(s, bins)
    rows = []
    for b in range(bins):
        inside = index == b
        n = int(inside.sum())
        rows.append({
            "lo": b / bins, "hi": (b + 1) / bins, "count": n,
            "mean_score": float(s[inside].mean()) if n else float("nan"),
            "fraction_fake": float(y[inside].mean()) if n else float("nan"),
        })
    return rows


def ece(labels, scores, bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean of |mean score - fraction of fakes|
    over equal-width bins."""
    y, s = _arrays(labels, scores)
    if not y.size:
        return float("nan")
    index = _bin_index(s, bins)
    counts = np.bincount(index, minlength=bins)
    gap = np.abs(np.bincount(index, weights=s, minlength=bins) - np.bincount(index, weights=y, minlength=bins))
    return float(gap.sum() / counts.sum())  # sum over bins of n_b/N * |mean_s_b - mean_y_b|


def stratified_resamples(y: np.ndarray, rounds: int, seed: int) -> Iterator[np.ndarray]:
    """`rounds` index arrays, each drawing reals and fakes with replacement separately, so every
    resample keeps the class counts (none for empty `y`)."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in (0, 1)]
    for _ in range(rounds if y.size else 0):
        yield np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups if g.size])


def bootstrap_ci(
    metrics: Mapping[str, Metric], labels, scores, rounds: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of every metric, from the same `rounds` resamples. Reals and
    fakes are resampled separately (stratified), so every resample keeps the class counts and the
    AUC stays defined. NaN bounds when the metric is undefined on the data."""
    y, s = _arrays(labels, scores)
    values: dict[str, list[float]] = {name: [] for name in metrics}
    for pick in stratified_resamples(y, rounds, seed):
        for name, fn in metrics.items():
            values[name].append(fn(y[pick], s[pick]))
    tail = (1.0 - level) / 2.0 * 100.0
    out = {}
    for name, vals in values.items():
        arr = np.asarray(vals, dtype=np.float64)
        if arr.size == 0 or np.isnan(arr).any():
            out[name] = (float("nan"), float("nan"))
        else:
            lo, hi = np.percentile(arr, [tail, 100.0 - tail])
            out[name] = (float(lo), float(hi))
    return out
